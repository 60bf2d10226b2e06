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
from keras_models import SMALL, gated, model, nested, same_padding  # noqa: E402

L = keras.layers

if keras.backend.backend() != "jax":  # another test module imported Keras first
    pytest.skip("these tests run on Keras' JAX backend", allow_module_level=True)


@pytest.mark.parametrize("name", list(SMALL))
def test_every_unit_of_every_layer_matches_back_propagation(name):
    m = SMALL[name]()
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
    """A subclassed layer with its own call(): read through its jaxpr."""

    def call(self, x):
        return x + keras.ops.roll(x, 1, axis=1)


class MyConv(L.Conv2D):
    def call(self, x):  # overrides what Conv2D does: not taken as a Conv2D
        return super().call(x[:, ::-1])


class PoolThenConv(L.Conv2D):
    """A subclass whose call() JAX's primitives say everything about."""

    def call(self, x):  # the shapes Conv2D declares: a shift down and a 3 x 3 mean
        # (an average, not a max: the measurement runs this call as written)
        x = keras.ops.pad(x, ((0, 0), (2, 0), (0, 0), (0, 0)))[:, :-2]
        return super().call(keras.ops.average_pool(x, 3, strides=1, padding="same"))


def test_a_layer_with_its_own_call_is_read_through_its_jaxpr():
    x = inp = keras.Input((12, 11, 2))
    y = L.Conv2D(2, 3, name="conv")(x)
    y = PoolThenConv(3, 3, strides=2, padding="same", name="mine")(y)
    y = L.Conv2D(2, 3, name="after")(y)
    m = model(inp, y)
    a = check_boxes(m)
    assert not a.graph.unknown_ops


def test_what_a_call_does_that_rfield_cannot_follow_is_unknown_never_an_identity():
    """A flip inside a call() is reported with the layer it is in; a roll (JAX writes
    it as two slices and a concatenation) is followed, checked against
    back-propagation."""
    x = inp = keras.Input((10, 10, 2))
    y = L.Conv2D(2, 3, name="conv")(x)
    y = Doubler(name="mine")(y)
    a = check_boxes(model(inp, L.Conv2D(2, 3, name="after")(y)))
    assert not a.graph.unknown_ops
    y = MyConv(2, 3, name="myconv")(y)
    m = model(inp, y)
    a = rfield.analyze(m)
    assert set(a.graph.unknown_ops) == {"rev (a flip) along a spatial dim"}
    assert a.fields[a.graph.aliases["myconv"]].is_global
    assert any("rev" in w for w in a.warnings)
    with pytest.raises(UnsupportedError, match=r"rev \(a flip\) along a spatial dim \(1 x, "
                       r"first in layer 'myconv'"):
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


def test_a_field_whose_edge_is_below_float32_is_measured_whole():
    """Ninety conv + batch-norm pairs: the field's edge carries a dependency near 1e-60,
    which Keras' batch norm, kept in the measurement, flushed to 0 through float32 (the
    measured field came out smaller than 181); as an identity, as in torch's
    measurement, the edge is kept."""
    x = inp = keras.Input((120, 200, 1))
    for i in range(90):
        x = L.Conv2D(1, 3, padding="same", use_bias=False, name=f"c{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}")(x)
    m = keras.Model(inp, x)
    a = check_boxes(m, layers=["bn89"], limit=3)
    assert a.field("bn89").rf == (181, 181)
    check_verify(m, (190, 190), nodes=["bn89"])
