"""Every model of keras.applications (weights=None, with its classifier), on the
backend KERAS_BACKEND names (``make test-slow`` runs it on torch, whose eager autograd
needs no compilation: XLA takes minutes to compile EfficientNetB7): at its native
size, read with no unknown layer; at 96 x 96 (float64 back-propagation at 600 x 600
takes minutes), the centre unit of the last spatial layer (the one holding the local
field of a global model) against back-propagation in Keras. A model over 150 M
parameters is left to the atlas sweep for the measurement. The slow sweep; CI runs it."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("jax")

import rfield  # noqa: E402
from rfield.errors import TargetError  # noqa: E402
from rfield.frameworks.keras_models import native_size  # noqa: E402
from rfield.models.keras_models import application_names, build_application  # noqa: E402

from keras_checks import check_boxes  # noqa: E402

pytestmark = pytest.mark.slow
MEASURED_SIZE = (96, 96)
MAX_MEASURED_PARAMS = 150e6
NATIVE = {"InceptionV3": (299, 299), "Xception": (299, 299), "NASNetLarge": (331, 331),
          "InceptionResNetV2": (299, 299), "EfficientNetB7": (600, 600),
          "MobileNetV3Small": (224, 224), "ResNet50": (224, 224)}


def last_layer(a) -> str:
    last = a.last_spatial(a.graph.provenance.outputs["output"])
    return min((n for n, v in a.graph.aliases.items() if v == last and "/" not in n),
               key=len)


@pytest.mark.parametrize("name", application_names(keras))
def test_application(name):
    try:
        model = build_application(name)
    except TargetError as exc:  # NASNetMobile on torch: Keras refuses to build it
        if "not available with the" not in str(exc):
            raise
        pytest.skip(f"does not build on Keras' {keras.backend.backend()} backend")
    size, _ = native_size(model)  # the MobileNetV3s take any size: 224
    a = rfield.analyze(model, size)
    assert not a.graph.unknown_ops, a.graph.unknown_ops
    assert a.graph.input_size == NATIVE.get(name, a.graph.input_size)
    if model.count_params() > MAX_MEASURED_PARAMS:
        pytest.skip(f"{model.count_params() / 1e6:.0f} M parameters: measured in the atlas")
    small = build_application(name, {"include_top": False}, MEASURED_SIZE)
    check_boxes(small, layers=[last_layer(rfield.analyze(small))], limit=1)
