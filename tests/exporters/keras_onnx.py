"""Export Keras models to ONNX as users do (tf2onnx, and Keras' own ``model.export``), and
measure each exported network's dependency boxes in TensorFlow itself.

Run as a script in its own process (TensorFlow and torch are not loaded together):
``python keras_onnx.py OUTDIR``. Writes ``OUTDIR/NAME.onnx`` and ``OUTDIR/measured.json``:
for each model, per output unit and input axis, the first and last input index whose
change changes that unit (``null`` where no index does).

The measurement shares no code with rfield: weights are made positive (scaled by fan-in)
so no unit cancels out, biases are zero, batch norms and activations are identities and
gates x / (1 + |x|) (as in rfield's torch measurement), and each input row
(then column) of a constant input is raised in its own batch item; float64 so the
change through a global average is far above rounding.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
from raised_rows import dependency_boxes  # noqa: E402

# an input of 200 stays positive through the applications' preprocessing (x / 127.5 - 1,
# or x / 255 normalised by ImageNet's mean and deviation), so no ReLU hides a raise
BASE, RAISE = 200.0, 1e6


def small(keras, gate: bool):
    """Same padding with stride 2 (TensorFlow pads after), dilation, pooling, a merge,
    bilinear upsampling, transposed convolution, padding and cropping; with ``gate`` a
    squeeze-and-excitation multiply in NHWC."""
    L = keras.layers
    x = inp = keras.Input((33, 29, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(x)
    x = L.DepthwiseConv2D(3, dilation_rate=2, padding="same", name="dw")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    a = L.Conv2D(8, 1, name="branch_a")(x)
    b = L.Conv2D(8, (3, 1), padding="same", name="branch_b")(x)
    x = L.Add(name="add")([a, b])
    if gate:
        g = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
        g = L.Conv2D(8, 1, activation="sigmoid", name="excite")(g)
        x = L.Multiply(name="gate")([x, g])
    x = L.UpSampling2D(2, interpolation="bilinear", name="up")(x)
    x = L.ZeroPadding2D(((1, 0), (0, 2)), name="zpad")(x)
    x = L.Conv2DTranspose(4, 3, strides=2, padding="valid", name="deconv")(x)
    x = L.Cropping2D(((2, 1), (0, 3)), name="crop")(x)
    x = L.AveragePooling2D(2, name="avg")(x)
    return keras.Model(inp, x, name="small_gate" if gate else "small")


def builders(keras) -> dict:
    apps = keras.applications
    return {
        "small": lambda: small(keras, gate=False),
        "small_gate": lambda: small(keras, gate=True),
        "mobilenet_v2": lambda: apps.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35,
                                                 include_top=False, weights=None),
        "mobilenet_v3_small": lambda: apps.MobileNetV3Small(
            input_shape=(96, 96, 3), include_top=False, weights=None),
        "efficientnet_b0": lambda: apps.EfficientNetB0(input_shape=(64, 64, 3),
                                                       include_top=False, weights=None),
    }


def make_positive(keras, model) -> None:
    """Every kernel positive and scaled by its fan-in, biases zero, batch norms identity,
    activations identities (a ReLU6 or a gate would saturate and hide a dependency)."""
    for layer in model.layers:
        if hasattr(layer, "activation"):
            gate = getattr(layer.activation, "__name__", "") in ("sigmoid", "hard_sigmoid")
            layer.activation = keras.activations.softsign if gate else keras.activations.linear
        if type(layer).__name__ == "ReLU":
            layer.max_value = None
        weights = layer.get_weights()
        if not weights:
            continue
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            layer.set_weights([np.ones_like(w) if i in (0, 3) else np.zeros_like(w)
                               for i, w in enumerate(weights)])
        elif kind == "Normalization":
            continue
        else:
            made = []
            for w, var in zip(weights, layer.weights):
                if w.ndim <= 1:
                    made.append(np.zeros_like(w))
                else:  # a depthwise kernel (kh, kw, in, multiplier) sums over kh * kw
                    depthwise = kind.startswith("DepthwiseConv") or "depthwise" in var.name
                    summed = w.shape[:-2] if depthwise else w.shape[:-1]
                    made.append((np.abs(w) + 1) / max(1, int(np.prod(summed))))
            layer.set_weights(made)


def measure(model) -> tuple[list, list]:
    import tensorflow as tf

    run = lambda x: model(tf.constant(x)).numpy()
    return dependency_boxes(run, tuple(model.input_shape[1:]), BASE, RAISE, 1e-9)


def export_tf2onnx(model, path: str) -> None:
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)


def main(out: str) -> None:
    import keras

    measured = {}
    for name, build in builders(keras).items():
        keras.config.set_floatx("float64")
        model = build()
        make_positive(keras, model)
        size, boxes = measure(model)
        measured[name] = {"output": size, "boxes": boxes}
        # the exporters take float32 models: the same network again, its weights copied
        keras.config.set_floatx("float32")
        fresh = build()
        fresh.set_weights([w.astype(np.float32) for w in model.get_weights()])
        export_tf2onnx(fresh, os.path.join(out, f"{name}.onnx"))
        if name == "small":
            fresh.export(os.path.join(out, "small_keras_export.onnx"), format="onnx",
                         verbose=False)
    with open(os.path.join(out, "measured.json"), "w") as f:
        json.dump(measured, f)


if __name__ == "__main__":
    main(sys.argv[1])
