"""The Keras 3 front-end on hand-made models covering every layer kind it reads, each
checked unit by unit against back-propagation in Keras (the JAX backend here; the
torch and TensorFlow backends in test_keras_backends.py), and rf and jump through
``verify`` on an input large enough for the whole field."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
pytest.importorskip("jax")

import rfield  # noqa: E402
from rfield.errors import RfieldError, ShapeError, UnsupportedError  # noqa: E402

from keras_checks import check_boxes, check_verify  # noqa: E402

L = keras.layers

if keras.backend.backend() != "jax":  # another test module imported Keras first
    pytest.skip("these tests run on Keras' JAX backend", allow_module_level=True)


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


SMALL = [tcn, lambda: same_padding(33, 29), lambda: same_padding(32, 28), transposed,
         resampling, gated, nested, channels_first, volumes]


@pytest.mark.parametrize("build", SMALL, ids=["tcn", "same_odd", "same_even", "transposed",
                                               "resampling", "gated", "nested",
                                               "channels_first", "volumes"])
def test_every_unit_of_every_layer_matches_back_propagation(build):
    m = build()
    a = check_boxes(m)
    assert not a.graph.unknown_ops
    check_verify(m)


def test_nested_layers_are_named_by_their_path():
    a = rfield.analyze(nested())
    names = set(a.graph.aliases)
    assert {"stem", "stem/patch", "stem/norm", "block", "block/dw", "block/res"} <= names
    assert a.graph.aliases["block"] == a.graph.aliases["block/res"]
    # the patch embedding: 4 x 4 at stride 4; the 7 x 7 depthwise after it: 28
    assert a.fields[a.graph.aliases["stem/patch"]].rf == (4, 4)
    assert a.fields[a.graph.aliases["block/dw"]].rf == (28, 28)


def test_the_gate_is_global_with_the_local_field_beside_it():
    a = rfield.analyze(gated())
    f = a.fields[a.graph.aliases["after"]]
    assert f.is_global and f.local_rf == (7, 7) and f.local_jump == (2, 2)
    # LayerNorm and Dense over channels stay local
    assert a.fields[a.graph.aliases["dense_channels"]].rf == (5, 5)


def test_norms_over_positions_flatten_and_attention_are_global():
    x = inp = keras.Input((8, 8, 4))
    y = L.Conv2D(4, 3, padding="same", name="conv")(x)
    gn = L.GroupNormalization(2, name="gn")(y)
    ln = L.LayerNormalization(axis=(1, 2, 3), name="ln_all")(y)
    flat = L.Dense(3, name="head")(L.Flatten(name="flat")(y))
    tokens = L.Reshape((64, 4), name="tokens")(y)
    att = L.MultiHeadAttention(2, 4, name="mha")(tokens, tokens)
    m = model(inp, [gn, ln, flat, att])
    a = rfield.analyze(m)
    for name in ("gn", "ln_all", "flat", "head", "mha"):
        assert a.fields[a.graph.aliases[name]].is_global, name
    assert a.fields[a.graph.aliases["gn"]].local_rf == (3, 3)
    check_boxes(m, layers=["gn", "ln_all"])


def test_permute_and_reshape_keep_the_axes():
    x = inp = keras.Input((12, 10, 3))
    y = L.Conv2D(4, 3, name="conv")(x)
    y = L.Permute((3, 1, 2), name="to_nchw")(y)  # (4, 10, 8): channels first
    y = L.Reshape((2, 2, 10, 8), name="split_channels")(y)
    y = L.Reshape((4, 10, 8), name="merge_channels")(y)
    y = L.Permute((2, 3, 1), name="to_nhwc")(y)
    y = L.Conv2D(2, 3, strides=2, name="after")(y)
    m = model(inp, y)
    a = check_boxes(m)
    assert not a.graph.unknown_ops
    assert a.fields[a.graph.aliases["after"]].rf == (5, 5)


class Doubler(L.Layer):
    """A subclassed layer with its own call(): no graph to read."""

    def call(self, x):
        return x + keras.ops.roll(x, 1, axis=1)


class MyConv(L.Conv2D):
    def call(self, x):  # overrides what Conv2D does: not taken as a Conv2D
        return super().call(x[:, ::-1])


def test_a_layer_with_its_own_call_is_unknown_never_an_identity():
    x = inp = keras.Input((10, 10, 2))
    y = L.Conv2D(2, 3, name="conv")(x)
    y = Doubler(name="mine")(y)
    y = MyConv(2, 3, name="myconv")(y)
    m = model(inp, y)
    a = rfield.analyze(m)
    assert set(a.graph.unknown_ops) == {"Doubler", "MyConv"}
    assert a.fields[a.graph.aliases["myconv"]].is_global
    assert any("Doubler" in w for w in a.warnings)
    with pytest.raises(UnsupportedError, match=r"Doubler \(1 x, first in layer 'mine'"):
        rfield.analyze(m, strict=True)


def test_other_input_sizes_and_their_errors():
    m = same_padding(33, 29)
    a = rfield.analyze(m, (64, 48))
    assert a.graph.input_size == (64, 48)
    check_boxes(m, (64, 48), layers=["even", "avg"])
    with pytest.raises(RfieldError, match="2-D model: it needs 2 input sizes"):
        rfield.analyze(m, (64,))
    x = inp = keras.Input((8, 8, 1))
    head = L.Dense(2)(L.Flatten()(L.Conv2D(1, 3)(x)))
    with pytest.raises(ShapeError, match="Keras cannot run layer 'dense"):
        rfield.analyze(model(inp, head), (12, 12))
    free = keras.Input((None, None, 3))
    with pytest.raises(RfieldError, match="no fixed size"):
        rfield.analyze(model(free, L.Conv2D(1, 3)(free)))


def test_several_inputs_need_a_name():
    a_in, b_in = keras.Input((10, 10, 3), name="image"), keras.Input((4,), name="meta")
    y = L.Conv2D(2, 3, name="conv")(a_in)
    m = model([a_in, b_in], [y, L.Dense(2)(b_in)])
    with pytest.raises(RfieldError, match="--input-name"):
        rfield.analyze(m)
    a = rfield.analyze(m, input_name="image")
    assert a.fields[a.graph.aliases["conv"]].rf == (3, 3)
