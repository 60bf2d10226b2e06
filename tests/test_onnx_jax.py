"""ONNX files from jax2onnx: the input stays NHWC, pooling runs over a 6-D view with
windows of 1 on the batch and channel dims. Every output unit's box is checked against
the dependencies measured through the same Flax network in JAX
(``exporters/jax_onnx.py``, its own process)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

import rfield  # noqa: E402

from onnx_checks import require_installed, run_exporter, unit_boxes  # noqa: E402

require_installed("jax2onnx", "flax")


def test_flax_export_every_unit_box_equals_the_measurement(tmp_path):
    measured = run_exporter("jax_onnx.py", tmp_path)["small"]
    a = rfield.analyze(str(tmp_path / "small.onnx"))
    assert not a.graph.unknown_ops
    assert unit_boxes(a, measured["output"]) == measured["boxes"]
