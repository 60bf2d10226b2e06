"""ONNX files as an attacker writes them: each ends within seconds in one line on stderr
and exit code 2, and no file named inside the model is ever opened. Then a fuzz of a
real exported file's structure: never a traceback, never a hang."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

LIMIT = 20  # seconds per case


def conv_model(conv_attrs=None, conv_inputs=("x", "w"), extra_nodes=(), inits=None,
               out="c", n=12, opset=17):
    nodes = [helper.make_node("Conv", list(conv_inputs), ["c"], name="conv",
                              **({"kernel_shape": [3]} if conv_attrs is None else conv_attrs))]
    nodes += list(extra_nodes)
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, n])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                          initializer=list(inits if inits is not None else [
                              numpy_helper.from_array(np.ones((1, 1, 3), np.float32), "w")]))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def external_constant(location: str):
    t = numpy_helper.from_array(np.array([0, 0, 1, 1], np.int64), "pads")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "32")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return conv_model(extra_nodes=[
        helper.make_node("Constant", [], ["p"], value=t),
        helper.make_node("Pad", ["c", "p"], ["y"], name="pad")], out="y")


def resize(scale):
    scales = numpy_helper.from_array(np.array([1, 1, scale], np.float32), "scales")
    w = numpy_helper.from_array(np.ones((1, 1, 3), np.float32), "w")
    return conv_model(extra_nodes=[helper.make_node("Resize", ["c", "", "scales"], ["y"],
                                                    name="resize")],
                      inits=[w, scales], out="y")


def short_constant():
    t = helper.make_tensor("s", TensorProto.INT64, [3], [0, 0, 0])
    t.raw_data = b"\x01\x00"  # 2 bytes for 3 int64 values
    t.ClearField("int64_data")
    return conv_model(extra_nodes=[
        helper.make_node("Constant", [], ["st"], value=t),
        helper.make_node("Slice", ["c", "st", "st"], ["y"], name="slice")], out="y")


def nested_if(depth: int, reads: str = "c", cond=(True,)):
    """An If whose then-branch holds another If, ``depth`` deep; the innermost reads
    ``reads``."""
    def leaf(name):
        return helper.make_graph([helper.make_node("Identity", [reads], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)])

    inner = leaf("in0")
    for level in range(1, depth + 1):
        node = helper.make_node("If", ["k"], [f"in{level}"], then_branch=inner,
                                else_branch=leaf(f"else{level}"), name=f"if{level}")
        inner = helper.make_graph([node], f"b{level}", [], [
            helper.make_tensor_value_info(f"in{level}", TensorProto.FLOAT, None)])
    const = helper.make_node("Constant", [], ["k"], value=helper.make_tensor(
        "k", TensorProto.BOOL, [len(cond)], list(cond)))
    return conv_model(extra_nodes=[const, *inner.node], out=f"in{depth}")


CASES = {
    "external-constant-fifo": lambda d: external_constant(str(d / "fifo.bin")),
    "external-constant-relative": lambda d: external_constant("secret.bin"),
    "external-constant-parent": lambda d: external_constant("../../etc/passwd"),
    "conv-three-pads": lambda d: conv_model({"kernel_shape": [3], "pads": [1, 1, 1]}),
    "conv-no-weight": lambda d: conv_model(conv_inputs=("x",)),
    "maxpool-no-kernel": lambda d: conv_model(extra_nodes=[
        helper.make_node("MaxPool", ["c"], ["y"], name="pool")], out="y"),
    "depth-to-space-no-blocksize": lambda d: conv_model(extra_nodes=[
        helper.make_node("DepthToSpace", ["c"], ["y"], name="d2s")], out="y"),
    "slice-no-starts": lambda d: conv_model(extra_nodes=[
        helper.make_node("Slice", ["c"], ["y"], name="slice")], out="y"),
    "resize-nan": lambda d: resize(float("nan")),
    "resize-inf": lambda d: resize(float("inf")),
    "resize-zero": lambda d: resize(0.0),
    "resize-1e30": lambda d: resize(1e30),
    "resize-1e-30": lambda d: resize(1e-30),
    "constant-short-raw-data": lambda d: short_constant(),
    "if-nested-20-deep": lambda d: nested_if(20),
    "if-branch-reads-nothing-known": lambda d: nested_if(1, reads="nowhere"),
    "if-condition-of-three-values": lambda d: nested_if(1, cond=(True, False, True)),
}


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx_hostile")
    os.mkfifo(d / "fifo.bin")  # opening it would hang: the test would time out
    (d / "secret.bin").write_bytes(b"\x00" * 64)
    os.chmod(d / "secret.bin", 0)  # and reading it would fail loudly... for non-root
    return d


def _run(place, path):
    return subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", str(path)],
                          cwd=place, capture_output=True, text=True, timeout=LIMIT,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_one_line_and_opens_nothing(place, case):
    path = place / f"{case}.onnx"
    onnx.save(CASES[case](place), path)
    atime = os.stat(place / "secret.bin").st_atime_ns
    proc = _run(place, path)
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 0:  # read, when the file is valid after all: nothing opened
        assert "Traceback" not in proc.stderr and case.startswith("external") is False
    else:
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("rfield: error: ") and "internal error" not in lines[0]
    assert os.stat(place / "secret.bin").st_atime_ns == atime


def _mutations(model, rng: random.Random):
    """One structural change: an attribute's values, an input dropped or swapped, a dim,
    two nodes' order."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = m.graph.node
    n = nodes[rng.randrange(len(nodes))]
    kind = rng.randrange(5)
    if kind == 0 and n.attribute:
        a = n.attribute[rng.randrange(len(n.attribute))]
        if a.ints:
            vals = list(a.ints)
            choice = rng.randrange(3)
            if choice == 0:
                vals = vals[:-1]
            elif choice == 1:
                vals = vals + [rng.choice([0, -1, 7, 1 << 40])]
            else:
                vals[rng.randrange(len(vals))] = rng.choice([0, -3, 1 << 40])
            del a.ints[:]
            a.ints.extend(vals)
        elif a.type == onnx.AttributeProto.INT:
            a.i = rng.choice([0, -1, 99, 1 << 40])
    elif kind == 1 and n.input:
        del n.input[rng.randrange(len(n.input))]
    elif kind == 2 and len(n.input) > 1:
        i, j = rng.sample(range(len(n.input)), 2)
        n.input[i], n.input[j] = n.input[j], n.input[i]
    elif kind == 3:
        dims = m.graph.input[0].type.tensor_type.shape.dim
        dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 1, 3, 1 << 30])
    else:
        i, j = rng.sample(range(len(nodes)), 2)
        a_, b_ = onnx.NodeProto(), onnx.NodeProto()
        a_.CopyFrom(nodes[i])
        b_.CopyFrom(nodes[j])
        nodes[i].CopyFrom(b_)
        nodes[j].CopyFrom(a_)
    return m


def test_fuzzing_a_real_export_never_ends_in_a_traceback(tmp_path):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    import warnings

    from rfield import analyze
    from rfield.errors import RfieldError

    path = tmp_path / "real.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tv.models.squeezenet1_1(weights=None).eval(),
                          torch.zeros(1, 3, 64, 64), str(path), dynamo=False, opset_version=17)
    model = onnx.load(str(path))
    rng = random.Random(0)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(int(os.environ.get("RFIELD_FUZZ", "300"))):
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(_mutations(model, rng).SerializeToString())
        try:
            a = analyze(str(bad))
            a.box()
            outcomes["read"] += 1
        except RfieldError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 600, str(exc)
            outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"], outcomes
