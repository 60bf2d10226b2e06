"""TensorFlow Lite files (``.tflite``) as users make them: Keras models converted by
TensorFlow's own converter (float, and int8 with a representative dataset), in a process
of its own (``exporters/keras_tflite.py``). Every output unit's box is checked against
the dependencies measured through the Keras model in TensorFlow; the full-size
MobileNetV2 layer by layer against rfield's reading of ``keras:MobileNetV2``; the
flatbuffer reader against TensorFlow's generated one; hostile and mutated files end in
one line and exit 2."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rfield
from rfield.cli import main
from rfield.frontends.tflite_flat import BUILTINS, OPTIONS, read_model

pytest.importorskip("onnx")  # the exporters' helpers live beside the ONNX ones

from checks import read_or_refuse  # noqa: E402
from onnx_checks import require_installed, run_exporter, unit_boxes  # noqa: E402

require_installed("tensorflow")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("keras_tflite")
    measured = run_exporter("keras_tflite.py", out)
    return out, measured, json.loads((out / "described.json").read_text())


@pytest.mark.parametrize("name", [f"{m}{q}" for m in ("small", "mobilenet_v2", "ops", "shapes")
                                  for q in ("", "_int8")])
def test_every_unit_box_equals_the_measurement(converted, name):
    """small: same padding with stride 2, a dilated depthwise conv (written by the
    converter as SPACE_TO_BATCH_ND, conv, BATCH_TO_SPACE_ND), pooling, a merge, half-pixel
    bilinear upsampling, padding, a transposed conv, a crop (STRIDED_SLICE); ops: every
    resize flag, reflection, nearest repeat (EXPAND_DIMS, TILE, RESHAPE to a folded
    shape), depth <-> space; shapes: transposes, splits, stacks, a mean along one axis
    broadcast back. The int8 files read the same."""
    out, measured, _ = converted
    want = measured[name.removesuffix("_int8")]
    a = rfield.analyze(str(out / f"{name}.tflite"))
    assert not a.graph.unknown_ops
    assert unit_boxes(a, want["output"]) == want["boxes"]


def _keras_name(node: str) -> str | None:
    """``mobilenetv2_1.00_224_1/block_1_expand_relu_1/Relu6`` -> ``block_1_expand_relu``:
    the Keras layer whose output the converter's tensor is."""
    m = re.fullmatch(r"[^/]+/(\w+?)_1/[^/]+", node)
    return m and m.group(1)


@pytest.mark.parametrize("name", ["keras_mobilenet_v2", "keras_mobilenet_v2_int8"])
def test_mobilenet_v2_reads_as_keras_reads_it_layer_by_layer(converted, name):
    pytest.importorskip("keras")
    out, _, _ = converted
    flat = rfield.analyze(str(out / f"{name}.tflite"))
    keras = rfield.analyze("keras:MobileNetV2", (224, 224))
    pairs = [(n, _keras_name(n)) for n in flat.fields]
    pairs = [(n, k) for n, k in pairs if k in keras.fields]
    assert len(pairs) >= 50  # every conv and relu of the 53 blocks' outputs
    for n, k in pairs:
        f, g = flat.fields[n], keras.fields[k]
        assert (f.rf, f.jump, f.start, f.output_size) == (g.rf, g.jump, g.start,
                                                          g.output_size), (n, k)
    # a node found by its scope (the converter's name for the Keras layer)
    assert flat.field("mobilenetv2_1.00_224_1/out_relu_1").rf == (491, 491)
    f, g = flat.field(), keras.field()
    assert f.is_global and (f.is_global, f.local_rf) == (g.is_global, g.local_rf)


def test_reader_sees_what_tensorflows_generated_reader_sees(converted):
    out, _, described = converted
    for file, want in described.items():
        m = read_model(str(out / file))
        try:
            assert [(t.name, list(t.shape)) for t in m.tensors] == \
                [(n, s) for n, s in want["tensors"]]
            for op, w in zip(m.operators, want["ops"], strict=True):
                assert (op.code, list(op.inputs), list(op.outputs)) == \
                    (w["code"], w["inputs"], w["outputs"])
                for field, value in w["options"].items():
                    name = re.sub(r"(?<!^)([A-Z])", r"_\1", field).lower()
                    assert op.option(name) == value, (file, op.code, name)
        finally:
            m.flat.data.close()


