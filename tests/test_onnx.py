"""The ONNX front-end: exported models against the PyTorch front-end, hand-built graphs
against ONNX's own reference evaluator, and untrusted files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import rfield  # noqa: E402
from cli_run import run  # noqa: E402
from rfield.cli import main  # noqa: E402

from onnx_checks import assert_matches_oracle, model_1d, weight  # noqa: E402


@pytest.mark.parametrize("n", [9, 10])
@pytest.mark.parametrize("auto", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
@pytest.mark.parametrize("k,s", [(4, 1), (3, 2), (4, 2)])
def test_conv_auto_pad(tmp_path, n, auto, k, s):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k], strides=[s],
                            auto_pad=auto, **({"pads": [1, 2]} if auto == "NOTSET" else {}))
    assert_matches_oracle(model_1d([conv], n, [weight("w", [1, 1, k])]), n, tmp_path / "m.onnx")


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("auto", ["SAME_UPPER", "SAME_LOWER", "NOTSET"])
def test_conv_transpose_output_shape(tmp_path, n, auto):
    t = helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[3], strides=[2],
                         output_shape=[2 * n + 1], auto_pad=auto)
    assert_matches_oracle(model_1d([t], n, [weight("w", [1, 1, 3])]), n, tmp_path / "t.onnx")


RESIZE = [("nearest", ctm, nm) for ctm in ("half_pixel", "asymmetric", "align_corners",
                                           "pytorch_half_pixel")
          for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")]
RESIZE += [(mode, ctm, "floor") for mode in ("linear", "cubic")
           for ctm in ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel")]


@pytest.mark.parametrize("mode,ctm,nearest", RESIZE)
@pytest.mark.parametrize("scale", [2.0, 3.0, 0.5])
def test_resize_modes(tmp_path, mode, ctm, nearest, scale):
    n = 8
    scales = numpy_helper.from_array(np.array([1, 1, scale], np.float32), "scales")
    r = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode,
                         coordinate_transformation_mode=ctm, nearest_mode=nearest)
    assert_matches_oracle(model_1d([r], n, [scales]), n, tmp_path / "r.onnx")


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("ctm", ["half_pixel", "asymmetric", "align_corners",
                                 "pytorch_half_pixel"])
@pytest.mark.parametrize("n,scale", [(12, 0.5), (20, 0.25), (12, 0.75), (16, 0.375),
                                     (8, 0.625), (7, 2.0)])
def test_resize_antialias(tmp_path, mode, ctm, n, scale):
    """The filter stretched by the shrink factor (opset 18); nothing changes when
    enlarging. (Scales exact in binary: at a non-dyadic one a tap whose exact weight is
    1e-7 may round to 0 in floating point, and rfield counts it.)"""
    scales = numpy_helper.from_array(np.array([1, 1, scale], np.float32), "scales")
    r = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode, antialias=1,
                         coordinate_transformation_mode=ctm)
    assert_matches_oracle(model_1d([r], n, [scales]), n, tmp_path / "r.onnx")


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("n,scale", [(7, 0.5), (10, 0.375), (5, 1.5), (9, 2.25)])
def test_resize_half_pixel_symmetric(tmp_path, mode, n, scale):
    """Opset 19's mode centres the output on the input when n * scale is fractional.
    Checked with onnxruntime: the reference evaluator computes the centring offset in
    floating point (3.5 * (1 - 3 / 3.5) = 0.49999999999999978) and moves unit 0."""
    pytest.importorskip("onnxruntime")
    scales = numpy_helper.from_array(np.array([1, 1, scale], np.float32), "scales")
    r = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode,
                         coordinate_transformation_mode="half_pixel_symmetric")
    assert_matches_oracle(model_1d([r], n, [scales], opset=19), n, tmp_path / "r.onnx",
                          runtime=True)


def _crop_and_resize(start: float, end: float, out: int, mode: str):
    roi = numpy_helper.from_array(np.array([0, 0, start, 1, 1, end], np.float32), "roi")
    sizes = numpy_helper.from_array(np.array([1, 1, out], np.int64), "sizes")
    r = helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], mode=mode,
                         coordinate_transformation_mode="tf_crop_and_resize")
    return model_1d([r], 12, [roi, sizes])


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("start,end,out", [(0.25, 0.75, 5), (0, 1, 23), (0.5, 0.5, 3),
                                           (0.125, 0.875, 1)])
def test_resize_tf_crop_and_resize(tmp_path, mode, start, end, out):
    assert_matches_oracle(_crop_and_resize(start, end, out, mode), 12, tmp_path / "r.onnx")


def test_crop_and_resize_past_the_input_is_reported(tmp_path):
    """Units sampled outside the input get the extrapolation value: not followed."""
    path = tmp_path / "r.onnx"
    onnx.save(_crop_and_resize(-0.25, 1.0, 7, "linear"), path)
    a = rfield.analyze(str(path))
    assert any("outside the input" in op for op in a.graph.unknown_ops)


def test_resize_to_sizes_then_conv(tmp_path):
    n = 6
    sizes = numpy_helper.from_array(np.array([1, 1, 15], np.int64), "sizes")
    r = helper.make_node("Resize", ["x", "", "", "sizes"], ["u"], mode="linear")
    c = helper.make_node("Conv", ["u", "w"], ["y"], kernel_shape=[3], pads=[1, 1])
    assert_matches_oracle(model_1d([r, c], n, [sizes, weight("w", [1, 1, 3])]), n,
                          tmp_path / "rs.onnx")


def test_misaligned_merge_is_flagged(tmp_path):
    n = 12
    a = helper.make_node("Conv", ["x", "w"], ["a"], kernel_shape=[2], auto_pad="SAME_UPPER")
    b = helper.make_node("Conv", ["x", "w"], ["b"], kernel_shape=[2], auto_pad="SAME_LOWER")
    add = helper.make_node("Add", ["a", "b"], ["y"], name="merge")
    an = assert_matches_oracle(model_1d([a, b, add], n, [weight("w", [1, 1, 2])]), n,
                               tmp_path / "mis.onnx")
    assert any(f.kind == "misaligned" and f.node == "merge" for f in an.findings)


def test_pad_slice_pool_depth_to_space(tmp_path):
    n = 16
    pads = numpy_helper.from_array(np.array([0, 0, 2, 0, 0, 1], np.int64), "pads")
    starts = numpy_helper.from_array(np.array([1], np.int64), "st")
    ends = numpy_helper.from_array(np.array([100], np.int64), "en")
    axes = numpy_helper.from_array(np.array([2], np.int64), "ax")
    steps = numpy_helper.from_array(np.array([2], np.int64), "sp")
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
             helper.make_node("Slice", ["p", "st", "en", "ax", "sp"], ["s"]),
             helper.make_node("MaxPool", ["s"], ["m"], kernel_shape=[3], strides=[2],
                              pads=[1, 1], ceil_mode=1),
             helper.make_node("Relu", ["m"], ["y"])]
    assert_matches_oracle(model_1d(nodes, n, [pads, starts, ends, axes, steps]), n,
                          tmp_path / "p.onnx")


# --------------------------------------------------------------------------- exported models

def export(model, path, size):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.zeros(1, 3, *size), str(path), dynamo=False,
                          opset_version=17)


def onnx_scope(module: str) -> str:
    parts = module.split(".")
    return "/" + "/".join(".".join(parts[:i + 1]) for i in range(len(parts))) + "/"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "googlenet",
                                  "squeezenet1_1", "lraspp_mobilenet_v3_large",
                                  "shufflenet_v2_x0_5"])
def test_exported_models_match_the_torch_front_end(tmp_path, name):
    tv = pytest.importorskip("torchvision")
    from torch_checks import stage_modules

    model = tv.models.get_model(name, weights=None, **(
        {"weights_backbone": None} if "lraspp" in name else {}))
    size = (64, 64)
    path = tmp_path / f"{name}.onnx"
    export(model, path, size)
    t = rfield.analyze(model, size)
    o = rfield.analyze(str(path))
    compared = 0
    onnx_nodes = list(o.graph.nodes)
    for module in stage_modules(t):
        scope = onnx_scope(module)
        here = [n for n in onnx_nodes if n.startswith(scope)]
        if not here:
            continue
        tf, of = t.field(module), o.fields[here[-1]]
        assert (tf.rf, tf.jump, tf.start, tf.is_global) == (of.rf, of.jump, of.start,
                                                           of.is_global), module
        assert t.box(module).ranges == o.box(here[-1]).ranges, module
        compared += 1
    assert compared >= 2
    last_t, last_o = t.field(t.last_spatial(t.graph.last())), o.field(
        o.last_spatial(o.graph.last()))
    assert (last_t.rf, last_t.local_rf) == (last_o.rf, last_o.local_rf)
    # the legacy exporter computes chunk bounds from the input's shape: folded, they are
    # the channel splits they are (no unknown operator, no global field)
    assert not o.graph.unknown_ops


# --------------------------------------------------------------------------- untrusted files


def good_model():
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3], name="c")
    return model_1d([conv], 10, [weight("w", [1, 1, 3])])


def test_truncated_and_garbage_files(capsys, tmp_path):
    data = good_model().SerializeToString()
    for name, blob in (("trunc.onnx", data[: len(data) // 2]), ("garbage.onnx", b"\xff" * 99)):
        p = tmp_path / name
        p.write_bytes(blob)
        code, out, err = run(capsys, "analyze", str(p))
        assert code == 2 and out == "" and "not a valid ONNX file" in err, err


def test_cycle_missing_input_and_absurd_dimension(capsys, tmp_path):
    cyc = model_1d([helper.make_node("Relu", ["b"], ["a"], name="r1"),
                    helper.make_node("Add", ["x", "a"], ["b"], name="r2"),
                    helper.make_node("Relu", ["b"], ["y"], name="r3")], 8)
    miss = model_1d([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")], 8)
    for name, model, needle in (("cyc.onnx", cyc, "cycle"), ("miss.onnx", miss, "'ghost'")):
        p = tmp_path / name
        onnx.save(model, p)
        code, out, err = run(capsys, "analyze", str(p))
        assert code == 2 and out == "" and needle in err, err
    p = tmp_path / "ok.onnx"
    onnx.save(good_model(), p)
    code, out, err = run(capsys, "analyze", str(p), "--input", "99999999999")
    assert code == 2 and "absurd" in err


def test_external_data_is_never_read(tmp_path):
    m = good_model()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../etc/passwd"), ("offset", "0"), ("length", "12")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    p = tmp_path / "ext.onnx"
    p.write_bytes(m.SerializeToString())
    a = rfield.analyze(str(p))
    assert a.field().rf == (3,)


def test_onnx_node_and_tensor_names(capsys, tmp_path):
    p = tmp_path / "ok.onnx"
    onnx.save(good_model(), p)
    for node in ("c", "y"):
        code, out, err = run(capsys, "analyze", str(p), "--node", node, "--json")
        assert code == 0, err


def test_unknown_operator_reported(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3], name="c"),
             helper.make_node("CumSum", ["c", "axis"], ["y"], name="cs")]
    axis = numpy_helper.from_array(np.array(2, np.int64), "axis")
    p = tmp_path / "u.onnx"
    onnx.save(model_1d(nodes, 10, [weight("w", [1, 1, 3]), axis]), p)
    a = rfield.analyze(str(p))
    assert a.graph.unknown_ops == {"CumSum": 1} and a.field().is_global
    with pytest.raises(rfield.UnsupportedError):
        rfield.analyze(str(p), strict=True)


@pytest.mark.parametrize("opset", [7, 9])
def test_old_opsets(tmp_path, opset):
    """Upsample (scales as attribute at 7, as input at 9), Pad and Slice with attributes."""
    n = 10
    inits = []
    if opset == 7:
        up = helper.make_node("Upsample", ["p"], ["u"], scales=[1.0, 1.0, 2.0], mode="nearest")
    else:
        inits.append(numpy_helper.from_array(np.array([1, 1, 2], np.float32), "scales"))
        up = helper.make_node("Upsample", ["p", "scales"], ["u"], mode="nearest")
    nodes = [helper.make_node("Pad", ["x"], ["p"], pads=[0, 0, 1, 0, 0, 2], mode="edge"),
             up,
             helper.make_node("Slice", ["u"], ["s"], starts=[1], ends=[20], axes=[2]),
             helper.make_node("MaxPool", ["s"], ["y"], kernel_shape=[3], strides=[2])]
    model = model_1d(nodes, n, inits, opset=opset)
    # the reference evaluator runs Upsample from opset 9 on: the oracle runs a converted
    # copy, rfield reads the original
    oracle = onnx.version_converter.convert_version(model, 9) if opset < 9 else None
    assert_matches_oracle(model, n, tmp_path / "old.onnx", oracle)


def test_weights_are_stripped_without_decoding():
    from rfield.frontends.onnx_wire import KEEP_BYTES, strip_weights

    big = numpy_helper.from_array(np.ones((8, 8, 3, 3), np.float32), "w")
    small = numpy_helper.from_array(np.array([1, 1, 2], np.float32), "scales")
    m = model_1d([helper.make_node("Relu", ["x"], ["y"])], 4, [big, small])
    assert big.ByteSize() > KEEP_BYTES > small.ByteSize()
    stripped = onnx.ModelProto()
    stripped.ParseFromString(strip_weights(m.SerializeToString()))
    w, s = stripped.graph.initializer
    assert list(w.dims) == [8, 8, 3, 3] and not w.raw_data and not w.float_data
    assert numpy_helper.to_array(s).tolist() == [1, 1, 2]
    assert stripped.graph.node[0].op_type == "Relu"


@pytest.mark.parametrize("op,channels,size", [("DepthToSpace", 4, 5), ("SpaceToDepth", 1, 6)])
def test_depth_space_2d(tmp_path, op, channels, size):
    """2-D: each output unit's box per axis, from one-hot inputs (all channels at a pixel)."""
    node = helper.make_node(op, ["x"], ["y"], blocksize=2)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "d.onnx"
    onnx.save(model, path)
    a = rfield.analyze(str(path))
    sess = ReferenceEvaluator(model)
    out_h = a.graph.nodes[a.graph.last()].size[0]
    deps: dict = {}
    for r in range(size):
        for c in range(size):
            x = np.zeros((1, channels, size, size), np.float32)
            x[0, :, r, c] = 1
            y = sess.run(None, {"x": x})[0][0].sum(0)
            for o in zip(*np.nonzero(y)):
                deps.setdefault(o, []).append((r, c))
    assert len(deps) == out_h * out_h
    for (i, j), pix in deps.items():
        rows, cols = [p[0] for p in pix], [p[1] for p in pix]
        assert a.box(a.graph.last(), (int(i), int(j))).ranges == (
            (min(rows), max(rows)), (min(cols), max(cols)))


