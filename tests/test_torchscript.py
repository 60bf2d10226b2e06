"""TorchScript archives (``torch.jit.save`` of a traced or a scripted module): walked
by rfield on meta tensors, node for node the same fields and module names as the module
they came from (which the torch tests check against back-propagation); control flow
that depends on the input, loops and foreign functions are refused in one line; a
plain ``torch.save`` pickle is refused without being unpickled."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
import zipfile

import pytest

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision")

import rfield  # noqa: E402
from rfield.cli import main  # noqa: E402

#: resnet18 in every run; the others (those the ONNX tests use) in the slow sweep
MODELS = ["resnet18"] + [pytest.param(n, marks=pytest.mark.slow) for n in (
    "mobilenet_v3_small", "googlenet", "squeezenet1_1", "lraspp_mobilenet_v3_large",
    "shufflenet_v2_x0_5")]
SIZE = (64, 64)


def save(model, path, how: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model.eval()
        if how == "trace":
            saved = torch.jit.trace(model, torch.zeros(1, 3, *SIZE), strict=False)
        else:
            saved = torch.jit.script(model)
        torch.jit.save(saved, str(path))


def _fields(a) -> dict:
    return {n: (f.rf, f.jump, f.start, f.is_global, f.local_rf, f.output_size)
            for n, f in a.fields.items()}


@pytest.mark.parametrize("how", ["trace", "script"])
@pytest.mark.parametrize("name", MODELS)
def test_an_archive_reads_node_for_node_as_its_module(tmp_path, name, how):
    model = tv.models.get_model(name, weights=None, **(
        {"weights_backbone": None} if "lraspp" in name else {}))
    path = tmp_path / f"{name}.pt"
    try:
        save(model, path, how)
    except Exception as exc:  # torch's own limits (a model that does not script)
        pytest.skip(f"torch.jit.{how} fails on {name}: {type(exc).__name__}")
    t = rfield.analyze(model, SIZE)
    try:
        s = rfield.analyze(str(path), SIZE)
    except rfield.errors.RfieldError as exc:
        # scripted code rfield does not follow is refused, named, never guessed: a
        # helper compiled from the model's own Python (shufflenet's channel_shuffle)
        assert how == "script" and "is not followed" in str(exc), str(exc)
        assert name == "shufflenet_v2_x0_5"
        return
    assert _fields(s) == _fields(t)
    # a module returning several maps (LRASPP's backbone, a dict of two levels) may be
    # named by another of them than the torch capture's first
    named = {m for m in t.graph.aliases if s.graph.aliases.get(m) != t.graph.aliases[m]}
    assert named <= ({"backbone"} if "lraspp" in name else set()), named
    assert s.graph.unknown_ops == t.graph.unknown_ops


@pytest.mark.parametrize("how", ["trace", "script"])
def test_resnet18_layer4(tmp_path, capsys, how):
    path = tmp_path / f"r18_{how}.pt"
    save(tv.models.resnet18(weights=None), path, how)
    assert main(["analyze", str(path), "--input", "224,224", "--node", "layer4"]) == 0
    out = capsys.readouterr().out
    assert "435 x 435" in out and "32 x 32" in out
    assert main(["analyze", str(path)]) == 2  # the archive records no input size
    assert "--input" in capsys.readouterr().err
    assert main(["verify", str(path), "--input", "64,64"]) == 2
    assert "read, not run" in capsys.readouterr().err


class Gate(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # on the input: not followed
            return x * 2
        return x


class Loop(torch.nn.Module):
    def forward(self, x):
        for _ in range(3):
            x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
        return x


@pytest.mark.parametrize("module,says", [(Gate(), "depends on the input"),
                                         (Loop(), "Loop")])
def test_control_flow_is_refused_in_one_line(tmp_path, capsys, module, says):
    path = tmp_path / "m.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(path))
    assert main(["analyze", str(path), "--input", "16,16"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err


class _Trap:
    def __init__(self, where: str) -> None:
        self.where = where

    def __reduce__(self):
        return (open, (self.where, "w"))


@pytest.mark.parametrize("case", ["torch-save-checkpoint", "trap-in-data-pkl", "not-a-zip"])
def test_hostile_archive_is_one_line_and_unpickles_nothing(tmp_path, case):
    path = tmp_path / "x.pt"
    trap = pickle.dumps(_Trap(str(tmp_path / "pwned")))
    if case == "torch-save-checkpoint":
        torch.save({"state": torch.zeros(2), "trap": _Trap(str(tmp_path / "pwned"))}, path)
        (tmp_path / "pwned").unlink(missing_ok=True)  # torch.save itself may not run it
    elif case == "trap-in-data-pkl":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x/data.pkl", trap)
            z.writestr("x/code/__torch__/m.py", "")
            z.writestr("x/version", "3\n")
    else:
        path.write_bytes(b"\x80\x04not a zip at all")
    proc = subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", "x.pt", "--input",
                           "16,16"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert not (tmp_path / "pwned").exists()
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rfield: error: x.pt") and "Traceback" not in proc.stderr


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.head = torch.nn.Conv2d(4, 2, 3, dilation=2)

    def forward(self, x):
        y = self.pool(torch.relu(self.conv(x)))
        return self.head(y + torch.nn.functional.interpolate(y, scale_factor=1.0))


@pytest.mark.parametrize("how", ["trace", "script"])
def test_fuzzing_a_real_archive_never_ends_in_a_traceback(tmp_path, how):
    """In a process of its own (a crash of torch's parser would end the process): each
    mutated archive is read or refused in one line."""
    import json
    import os
    from pathlib import Path

    path = tmp_path / "small.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = Small().eval()
        saved = torch.jit.trace(m, torch.zeros(1, 3, 32, 32)) if how == "trace" \
            else torch.jit.script(m)
        torch.jit.save(saved, str(path))
    script = Path(__file__).parent / "torchscript_fuzz.py"
    n = os.environ.get("RFIELD_FUZZ", "150")
    proc = subprocess.run([sys.executable, str(script), str(path), n, "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcomes["other"] == [], outcomes["other"][:5]
    assert outcomes["read"] and outcomes["refused"], outcomes
