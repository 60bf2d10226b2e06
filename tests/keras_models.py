"""Small Keras models covering every layer kind the Keras front-end reads, shared by
the JAX-backend tests and the other backends' run (keras_backend_run.py)."""

from __future__ import annotations

import keras

L = keras.layers


def model(inp, out, name="m"):
    return keras.Model(inp, out, name=name)


def tcn():
    """1-D causal, dilated (a TCN / WaveNet stack) with a residual add."""
    x = inp = keras.Input((40, 2))
    for d in (1, 2, 4):
        y = L.Conv1D(4, 3, padding="causal", dilation_rate=d, activation="relu",
                     name=f"causal{d}")(x)
        x = y if d == 1 else L.Add(name=f"res{d}")([x, y])
    x = L.MaxPooling1D(2, name="pool")(x)
    x = L.UpSampling1D(3, name="up")(x)
    x = L.ZeroPadding1D((2, 1), name="zpad")(x)
    x = L.Cropping1D((1, 3), name="crop")(x)
    x = L.AveragePooling1D(3, strides=2, padding="same", name="avg")(x)
    return model(inp, x, "tcn")


def same_padding(h: int, w: int):
    """TensorFlow's SAME at stride 2 (the extra padding after) on odd and even sizes,
    max pooling SAME, a separable and a depthwise conv, dilation."""
    x = inp = keras.Input((h, w, 3))
    x = L.Conv2D(4, 3, strides=2, padding="same", name="stem")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    x = L.DepthwiseConv2D((3, 5), strides=(1, 2), padding="same", name="dw")(x)
    x = L.SeparableConv2D(6, 3, dilation_rate=2, padding="same", name="sep")(x)
    x = L.Conv2D(4, (2, 4), strides=(2, 1), padding="same", name="even")(x)
    x = L.AveragePooling2D(2, padding="same", name="avg")(x)
    return model(inp, x, f"same_{h}x{w}")


def transposed():
    """Transposed convs: SAME and VALID, output padding, stride 3, dilation."""
    x = inp = keras.Input((9, 8, 2))
    a = L.Conv2DTranspose(3, 3, strides=2, padding="same", name="t_same")(x)
    b = L.Conv2DTranspose(3, 4, strides=2, padding="valid", name="t_valid")(x)
    c = L.Conv2DTranspose(3, 3, strides=3, padding="same", output_padding=1, name="t_op")(x)
    d = L.Conv2DTranspose(3, 2, strides=1, dilation_rate=2, padding="valid", name="t_dil")(x)
    return model(inp, [a, b, c, d], "transposed")


def resampling():
    """UpSampling (nearest, bilinear) and Resizing up and down (nearest, bilinear,
    bicubic). Odd input sizes and even output sizes: no output samples an exact input
    position, where JAX's resize weights a tap that is exactly 0 by its definition
    with 2e-16 (rfield counts exact weights)."""
    x = inp = keras.Input((11, 7, 2))
    outs = [
        L.UpSampling2D((2, 3), name="up_nearest")(x),
        L.UpSampling2D(2, interpolation="bilinear", name="up_bilinear")(x),
        L.Resizing(18, 12, interpolation="nearest", name="rs_nearest")(x),
        L.Resizing(22, 10, interpolation="bilinear", name="rs_bilinear")(x),
        L.Resizing(14, 16, interpolation="bicubic", name="rs_bicubic")(x),
        L.Resizing(4, 2, interpolation="bilinear", name="rs_down")(x),
        L.Resizing(6, 4, interpolation="nearest", name="rs_down_nearest")(x),
    ]
    return model(inp, outs, "resampling")


def gated():
    """A squeeze-and-excitation gate (the multiply written as keras.ops: ``x * g``),
    a keras.ops add, a concatenation, Dense over channels, LayerNorm over channels."""
    x = inp = keras.Input((12, 11, 3))
    x = L.Conv2D(6, 3, padding="same", name="conv")(x)
    g = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    g = L.Conv2D(6, 1, activation="sigmoid", name="excite")(g)
    local = L.Conv2D(6, 3, name="local")(x)
    local = L.LayerNormalization(name="ln_channels")(local)
    local = L.Dense(6, name="dense_channels")(local)
    gate = x * g
    both = L.Concatenate(name="cat")([L.Cropping2D(1, name="trim")(gate), local])
    y = L.Conv2D(4, 3, strides=2, name="after")(both + 1.0)
    return model(inp, y, "gated")


def nested():
    """A Sequential and a Functional model used as layers (ConvNeXt's stem is one)."""
    stem = keras.Sequential([L.Conv2D(4, 4, strides=4, name="patch"),
                             L.LayerNormalization(name="norm")], name="stem")
    i = keras.Input((None, None, 4))
    inner = keras.Model(i, L.Add(name="res")([i, L.DepthwiseConv2D(7, padding="same",
                                                                    name="dw")(i)]),
                        name="block")
    x = inp = keras.Input((32, 28, 3))
    x = stem(x)
    x = inner(x)
    x = L.Conv2D(4, 2, strides=2, name="down")(x)
    return model(inp, x, "nested")


def channels_first():
    x = inp = keras.Input((2, 19, 17))
    x = L.Conv2D(3, 3, strides=2, padding="same", data_format="channels_first", name="c1")(x)
    x = L.MaxPooling2D(2, data_format="channels_first", name="p1")(x)
    x = L.UpSampling2D(2, data_format="channels_first", name="u1")(x)
    x = L.ZeroPadding2D(1, data_format="channels_first", name="z1")(x)
    x = L.Conv2D(3, 3, dilation_rate=2, data_format="channels_first", name="c2")(x)
    return model(inp, x, "channels_first")


def volumes():
    x = inp = keras.Input((9, 10, 8, 1))
    x = L.Conv3D(2, 3, strides=(1, 2, 2), padding="same", name="c3")(x)
    x = L.MaxPooling3D((1, 2, 2), name="p3")(x)
    x = L.Conv3DTranspose(2, 2, strides=2, name="t3")(x)
    return model(inp, x, "volumes")


SMALL = {"tcn": tcn, "same_odd": lambda: same_padding(33, 29),
         "same_even": lambda: same_padding(32, 28), "transposed": transposed,
         "resampling": resampling, "gated": gated, "nested": nested,
         "channels_first": channels_first, "volumes": volumes}
