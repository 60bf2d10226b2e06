"""Every model of keras.applications (weights=None, with its classifier) on the JAX
backend: at its native size, read with no unknown layer and the same numbers as
``keras:NAME``; at 96 x 96 (float64 back-propagation at 600 x 600 takes minutes), the
centre unit of the last spatial layer (the one holding the local field of a global
model) against back-propagation in Keras. A model over 150 M parameters is left to
the atlas sweep for the measurement. The slow sweep; CI runs it."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("jax")

import rfield  # noqa: E402
from rfield.frontends.keras_targets import application_names, build_application  # noqa: E402

from keras_checks import check_boxes  # noqa: E402

pytestmark = pytest.mark.slow
MEASURED_SIZE = (96, 96)
MAX_MEASURED_PARAMS = 150e6


def last_layer(a) -> str:
    last = a.last_spatial(a.graph.provenance.outputs["output"])
    return min((n for n, v in a.graph.aliases.items() if v == last and "/" not in n),
               key=len)


@pytest.mark.parametrize("name", application_names(keras))
def test_application(name):
    if keras.backend.backend() != "jax":
        pytest.skip("the sweep runs on Keras' JAX backend")
    named = rfield.analyze(f"keras:{name}")
    model = build_application(name, input_size=named.graph.input_size)
    a = rfield.analyze(model)  # the object measured (auto names count up per build)
    assert not a.graph.unknown_ops, a.graph.unknown_ops
    numbers = lambda an: [(f.rf, f.jump, f.is_global, f.local_rf) for f in an.layers]
    assert numbers(a) == numbers(named)
    if model.count_params() > MAX_MEASURED_PARAMS:
        pytest.skip(f"{model.count_params() / 1e6:.0f} M parameters: measured in the atlas")
    small = build_application(name, {"include_top": False}, MEASURED_SIZE)
    check_boxes(small, layers=[last_layer(rfield.analyze(small))], limit=1)
