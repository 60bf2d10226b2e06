"""torch.export archives (``.pt2``): the saved program's aten graph read as data, node
for node the same fields (and names, from ``nn_module_stack``) as the module it was
exported from (which the torch tests check against back-propagation); hostile archives
end in one line, exit 2, and nothing pickled in them is ever loaded."""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import subprocess
import sys
import warnings
import zipfile

import pytest

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision")

import rfield  # noqa: E402
from rfield.cli import main  # noqa: E402

from checks import read_or_refuse  # noqa: E402

#: resnet18 in every run; the others (those the ONNX tests use) in the slow sweep
MODELS = ["resnet18"] + [pytest.param(n, marks=pytest.mark.slow) for n in (
    "mobilenet_v3_small", "googlenet", "squeezenet1_1", "lraspp_mobilenet_v3_large",
    "shufflenet_v2_x0_5")]


def export(model, path, size) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model.eval(), (torch.zeros(1, 3, *size),))
        torch.export.save(program, str(path))


def _fields(a) -> dict:
    return {n: (f.rf, f.jump, f.start, f.is_global, f.local_rf, f.output_size)
            for n, f in a.fields.items()}


@pytest.mark.parametrize("name", MODELS)
def test_an_archive_reads_node_for_node_as_its_module(tmp_path, name):
    model = tv.models.get_model(name, weights=None, **(
        {"weights_backbone": None} if "lraspp" in name else {}))
    size = (64, 64)
    path = tmp_path / f"{name}.pt2"
    export(model, path, size)
    t = rfield.analyze(model, size)
    p = rfield.analyze(str(path))
    assert p.graph.input_size == size  # the size it was exported at
    assert _fields(p) == _fields(t)
    # module names, from nn_module_stack; a module returning several maps (LRASPP's
    # backbone: a dict of two levels) names the last it makes, as the graph does not say
    # which it returns (the torch capture names the first)
    named = {m for m in t.graph.aliases if p.graph.aliases.get(m) != t.graph.aliases[m]}
    assert named == ({"backbone"} if "lraspp" in name else set())
    assert p.graph.unknown_ops == t.graph.unknown_ops


def test_resnet18_at_its_native_size_and_another(tmp_path, capsys):
    path = tmp_path / "r18.pt2"
    export(tv.models.resnet18(weights=None), path, (224, 224))
    assert main(["analyze", str(path), "--node", "layer4"]) == 0
    out = capsys.readouterr().out
    assert "435 x 435" in out and "32 x 32" in out
    assert rfield.analyze(str(path), (320, 320)).field("layer4").rf == \
        rfield.analyze("torchvision:resnet18", (320, 320)).field("layer4").rf


def test_verify_is_refused_with_the_reason(tmp_path, capsys):
    path = tmp_path / "r18.pt2"
    export(tv.models.squeezenet1_1(weights=None), path, (64, 64))
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "weights never loaded" in err


def test_ops_lists_the_table(capsys):
    assert main(["ops"]) == 0
    assert "pt2" in capsys.readouterr().out


# --------------------------------------------------------------------------- untrusted

