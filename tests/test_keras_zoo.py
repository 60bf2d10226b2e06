"""Every model of keras.applications (weights=None, with its classifier) at its native
size on the JAX backend: read with no unknown layer, and the centre unit of the last
spatial layer (the one that holds the local field of a global model) against
back-propagation in Keras. The slow sweep; CI runs it."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("jax")

import rfield  # noqa: E402
from rfield.frontends.keras_targets import application_names, build_application  # noqa: E402

from keras_checks import check_boxes  # noqa: E402

pytestmark = pytest.mark.slow


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
    last = a.last_spatial(a.graph.provenance.outputs["output"])
    layer = min((n for n, v in a.graph.aliases.items() if v == last and "/" not in n),
                key=len)
    check_boxes(model, layers=[layer], limit=1)