def test_operator_names_and_option_fields_are_tensorflows():
    """The builtin operator enum and every option table rfield reads, against
    TensorFlow's generated schema (read as text: TensorFlow is not imported here)."""
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations
    source = (Path(spec.submodule_search_locations[0]) / "lite" / "python" /
              "schema_py_generated.py").read_text()
    enum = source.split("class BuiltinOperator(object):")[1].split("\nclass ")[0]
    codes = {k: int(v) for k, v in re.findall(r"(\w+) = (\d+)", enum)}
    assert {n: i for i, n in enumerate(BUILTINS)} == {n: i for n, i in codes.items()
                                                      if i < len(BUILTINS)}
    tables = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
              "TRANSPOSE_CONV": "TransposeConvOptions",
              "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
              "RESIZE_BILINEAR": "ResizeBilinearOptions",
              "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
              "CONCATENATION": "ConcatenationOptions", "MIRROR_PAD": "MirrorPadOptions",
              "PACK": "PackOptions", "STRIDED_SLICE": "StridedSliceOptions",
              "BATCH_MATMUL": "BatchMatMulOptions", "DEPTH_TO_SPACE": "DepthToSpaceOptions",
              "SPACE_TO_DEPTH": "SpaceToDepthOptions"}
    for code, fields in OPTIONS.items():
        table = tables.get(code, "ReducerOptions")
        body = source.split(f"class {table}(object):")[1].split("\nclass ")[0]
        accessors = dict(re.findall(r"def (\w+)\(self\):\n\s+o = flatbuffers\.number_types"
                                    r"\.UOffsetTFlags\.py_type\(self\._tab\.Offset\((\d+)\)",
                                    body))
        for name, (slot, _) in fields.items():
            camel = "".join(w.title() for w in name.split("_"))
            assert int(accessors[camel]) == 4 + 2 * slot, (code, name)


def test_another_size_is_refused_and_verify_says_why(converted, capsys):
    out, _, _ = converted
    path = str(out / "small.tflite")
    assert main(["analyze", path, "--input", "64,64"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "33 x 29" in err
    assert main(["verify", path]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "weights never loaded" in err
    assert main(["ops"]) == 0 and "TRANSPOSE_CONV" in capsys.readouterr().out


# --------------------------------------------------------------------------- untrusted

def _cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", path.name],
                          cwd=path.parent, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def _patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value):]


CASES = {
    "empty": lambda d: b"",
    "truncated": lambda d: d[:len(d) // 3],
    "no-identifier": lambda d: _patched(d, 4, b"XXXX"),
    "root-outside": lambda d: _patched(d, 0, (len(d) + 64).to_bytes(4, "little")),
    "root-negative-vtable": lambda d: _patched(d, 0, (len(d) - 4).to_bytes(4, "little")),
    "text": lambda d: b"not a flatbuffer at all, just text\n" * 4,
    "onnx-bytes": lambda d: b"\x08\x07\x12\x07pytorch" + d[16:64],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_one_line_and_exit_2(converted, tmp_path, case):
    out, _, _ = converted
    path = tmp_path / "x.tflite"
    path.write_bytes(CASES[case]((out / "small.tflite").read_bytes()))
    proc = _cli(path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rfield: error: x.tflite") and "internal error" not in lines[0]


def test_a_fifo_and_a_directory_are_refused(tmp_path):
    import os

    (tmp_path / "d.tflite").mkdir()
    os.mkfifo(tmp_path / "f.tflite")
    for name in ("d.tflite", "f.tflite"):
        proc = _cli(tmp_path / name)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_fuzzing_a_real_file_never_ends_in_a_traceback(converted, tmp_path):
    """Bytes of a real file changed at random (offsets, counts, codes, option values):
    each read ends in a graph or in one line."""
    import os

    out, _, _ = converted
    data = (out / "small.tflite").read_bytes()
    rng = random.Random(0)
    outcomes = {"read": 0, "refused": 0}
    for i in range(int(os.environ.get("RFIELD_FUZZ", "300"))):
        bad = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 4])):
            at = rng.randrange(len(bad) - 4)
            bad[at:at + rng.choice([1, 4])] = rng.choice(
                [b"\xff", b"\x00", b"\x07", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
                 bytes([rng.randrange(256)])])
        path = tmp_path / f"bad{i % 3}.tflite"
        path.write_bytes(bytes(bad))
        read_or_refuse(path, outcomes)
    assert outcomes["read"] and outcomes["refused"], outcomes
