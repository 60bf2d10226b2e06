"""rfield's unproductive layers against rfa-toolbox 1.7.0's border layers, on the
torchvision models where both read every layer (plain chains of convs and pools:
AlexNet and the VGGs), at several input sizes, with the seconds each takes.

rfa-toolbox never enters rfield's environment: install it into a folder of its own
and put that on the path of this script only:

    .venv/bin/pip install --no-deps --ignore-requires-python --target /tmp/rfa \
        rfa-toolbox==1.7.0 attrs graphviz
    PYTHONPATH=/tmp/rfa .venv/bin/python bench/bench_unproductive.py

rfa-toolbox names the traced layers of ``features`` in order (``features..28``,
...): the k-th is rfield's ``features.k``. Its dense layers (the classifier) are
filtered out, as its ``obtain_border_layers`` does by default, and rfield's
judgement of the head is left out of the comparison the same way.
"""

from __future__ import annotations

import collections
import collections.abc
import platform
import re
import time
import warnings

collections.Sequence = collections.abc.Sequence  # rfa-toolbox 1.7.0 needs it
warnings.filterwarnings("ignore")

import torchvision  # noqa: E402
from rfa_toolbox import create_graph_from_pytorch_model  # noqa: E402
from rfa_toolbox.utils.graph_utils import obtain_all_nodes, obtain_border_layers  # noqa: E402

import rfield  # noqa: E402
from rfield.core.unproductive import unproductive  # noqa: E402

from timing import write_result  # noqa: E402

MODELS = ("alexnet", "vgg11", "vgg16")
SIZES = (32, 64, 128, 224)


def rfa(name: str, size: int) -> tuple[set[int], float]:
    model = getattr(torchvision.models, name)()
    start = time.perf_counter()
    graph = create_graph_from_pytorch_model(model, input_res=(1, 3, size, size))
    border = obtain_border_layers(graph, input_resolution=size, filter_dense=True)
    seconds = time.perf_counter() - start
    order = [n.name for n in obtain_all_nodes(graph) if n.name.startswith("features..")]
    first = min(int(re.sub(r"\D", "", n)) for n in order)
    return {int(re.sub(r"\D", "", n.name)) - first for n in border
            if n.name.startswith("features..")}, seconds


def ours(name: str, size: int) -> tuple[set[int], float]:
    start = time.perf_counter()
    a = rfield.analyze(f"torchvision:{name}", (size, size))
    marks = unproductive(a)
    seconds = time.perf_counter() - start
    return {int(n.split(".")[1]) for n, m in marks.items()
            if n.startswith("features.") and m and any(m)}, seconds


def main() -> None:
    rows = ["| model | input | rfa-toolbox: border layers of features | rfield: unproductive "
            "| same | seconds rfa-toolbox / rfield |", "|---|---:|---|---|---|---:|"]
    agree = total = 0
    for name in MODELS:
        for size in SIZES:
            try:
                theirs, t_rfa = rfa(name, size)
                mine, t_ours = ours(name, size)
            except Exception as exc:  # too small for the model: both refuse
                rows.append(f"| {name} | {size} | - | - | ({type(exc).__name__}) | |")
                continue
            same = theirs == mine
            agree += same
            total += 1
            show = lambda s: ", ".join(str(k) for k in sorted(s)) or "none"
            rows.append(f"| {name} | {size} | {show(theirs)} | {show(mine)} | "
                        f"{'yes' if same else 'NO'} | {t_rfa / t_ours:.1f} |")
    text = (f"# Unproductive layers: rfield against rfa-toolbox 1.7.0 (python "
            f"{platform.python_version()}, torchvision {torchvision.__version__})\n\n"
            "Indices k of `features.k` marked at each input size (rfa-toolbox: "
            "`obtain_border_layers`, dense layers filtered; rfield: "
            "`core.unproductive`), and rfa-toolbox's time as a multiple of rfield's "
            f"(tracing and analysis included) in the same run. Agreement: {agree} of "
            f"{total}.\n\n" + "\n".join(rows) + "\n")
    write_result("unproductive.md", text)
    print(text)


if __name__ == "__main__":
    main()
