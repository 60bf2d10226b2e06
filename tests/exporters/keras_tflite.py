"""Convert Keras models to TensorFlow Lite flatbuffers as users do
(``tf.lite.TFLiteConverter.from_keras_model``: float, and int8 with a representative
dataset), and measure each network's dependency boxes in TensorFlow itself.

Run as a script in its own process (TensorFlow and torch are not loaded together):
``python keras_tflite.py OUTDIR``. Writes ``OUTDIR/NAME.tflite``,
``OUTDIR/NAME_int8.tflite``, ``OUTDIR/measured.json`` (as ``keras_onnx.py``: per
output unit and input axis, the first and last input index whose change changes it,
measured with the same code, which shares none with rfield) and
``OUTDIR/described.json``: each file as TensorFlow's own flatbuffer reader sees it.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
from keras_onnx import builders, make_positive, measure  # noqa: E402

#: the models converted and measured (keras_onnx's builders and ``ops`` below); the
#: full-size MobileNetV2 that ``keras:MobileNetV2`` builds is converted but not measured
#: (its fields are compared with rfield's reading of the Keras model itself)
MEASURED = ("small", "mobilenet_v2", "ops", "shapes")


def ops(keras):
    """The converter's other spatial operators: MIRROR_PAD, RESIZE_NEAREST_NEIGHBOR and
    RESIZE_BILINEAR under each of their flags, CONCATENATION, STRIDED_SLICE with a
    stride, SPACE_TO_DEPTH and DEPTH_TO_SPACE, pools with SAME padding."""
    import tensorflow as tf

    L, v1 = keras.layers, tf.compat.v1.image
    x = inp = keras.Input((30, 26, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="c1")(x)
    x = L.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 1], [1, 2], [0, 0]], mode="REFLECT"),
                 name="mirror")(x)  # 33 x 29
    up = L.UpSampling2D(2, interpolation="nearest", name="up")(x)  # 66 x 58
    a = L.Lambda(lambda t: v1.resize_nearest_neighbor(t, (47, 41), align_corners=True),
                 name="nearest_corners")(up)
    b = L.Lambda(lambda t: v1.resize_bilinear(t, (47, 41)), name="bilinear_legacy")(x)
    c = L.Lambda(lambda t: v1.resize_bilinear(t, (47, 41), align_corners=True),
                 name="bilinear_corners")(x)
    d = L.Lambda(lambda t: v1.resize_nearest_neighbor(t, (47, 41)), name="nearest_legacy")(x)
    e = L.Lambda(lambda t: tf.image.resize(t, (47, 41), method="nearest"),
                 name="nearest_half")(x)
    x = L.Concatenate(name="cat")([a, b, c, d, e])
    x = L.Lambda(lambda t: t[:, 1::2, :-1], name="every_other_row")(x)  # 23 x 40
    x = L.Lambda(lambda t: tf.nn.space_to_depth(t[:, :22], 2), name="to_depth")(x)
    x = L.Conv2D(8, 3, name="c2")(x)  # 9 x 18
    x = L.Lambda(lambda t: tf.nn.depth_to_space(t, 2), name="to_space")(x)  # 18 x 36
    x = L.AveragePooling2D(3, strides=1, padding="same", name="avg")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="max")(x)
    return keras.Model(inp, x, name="ops")


def shapes(keras):
    """Operators that move dims: TRANSPOSE, SPLIT and SPLIT_V, SLICE, STRIDED_SLICE that
    drops a dim, PACK, MEAN along one spatial dim, a broadcast ADD."""
    import tensorflow as tf

    L = keras.layers
    x = inp = keras.Input((21, 17, 3), name="image")
    x = L.Conv2D(6, 3, name="c1")(x)  # 19 x 15
    x = L.Permute((2, 1, 3), name="swap")(x)  # 15 x 19
    a, b = L.Lambda(lambda t: tf.split(t, 2, axis=3), name="halves")(x)
    c, _ = L.Lambda(lambda t: tf.split(t, [2, 4], axis=3), name="parts")(x)
    x = L.Concatenate(name="cat")([b, a, c])
    x = L.Lambda(lambda t: tf.slice(t, [0, 1, 2, 0], [-1, 9, 15, -1]), name="cut")(x)
    row = L.Lambda(lambda t: tf.stack([t[:, 2], t[:, 4]], axis=1), name="rows")(x)  # 2 x 15
    m = L.Lambda(lambda t: tf.reduce_mean(t, axis=1, keepdims=True), name="mean")(row)
    x = L.Add(name="add")([x, m])  # 9 x 15, each row reads rows 2 and 4 too
    x = L.Conv2D(4, 3, strides=2, name="c2")(x)
    x = L.Permute((2, 1, 3), name="back")(x)
    return keras.Model(inp, x, name="shapes")


def convert(model, int8: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        shape = (1, *model.input_shape[1:])
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.uniform(0, 255, shape).astype(np.float32)] for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


#: per options table, the fields rfield reads, by TensorFlow's own generated accessors
FIELDS = {
    "Conv2DOptions": ("Padding", "StrideW", "StrideH", "DilationWFactor", "DilationHFactor"),
    "DepthwiseConv2DOptions": ("Padding", "StrideW", "StrideH", "DilationWFactor",
                               "DilationHFactor"),
    "Pool2DOptions": ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight"),
    "TransposeConvOptions": ("Padding", "StrideW", "StrideH"),
    "ResizeBilinearOptions": ("AlignCorners", "HalfPixelCenters"),
    "ResizeNearestNeighborOptions": ("AlignCorners", "HalfPixelCenters"),
    "ConcatenationOptions": ("Axis",),
    "ReducerOptions": ("KeepDims",),
    "StridedSliceOptions": ("BeginMask", "EndMask", "EllipsisMask", "NewAxisMask",
                            "ShrinkAxisMask"),
}


def describe(data: bytes) -> dict:
    """The file as TensorFlow's generated flatbuffer reader sees it: tensors (name,
    shape), and per operator its builtin name, tensors and the option fields above."""
    from tensorflow.lite.python import schema_py_generated as S

    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    kinds = {v: k for k, v in vars(S.BuiltinOptions).items() if not k.startswith("_")}
    m = S.Model.GetRootAsModel(data, 0)
    g = m.Subgraphs(0)
    codes = [max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
             for c in (m.OperatorCodes(i) for i in range(m.OperatorCodesLength()))]
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        kind = kinds.get(op.BuiltinOptionsType(), "NONE")
        fields = {}
        if kind in FIELDS:
            table = getattr(S, kind)()
            table.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            fields = {f: int(getattr(table, f)()) for f in FIELDS[kind]}
        ops.append({"code": names[codes[op.OpcodeIndex()]],
                    "inputs": [int(v) for v in op.InputsAsNumpy()],
                    "outputs": [int(v) for v in op.OutputsAsNumpy()], "options": fields})
    tensors = [(g.Tensors(i).Name().decode(), [int(v) for v in g.Tensors(i).ShapeAsNumpy()])
               for i in range(g.TensorsLength())]
    return {"ops": ops, "tensors": tensors,
            "builtins": {k: v for k, v in vars(S.BuiltinOperator).items()
                         if not k.startswith("_")}}


def write(out: str, name: str, model, described: dict) -> None:
    for int8 in (False, True):
        file = name + ("_int8" if int8 else "") + ".tflite"
        data = convert(model, int8)
        with open(os.path.join(out, file), "wb") as f:
            f.write(data)
        described[file] = describe(data)


def main(out: str) -> None:
    import keras

    measured: dict = {}
    described: dict = {}
    made = {**builders(keras), "ops": lambda: ops(keras), "shapes": lambda: shapes(keras)}
    for name in MEASURED:
        keras.config.set_floatx("float64")
        model = made[name]()
        make_positive(keras, model)
        size, boxes = measure(model)
        measured[name] = {"output": size, "boxes": boxes}
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")
        fresh = made[name]()
        fresh.set_weights([w.astype(np.float32) for w in model.get_weights()])
        write(out, name, fresh, described)
    write(out, "keras_mobilenet_v2", keras.applications.MobileNetV2(weights=None), described)
    with open(os.path.join(out, "measured.json"), "w") as f:
        json.dump(measured, f)
    with open(os.path.join(out, "described.json"), "w") as f:
        json.dump(described, f)


if __name__ == "__main__":
    main(sys.argv[1])
