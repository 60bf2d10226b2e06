"""ONNX inputs as tf2onnx, Keras and jax2onnx write them: NHWC with a Transpose before
the first convolution, squeeze-and-excitation multiplies in NHWC, normalisation
constants as extra graph inputs. Checked against ONNX's reference evaluator run on
one-hot inputs in 2-D."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import rfield  # noqa: E402
from cli_run import run  # noqa: E402

H, W, C = 9, 7, 2


def ones(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def nhwc_model(se: bool, mean_input: bool = True, transpose_first: bool = True):
    """x (NHWC) - mean -> Transpose -> Conv 3/2 -> NHWC [-> SE gate] -> NCHW -> MaxPool."""
    nodes = [helper.make_node("Sub", ["x", "mean"], ["xs"]) if mean_input else
             helper.make_node("Identity", ["x"], ["xs"])]
    if transpose_first:
        nodes.append(helper.make_node("Transpose", ["xs"], ["t"], perm=[0, 3, 1, 2]))
    nodes += [helper.make_node("Conv", ["t", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                               pads=[1, 1, 1, 1], name="conv"),
              helper.make_node("Transpose", ["c"], ["c_nhwc"], perm=[0, 2, 3, 1])]
    last = "c_nhwc"
    if se:
        nodes += [helper.make_node("ReduceMean", ["c_nhwc"], ["m"], axes=[1, 2], keepdims=1),
                  helper.make_node("Sigmoid", ["m"], ["g"]),
                  helper.make_node("Mul", ["c_nhwc", "g"], ["gated"], name="se")]
        last = "gated"
    nodes += [helper.make_node("Transpose", [last], ["back"], perm=[0, 3, 1, 2]),
              helper.make_node("MaxPool", ["back"], ["y"], kernel_shape=[2, 2], strides=[1, 1],
                               name="pool")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, H, W, C])]
    if mean_input:
        inputs.append(helper.make_tensor_value_info("mean", TensorProto.FLOAT, [1, 1, 1, C]))
    g = helper.make_graph(nodes, "nhwc", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[ones("w", [3, C, 3, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def oracle_boxes(model, mean_input=True):
    """Per output unit (i, j), the box of input positions (h, w) it depends on: the
    units that change when one position of an input of ones is raised a lot (on zeros,
    a product with a gate would hide the gate's reach; a small rise could hide under a
    max)."""
    sess = ReferenceEvaluator(model)
    feeds = {"mean": np.zeros((1, 1, 1, C), np.float32)} if mean_input else {}
    base = sess.run(None, {"x": np.ones((1, H, W, C), np.float32), **feeds})[0][0].sum(0)
    deps: dict = {}
    for h in range(H):
        for w in range(W):
            x = np.ones((1, H, W, C), np.float32)
            x[0, h, w, :] = 100
            y = sess.run(None, {"x": x, **feeds})[0][0].sum(0)
            for i, j in zip(*np.nonzero(np.abs(y - base) > 1e-6)):
                deps.setdefault((int(i), int(j)), []).append((h, w))
    return {u: ((min(p[0] for p in d), max(p[0] for p in d)),
                (min(p[1] for p in d), max(p[1] for p in d))) for u, d in deps.items()}


def test_nhwc_input_is_read_by_its_transpose(tmp_path):
    m = nhwc_model(se=False)
    onnx.save(m, tmp_path / "m.onnx")
    a = rfield.analyze(str(tmp_path / "m.onnx"))
    assert a.graph.input_size == (H, W) and a.graph.input_channels == C
    want = oracle_boxes(m)
    assert len(want) == a.graph.nodes["pool"].size[0] * a.graph.nodes["pool"].size[1]
    for unit, box in want.items():
        assert a.box("pool", unit).ranges == box, unit


def test_squeeze_excitation_in_nhwc_broadcasts_by_layout(tmp_path):
    onnx.save(nhwc_model(se=True), tmp_path / "se.onnx")
    onnx.save(nhwc_model(se=False), tmp_path / "plain.onnx")
    a = rfield.analyze(str(tmp_path / "se.onnx"))
    plain = rfield.analyze(str(tmp_path / "plain.onnx"))
    f = a.field("pool")
    assert f.is_global and f.local_rf == plain.field("pool").rf
    want = oracle_boxes(nhwc_model(se=True))  # the gate reads everything: global
    assert all(box == ((0, H - 1), (0, W - 1)) for box in want.values())
    assert a.box("pool", (1, 1)).ranges == ((0, H - 1), (0, W - 1))


def test_an_input_size_is_given_in_spatial_order(tmp_path):
    onnx.save(nhwc_model(se=False), tmp_path / "m.onnx")
    a = rfield.analyze(str(tmp_path / "m.onnx"), input_size=(12, 10))
    assert a.graph.input_size == (12, 10) and a.graph.nodes["conv"].size == (6, 5)



def test_layout_that_cannot_be_told_is_refused(capsys, tmp_path):
    """An NHWC input that reaches a Reshape before any window: only --layout can say."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w"], ["y"], kernel_shape=[3, 3])]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, H, W, C])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[ones("w", [1, C, 3, 3]), numpy_helper.from_array(
                              np.array([1, H, W, C], np.int64), "shape")])
    p = tmp_path / "r.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
    code, out, err = run(capsys, "analyze", str(p))
    assert code == 2 and out == "" and "--layout nchw or --layout nhwc" in err
    code, out, err = run(capsys, "analyze", str(p), "--layout", "nhwc", "--json")
    assert code == 0, err
    code, out, err = run(capsys, "analyze", str(p), "--layout", "nchw")
    # read as NCHW, the Transpose hands the Conv a dim that is not spatial: not followed,
    # and said so
    assert code == 0 and "operator conv over non-spatial dims is not known" in out


def test_a_layout_that_contradicts_the_graph_is_refused(capsys, tmp_path):
    onnx.save(nhwc_model(se=False), tmp_path / "m.onnx")
    code, out, err = run(capsys, "analyze", str(tmp_path / "m.onnx"), "--layout", "nchw")
    assert code == 2 and "reads input 'x' as nhwc, not as nchw" in err


def test_two_image_inputs_need_a_name(capsys, tmp_path):
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("Conv", ["s", "w"], ["y"], kernel_shape=[3, 3])]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 8, 8])
                           for n in ("a", "b")],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[ones("w", [1, 1, 3, 3])])
    p = tmp_path / "two.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
    code, out, err = run(capsys, "analyze", str(p))
    assert code == 2 and "choose one with --input-name" in err
    code, out, err = run(capsys, "analyze", str(p), "--input-name", "b")
    assert code == 0, err
    assert rfield.analyze(str(p), input_name="a").field().rf == (3, 3)