class _Trap:
    """Unpickling this writes a file: the proof that a pickle was loaded."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __reduce__(self):
        return (open, (self.where, "w"))


def _archive(path, graph: object | bytes | None, extra: dict | None = None,
             member: str = "m/models/model.json") -> None:
    with zipfile.ZipFile(path, "w") as z:
        if graph is not None:
            z.writestr(member, graph if isinstance(graph, bytes) else json.dumps(graph))
        for name, data in (extra or {}).items():
            z.writestr(name, data)


@pytest.fixture(scope="module")
def real_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "sq.pt2"
    export(tv.models.squeezenet1_1(weights=None), path, (64, 64))
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("models/model.json"))
        return json.loads(z.read(name))


def _with_node(graph: dict, **change) -> dict:
    g = json.loads(json.dumps(graph))
    g["graph_module"]["graph"]["nodes"][0].update(change)
    return g


CASES = {
    "not-a-zip": lambda g, d: (d / "x.pt2").write_bytes(b"PK\x03\x04 not really"),
    "empty-zip": lambda g, d: _archive(d / "x.pt2", None),
    "not-json": lambda g, d: _archive(d / "x.pt2", b"{\"graph_module\": [1, 2"),
    "deep-json": lambda g, d: _archive(d / "x.pt2", b"[" * 100000 + b"]" * 100000),
    "no-graph": lambda g, d: _archive(d / "x.pt2", {"graph_module": {}}),
    "graph-of-wrong-types": lambda g, d: _archive(d / "x.pt2", {"graph_module": {
        "graph": {"tensor_values": [], "nodes": 3}, "signature": {}}}),
    "os-system-target": lambda g, d: _archive(d / "x.pt2", _with_node(
        g, target="os.system")),
    "aten-dunder-target": lambda g, d: _archive(d / "x.pt2", _with_node(
        g, target="torch.ops.aten.__class__.__init__")),
    "control-flow": lambda g, d: _archive(d / "x.pt2", _with_node(
        g, target="torch.ops.higher_order.cond")),
    "reads-what-nothing-makes": lambda g, d: _archive(d / "x.pt2", _with_node(
        g, inputs=[{"name": "input", "arg": {"as_tensor": {"name": "ghost"}}, "kind": 1}])),
    "unknown-argument": lambda g, d: _archive(d / "x.pt2", _with_node(
        g, inputs=[{"name": "input", "arg": {"as_graph": {}}, "kind": 1}])),
    "pickle-beside-the-graph": lambda g, d: _archive(d / "x.pt2", g, {
        "m/data/sample_inputs/model.pt": pickle.dumps(_Trap(str(d / "pwned"))),
        "m/data/weights/weight_0": pickle.dumps(_Trap(str(d / "pwned")))}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archive_is_one_line_and_loads_nothing(real_graph, tmp_path, case):
    CASES[case](real_graph, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", "x.pt2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert not (tmp_path / "pwned").exists()
    assert "Traceback" not in proc.stderr
    if case == "pickle-beside-the-graph":  # a real graph: read, its pickles untouched
        assert proc.returncode == 0, proc.stderr
        return
    if case in ("os-system-target", "aten-dunder-target"):  # never called: reported
        assert proc.returncode == 0, proc.stderr
        target = "os.system" if case.startswith("os") else "torch.ops.aten.__class__"
        assert target in proc.stdout
        return
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rfield: error: x.pt2") and "internal error" not in lines[0]


def _mutate(graph: dict, rng: random.Random) -> dict:
    """One change to a real graph: an argument's values, an input renamed, a shape, a
    node dropped, two nodes swapped."""
    g = json.loads(json.dumps(graph))
    nodes = g["graph_module"]["graph"]["nodes"]
    n = nodes[rng.randrange(len(nodes))]
    kind = rng.randrange(5)
    if kind == 0 and n["inputs"]:
        arg = n["inputs"][rng.randrange(len(n["inputs"]))]["arg"]
        (enc, body), = arg.items()
        if enc == "as_ints":
            arg[enc] = [rng.choice([0, -1, 7, 1 << 40]) for _ in body] + [3][:rng.randrange(2)]
        elif enc == "as_int":
            arg[enc] = rng.choice([0, -1, 99, 1 << 40])
        else:
            arg.clear()
            arg["as_ints"] = [rng.choice([0, 2, -5])]
    elif kind == 1 and n["inputs"]:
        n["inputs"][0]["arg"] = {"as_tensor": {"name": rng.choice(["x", "conv2d", "nope"])}}
    elif kind == 2:
        values = g["graph_module"]["graph"]["tensor_values"]
        meta = values[rng.choice(sorted(values))]
        meta["sizes"][rng.randrange(len(meta["sizes"]))] = {"as_int": rng.choice(
            [0, 1, 3, 1 << 30, -2])}
    elif kind == 3:
        nodes.remove(n)
    else:
        i, j = rng.sample(range(len(nodes)), 2)
        nodes[i], nodes[j] = nodes[j], nodes[i]
    return g


def test_fuzzing_a_real_archive_never_ends_in_a_traceback(real_graph, tmp_path):
    rng = random.Random(0)
    outcomes = {"read": 0, "refused": 0}
    for i in range(int(os.environ.get("RFIELD_FUZZ", "150"))):
        path = tmp_path / f"bad{i % 3}.pt2"
        _archive(path, _mutate(real_graph, rng))
        read_or_refuse(path, outcomes)
    assert outcomes["read"] and outcomes["refused"], outcomes


def test_io_of_the_trap_is_real(tmp_path):
    """The trap above writes its file when unpickled (so its absence means something)."""
    pickle.loads(pickle.dumps(_Trap(str(tmp_path / "made"))))
    assert (tmp_path / "made").exists()
    assert io.BytesIO  # the module's imports are used
