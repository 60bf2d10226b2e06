"""rfield against the peer tools on torchvision models: time per model and whether the
answer is right against the gradient measurement.

Run in the benchmark's own environment (peers never enter rfield's):

    python3 -m venv /tmp/peers && P=/tmp/peers/bin
    $P/pip install torch==2.14.1 torchvision==0.29.1 pandas tabulate attrs graphviz \
        matplotlib pillow -e .
    $P/pip install --no-deps torchscan==0.1.2 rf-calc
    $P/pip install --no-deps --ignore-requires-python rfa-toolbox==1.7.0
    # receptivefield 0.5.0 has metadata pip >= 24.1 rejects: fetch it with an older pip
    python3 -m venv /tmp/oldpip && /tmp/oldpip/bin/pip install "pip<24.1"
    /tmp/oldpip/bin/pip install --no-deps --target /tmp/peers/lib/python3.11/site-packages \
        receptivefield==0.5.0
    $P/python bench/bench_peers.py

Writes bench/results/peers.md. "right" means the tool's receptive field for the
final spatial feature map equals the width of the measured box of its centre
unit, on an input large enough that the box touches no border.
"""

from __future__ import annotations

import collections
import collections.abc
import platform
import subprocess
import sys
import time
import warnings

collections.Sequence = collections.abc.Sequence  # rfa-toolbox 1.7.0 needs it
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import torchvision  # noqa: E402

import rfield  # noqa: E402
from rfield.core import Analysis  # noqa: E402
from rfield.empirical.gradient import measure  # noqa: E402
from rfield.frontends.torch_capture import graph_from_module  # noqa: E402

from timing import timed as _timed  # noqa: E402
from timing import write_result  # noqa: E402

# the final feature map of each model: the module its classifier head pools. Models
# whose field can be measured on an input of at most ~1000 pixels (a DenseNet-121's
# field is 2071 wide; an EfficientNet's squeeze-and-excitation gates make it global)
MODELS = {"alexnet": "features", "vgg16": "features", "resnet18": "layer4",
          "resnet50": "layer4", "resnext50_32x4d": "layer4", "googlenet": "inception5b",
          "squeezenet1_1": "features", "mobilenet_v2": "features",
          "shufflenet_v2_x1_0": "conv5", "mnasnet1_0": "layers"}


def timed(fn, repeat=3):
    """Like timing.timed, but a peer that fails on a model is a result, not a crash."""
    try:
        return _timed(fn, repeat)
    except Exception as exc:
        return None, f"fails: {type(exc).__name__}"


def truth(model, a, module):
    """Measured rf of the centre unit of the final feature map, on a large enough input."""
    f = a.field(module)
    rf = max(f.local_rf if f.is_global else f.rf)
    side = ((rf + 64) // 32 + 1) * 32
    got = measure(model, (1, 3, side, side), [module])[module][0]
    (lo, hi), _ = got.box
    if lo == 0 or hi == side - 1:
        return None, module, side
    return hi - lo + 1, side


def run_torchscan(model, module):
    import torchscan

    info = torchscan.crawl_module(model, (3, 224, 224))
    layers = info["layers"]
    cut = next((i for i, lay in enumerate(layers)
                if lay["name"].split(".")[-1] in ("avgpool", "fc", "classifier")), len(layers))
    return int(max(lay["rf"] for lay in layers[:cut]))


def run_rfa(model, module):
    import rfa_toolbox

    out = rfa_toolbox.create_graph_from_pytorch_model(model, input_res=(1, 3, 224, 224))
    seen, stack, best = set(), [out], 0
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.extend(n.predecessors)
        m = n.receptive_field_max
        m = max(m) if isinstance(m, (tuple, list)) else m  # per axis in some versions
        if m != float("inf") and m > best:
            best = m
    return int(best)


def run_rf_calc(model, module):
    import io
    from contextlib import redirect_stdout

    import rf_calc

    with redirect_stdout(io.StringIO()):
        df = rf_calc.receptive_field(model, 224)
    return int(str(df["Receptive_field"].iloc[-1]).split("*")[0])


def run_receptivefield(model, module, side):
    from receptivefield.pytorch import PytorchReceptiveField

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model
            self.feature_maps = []
            dict(model.named_modules())[module].register_forward_hook(
                lambda m, i, o: self.feature_maps.append(o))

        def forward(self, x):
            self.feature_maps = []
            self.net(x)
            return self.feature_maps

    rf = PytorchReceptiveField(lambda: Wrapped().eval())
    params = rf.compute(input_shape=(side, side, 3))
    return int(params[0].rf.size.w)


def run_rfield(model, module):
    f = rfield.analyze(model, (224, 224)).field(module)
    return max(f.local_rf if f.is_global else f.rf)


def wall(cmd):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return best


def main() -> None:
    lines = [f"# rfield vs peers (python {platform.python_version()}, torch {torch.__version__}, "
             f"{platform.machine()}, 2 cores)", "",
             "Seconds per model at 224x224 (median of 3), and the receptive field each tool "
             "gives for the last spatial feature map; right = equal to the measured one.", "",
             "| model | measured rf | rfield | torchscan 0.1.2 | rfa-toolbox 1.7.0 | rf-calc 0.0.7 "
             "| receptivefield 0.5.0 |", "|---|---:|---|---|---|---|---|"]
    capture_vs_analysis = []
    for name, module in MODELS.items():
        model = torchvision.models.get_model(name, weights=None).eval()
        a = rfield.analyze(model, (224, 224))
        want, side = truth(model, a, module)
        cells = []
        for fn in (run_rfield, run_torchscan, run_rfa, run_rf_calc):
            t, got = timed(lambda fn=fn, m=model, mod=module: fn(m, mod))
            cells.append(got if t is None else
                         f"{got} {'right' if got == want else 'WRONG'}, {t:.3f} s")
        t, got = timed(lambda m=model, mod=module, s=side: run_receptivefield(m, mod, s),
                       repeat=1)
        cells.append(got if t is None else
                     f"{got} {'right' if got == want else 'WRONG'}, {t:.3f} s (at {side})")
        lines.append(f"| {name} ({module}) | {want} | " + " | ".join(str(c) for c in cells)
                     + " |")
        t_cap, g = timed(lambda m=model: graph_from_module(m, (224, 224)))
        t_an, _ = timed(lambda g=g: Analysis(g))
        capture_vs_analysis.append(f"| {name} | {t_cap:.3f} | {t_an:.4f} |")
        print(lines[-1], flush=True)
    lines += ["", "Capture against analysis (seconds, median of 3):", "",
              "| model | capture | analysis |", "|---|---:|---:|"] + capture_vs_analysis
    py = sys.executable
    base = wall([py, "-c", "import torch, torchvision; torchvision.models.resnet50()"])
    ours = wall([py, "-m", "rfield.cli", "analyze", "torchvision:resnet50", "--input",
                 "224,224"])
    lines += ["", "Whole command, best of 3: `rfield analyze torchvision:resnet50 --input 224,224`"
              f" {ours:.2f} s; `python -c \"import torch, torchvision; "
              f"torchvision.models.resnet50()\"` {base:.2f} s (ratio {ours / base:.2f})."]
    write_result("peers.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
