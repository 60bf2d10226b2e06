"""ONNX operators whose meaning changed between opsets, against ONNX's reference
evaluator run on one-hot inputs (an oracle that shares nothing with rfield)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

import rfield  # noqa: E402

from onnx_checks import assert_matches_oracle, model_1d, weight  # noqa: E402


def conv(out="c"):
    return helper.make_node("Conv", ["x", "w"], [out], kernel_shape=[3], pads=[1, 1], name="c")


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 2), (13, -1)])
def test_softmax_before_13_flattens_from_its_axis(tmp_path, opset, axis):
    """Before opset 13 Softmax(axis=1) normalises over C x W together: every output
    reads every position. From 13 it is along one axis."""
    n = 7
    sm = helper.make_node("Softmax", ["c"], ["y"], axis=axis)
    m = model_1d([conv(), sm], n, [weight("w", [1, 1, 3])], opset=opset)
    oracle = None
    if opset < 13:
        # the reference evaluator runs every Softmax as opset 13 does; the oracle is
        # the old definition written out: flatten from the axis, softmax, reshape back
        shape = numpy_helper.from_array(np.array([1, 1, n], np.int64), "shape")
        oracle = model_1d([conv(), helper.make_node("Flatten", ["c"], ["f"], axis=axis),
                           helper.make_node("Softmax", ["f"], ["s"], axis=-1),
                           helper.make_node("Reshape", ["s", "shape"], ["y"])], n,
                          [weight("w", [1, 1, 3]), shape], opset=13)
    a = assert_matches_oracle(m, n, tmp_path / "s.onnx", oracle)
    assert a.field().is_global


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_axes_attribute_or_input(tmp_path, opset):
    """ReduceMean over the channels: axes as an attribute up to 17, an input from 18."""
    n = 8
    if opset < 18:
        red = helper.make_node("ReduceMean", ["c"], ["y"], axes=[1], keepdims=1)
        inits = []
    else:
        red = helper.make_node("ReduceMean", ["c", "axes"], ["y"], keepdims=1)
        inits = [numpy_helper.from_array(np.array([1], np.int64), "axes")]
    m = model_1d([conv(), red], n, [weight("w", [1, 1, 3])] + inits, opset=opset)
    a = assert_matches_oracle(m, n, tmp_path / "r.onnx")
    assert not a.field().is_global


def test_reduce_with_no_axes_and_noop(tmp_path):
    n = 8
    red = helper.make_node("ReduceSum", ["c"], ["y"], keepdims=1, noop_with_empty_axes=1)
    m = model_1d([conv(), red], n, [weight("w", [1, 1, 3])], opset=18)
    assert not assert_matches_oracle(m, n, tmp_path / "noop.onnx").field().is_global
    red = helper.make_node("ReduceSum", ["c"], ["y"], keepdims=1)
    m = model_1d([conv(), red], n, [weight("w", [1, 1, 3])], opset=18)
    onnx.save(m, tmp_path / "all.onnx")
    assert rfield.analyze(str(tmp_path / "all.onnx")).field().is_global


@pytest.mark.parametrize("scale", [1.5, 2.0, 3.0])
def test_resize_at_opset_10_takes_scales_as_second_input(tmp_path, scale):
    """Resize-10 is Upsample-9 renamed: scales as the second input, asymmetric
    coordinates, nearest rounding down (the reference evaluator runs only Resize-11+,
    so the oracle is that written in opset 11 terms)."""
    n = 6
    scales = numpy_helper.from_array(np.array([1, 1, scale], np.float32), "scales")
    r = helper.make_node("Resize", ["c", "scales"], ["y"], mode="nearest")
    m = model_1d([conv(), r], n, [weight("w", [1, 1, 3]), scales], opset=10)
    r11 = helper.make_node("Resize", ["c", "", "scales"], ["y"], mode="nearest",
                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    oracle = model_1d([conv(), r11], n, [weight("w", [1, 1, 3]), scales], opset=11)
    assert_matches_oracle(m, n, tmp_path / "r10.onnx", oracle)


def test_argmax_over_channels_keeps_the_field(tmp_path):
    n = 9
    am = helper.make_node("ArgMax", ["c"], ["y"], axis=1, keepdims=1)
    m = model_1d([conv(), am], n, [weight("w", [1, 1, 3])])
    onnx.save(m, tmp_path / "am.onnx")
    a = rfield.analyze(str(tmp_path / "am.onnx"))
    assert not a.field().is_global
    # the conv's box is checked against the oracle in test_onnx; ArgMax over channels
    # must leave every unit's box as it is
    conv_only = assert_matches_oracle(model_1d([conv("y")], n, [weight("w", [1, 1, 3])]), n,
                                      tmp_path / "c.onnx")
    for o in range(n):
        assert a.box(a.graph.last(), (o,)).ranges == conv_only.box("c", (o,)).ranges


def test_strict_reports_every_unknown_operator_at_once(tmp_path):
    axis = numpy_helper.from_array(np.array(2, np.int64), "axis")
    nodes = [conv(), helper.make_node("CumSum", ["c", "axis"], ["d"], name="cs1"),
             helper.make_node("CumSum", ["d", "axis"], ["e"], name="cs2"),
             helper.make_node("Trilu", ["e"], ["y"], name="tri")]
    onnx.save(model_1d(nodes, 10, [weight("w", [1, 1, 3]), axis]), tmp_path / "u.onnx")
    with pytest.raises(rfield.UnsupportedError) as info:
        rfield.analyze(str(tmp_path / "u.onnx"), strict=True)
    msg = str(info.value)
    assert "CumSum (2 x, first in" in msg and "'cs1'" in msg and "Trilu (1 x" in msg


@pytest.mark.parametrize("op,attrs,inputs", [
    ("InstanceNormalization", {}, ["c", "s", "b"]),
    ("LayerNormalization", {"axis": -1}, ["c", "s1", "b1"]),
    ("LayerNormalization", {"axis": 1}, ["c", "s1", "b1"]),
])
def test_norms_over_positions_read_everything(tmp_path, op, attrs, inputs):
    n = 9
    inits = [weight("w", [1, 1, 3]), weight("s", [1]), weight("b", [1]),
             weight("s1", [n] if attrs.get("axis") == -1 else [1, n]),
             weight("b1", [n] if attrs.get("axis") == -1 else [1, n])]
    m = model_1d([conv(), helper.make_node(op, inputs, ["y"], epsilon=1e-3, **attrs)], n,
                 inits)
    a = assert_matches_oracle(m, n, tmp_path / "norm.onnx")
    assert a.field().is_global and a.field().local_rf == (3,)
