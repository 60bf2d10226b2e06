"""ONNX files as Keras users make them: tf2onnx and Keras' own ``model.export`` keep the
input NHWC. Every output unit's box is checked against the dependencies measured through
the same network in TensorFlow (``exporters/keras_onnx.py``, its own process)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

import rfield  # noqa: E402

from onnx_checks import require_installed, run_exporter, unit_boxes  # noqa: E402

require_installed("tensorflow", "tf2onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("keras_onnx")
    return out, run_exporter("keras_onnx.py", out)


@pytest.mark.parametrize("name", ["small", "small_keras_export", "mobilenet_v2"])
def test_every_unit_box_equals_the_measurement(exported, name):
    out, measured = exported
    want = measured["small" if name == "small_keras_export" else name]
    a = rfield.analyze(str(out / f"{name}.onnx"))
    assert not a.graph.unknown_ops
    assert unit_boxes(a, want["output"]) == want["boxes"]


def test_gated_model_is_global_and_its_local_field_is_the_ungated_one(exported):
    out, measured = exported
    assert all(box == [[0, 32], [0, 28]] for box in measured["small_gate"]["boxes"])
    gated = rfield.analyze(str(out / "small_gate.onnx"))
    plain = rfield.analyze(str(out / "small.onnx"))
    f, g = plain.field(), gated.field()
    assert g.is_global and not gated.graph.unknown_ops
    assert (g.local_rf, g.local_jump, g.local_start) == (f.rf, f.jump, f.start)
    assert unit_boxes(gated, measured["small_gate"]["output"]) == measured["small_gate"]["boxes"]


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0"])
def test_squeeze_excitation_applications_read_whole_input(exported, name):
    """Normalisation constants as extra graph inputs, NHWC gates: read, global, nothing
    unknown, as measured."""
    out, measured = exported
    a = rfield.analyze(str(out / f"{name}.onnx"))
    assert a.field().is_global and a.field().local_rf is not None
    assert not a.graph.unknown_ops
    assert unit_boxes(a, measured[name]["output"]) == measured[name]["boxes"]