def test_dynamic_input_needs_an_input_size(capsys, tmp_path):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3], name="c")
    g = helper.make_graph([conv], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "n"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[weight("w", [1, 1, 3])])
    p = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    code, out, err = run(capsys, "analyze", str(p))
    assert code == 2 and out == "" and "no fixed spatial size; give --input" in err
    code, out, err = run(capsys, "analyze", str(p), "--input", "12", "--json")
    assert code == 0 and json.loads(out)["layers"][0]["output_size"] == [10]


def test_reshapes_keep_or_follow_spatial_dims(tmp_path):
    """A channel reshape keeps the field exact; one that merges positions with channels
    keeps them (each element is one position's): the field is the conv's."""
    n = 8
    keep = numpy_helper.from_array(np.array([1, 2, 1, n - 2], np.int64), "keep")
    back = numpy_helper.from_array(np.array([1, 2, n - 2], np.int64), "back")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3]),
             helper.make_node("Reshape", ["c", "keep"], ["r"]),
             helper.make_node("Squeeze", ["r", "ax"], ["s"]),
             helper.make_node("Reshape", ["s", "back"], ["y"])]
    axes = numpy_helper.from_array(np.array([2], np.int64), "ax")
    a = assert_matches_oracle(model_1d(nodes, n, [weight("w", [2, 1, 3]), keep, back, axes]),
                              n, tmp_path / "r.onnx")
    assert not a.graph.unknown_ops
    flat = numpy_helper.from_array(np.array([1, -1], np.int64), "flat")
    merged = model_1d([helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3]),
                       helper.make_node("Reshape", ["c", "flat"], ["y"])], n,
                      [weight("w", [2, 1, 3]), flat])
    p = tmp_path / "m.onnx"
    onnx.save(merged, p)
    a = rfield.analyze(str(p))
    assert not a.graph.unknown_ops
    assert a.field().rf == (3,) and not a.field().is_global


def test_unknown_ops_on_merged_positions_are_reported(tmp_path):
    """After a reshape that merges positions, an unknown op is reported by name."""
    n = 8
    flat = numpy_helper.from_array(np.array([1, -1], np.int64), "flat")
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3]),
             helper.make_node("Reshape", ["c", "flat"], ["r"]),
             helper.make_node("CumSum", ["r", "axis"], ["y"])]
    p = tmp_path / "t.onnx"
    onnx.save(model_1d(nodes, n, [weight("w", [2, 1, 3]), flat, axis]), p)
    a = rfield.analyze(str(p))
    assert a.graph.unknown_ops == {"CumSum": 1}
    assert a.field().is_global


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small",
                                  "deeplabv3_mobilenet_v3_large"])
def test_dynamo_exports_keep_module_names(tmp_path, name):
    """torch.onnx.export(dynamo=True) names nodes node_Conv_292; the module paths it
    writes in each node's metadata make --node layer3 work as on the torch model.
    DeepLabV3's pooling branch is resized back by a Resize whose sizes come from a Shape
    subgraph: folded, it reads as the torch model does (global, local 1859 at 224)."""
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    pytest.importorskip("onnxscript")
    from torch_checks import stage_modules

    extra = {"weights_backbone": None} if "deeplab" in name else {}
    model = tv.models.get_model(name, weights=None, **extra).eval()
    path = tmp_path / f"{name}.onnx"
    size = (224, 224) if "deeplab" in name else (64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(path), dynamo=True)
    t = rfield.analyze(model, size)
    o = rfield.analyze(str(path))
    assert not o.graph.unknown_ops
    modules = stage_modules(t) + ([""] if "deeplab" in name else [])
    assert modules
    for module in modules:
        tf, of = t.field(module or None), o.field(module or None)
        assert (tf.rf, tf.jump, tf.start, tf.is_global, tf.local_rf) == (
            of.rf, of.jump, of.start, of.is_global, of.local_rf), module
        assert t.box(module or None).ranges == o.box(module or None).ranges, module


def test_depth_groups_an_export_by_its_module_paths(tmp_path, capsys):
    """--depth 1 on an exported resnet18 keeps layer1..layer4, with the fields the
    torch front-end gives the same modules (issue 22, item 9)."""
    pytest.importorskip("torchvision")
    from rfield.models.torch_models import build_target

    path = tmp_path / "r18.onnx"
    export(build_target("torchvision:resnet18", meta=False), path, (64, 64))
    assert main(["analyze", str(path), "--input", "64,64", "--depth", "1"]) == 0
    rows = {line.split()[0]: line.split()[3:] for line in capsys.readouterr().out.splitlines()
            if line.startswith("layer")}
    assert {"layer1", "layer2", "layer3", "layer4"} <= set(rows)
    assert main(["analyze", "torchvision:resnet18", "--input", "64,64", "--depth", "1"]) == 0
    torch_rows = {line.split()[0]: line.split()[3:] for line in
                  capsys.readouterr().out.splitlines() if line.startswith("layer")}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        assert rows[name] == torch_rows[name], name
