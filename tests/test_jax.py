"""The JAX front-end on hand-made Flax (linen and NNX) networks and plain functions
covering each primitive it reads, and on ResNet-18 as Flax's ImageNet example builds
it: every sampled unit's box of every returned map and module output against
back-propagation through the program, and rf and jump through ``verify``."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")

import rfield  # noqa: E402
from rfield.empirical.jax_gradient import measure  # noqa: E402
from rfield.errors import RfieldError, UnsupportedError  # noqa: E402
from rfield.models.jax_programs import program  # noqa: E402

import jax_models as M  # noqa: E402
from jax_checks import check_boxes, check_verify  # noqa: E402

# sizes where every map a stride-2 SAME conv makes is even and odd in turn; the resize
# model's scales stay dyadic (see test_a_non_dyadic_resize_is_exact_arithmetic)
SIZES = [(33, 33), (32, 28)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["windows", "transposed", "merges", "resizes", "moves"])
def test_every_unit_of_every_map_matches_back_propagation(name, size):
    a = check_boxes(M.LINEN[name](), size)
    assert not a.graph.unknown_ops


@pytest.mark.parametrize("name", ["windows", "transposed", "merges", "moves"])
def test_rf_and_jump_on_an_unclipped_input(name):
    check_verify(M.LINEN[name](), (33, 33))


def test_cond_is_the_union_of_its_branches():
    """A branch chosen by the image: global (the choice reads every position), with
    the union of both branches as the local field, which back-propagation through
    both branches measures; a constant predicate takes its branch alone."""
    a = check_boxes(M.Branches(), (33, 33), names=["output.1"])
    picked = a.fields[a.graph.provenance.outputs["output.0"]]
    prog = program(M.Branches(), (1, 33, 33, 3))
    (m,) = measure(prog.fn, prog.extra, (1, 33, 33, 3), ["output.0"],
                   {"output.0": [(16, 16)]}, {"output.0": (None, 0, 1, None)},
                   (None, 0, 1, None))["output.0"]
    assert picked.is_global
    assert picked.local_rf == tuple(hi - lo + 1 for lo, hi in m.box) == (7, 5)


def test_nnx_modules_are_named_by_attribute_path():
    a = check_boxes(M.nnx_net(), (20, 21))
    assert {"NnxNet/stem", "NnxNet/body", "NnxNet/body/conv", "NnxNet/up"} <= set(
        a.graph.aliases)
    check_verify(M.nnx_net(), (20, 21))


def test_a_function_in_nchw():
    a = check_boxes(M.plain_function, (19, 24), layout="nchw")
    assert a.graph.input_size == (19, 24)


@pytest.mark.parametrize("model,size", [(M.Causal1D, (40,)), (M.Video3D, (8, 12, 12))])
def test_one_and_three_dimensions(model, size):
    check_boxes(model(), size)


def test_group_norm_is_global_with_its_local_field_layer_norm_pointwise():
    """The local field is the field of the same network without its GroupNorm, which
    back-propagation measures (LayerNorm over channels changes nothing)."""
    a = check_boxes(M.Norms(), (16, 16))
    plain = check_boxes(M.Norms(group_norm=False), (16, 16))
    for key in ("output.0", "output.1"):
        f = a.fields[a.graph.provenance.outputs[key]]
        p = plain.fields[plain.graph.provenance.outputs[key]]
        assert f.is_global and not p.is_global  # GroupNorm's statistics
        assert (f.local_rf, f.local_jump) == (p.rf, p.jump)


def test_an_equinox_network_as_a_function():
    pytest.importorskip("equinox")
    a = check_boxes(M.equinox_net(), (33, 31), layout="nchw")
    assert a.field().rf == (23, 23) and not a.graph.unknown_ops
    assert any(name.startswith("eqx.nn.Sequential") for name in a.graph.aliases)


@pytest.mark.slow  # 30 s on 2 cores: make test-slow
def test_resnet18_as_flax_builds_it():
    a = check_boxes(M.ResNet18(), (64, 64), limit=8)
    g = a.graph
    assert "ResNet18/BasicBlock_7" in g.aliases and "ResNet18/BasicBlock_2/conv_proj" in g.aliases
    last = a.fields[g.aliases["ResNet18/BasicBlock_7"]]
    assert last.jump == (32, 32) and not g.unknown_ops
    check_verify(M.ResNet18(), (64, 64), nodes=["ResNet18/BasicBlock_7"])


def test_a_non_dyadic_resize_is_exact_arithmetic():
    """15 -> 7 with antialias: a tap whose exact weight is 0 gets ~1e-7 in float32;
    rfield reads the exact rule (documented), so that tap is not counted."""
    import jax

    f = lambda x: jax.image.resize(x, (1, 7, 7, 3), "bilinear")
    a = rfield.analyze(f, (15, 14), framework="jax")
    box = a.box(a.graph.provenance.outputs["output"], (4, 4)).ranges
    assert box == ((8, 11), (7, 10))


def test_loops_are_reported_never_followed():
    import jax

    def loop(x):
        return jax.lax.fori_loop(0, 3, lambda i, v: v * 2.0, x)

    a = rfield.analyze(loop, (8, 8), framework="jax")
    assert a.graph.unknown_ops and a.field().is_global
    with pytest.raises(UnsupportedError, match="scan|while"):
        rfield.analyze(loop, (8, 8), framework="jax", strict=True)


def test_needs_a_size_and_a_runnable_shape():
    with pytest.raises(RfieldError, match="input size"):
        rfield.analyze(M.Windows())
    with pytest.raises(RfieldError, match="cannot"):
        rfield.analyze(M.ResNet18(), (64, 64), channels=3, variables={"params": {}})


@pytest.mark.parametrize("blocks", [0, 1])
def test_a_class_token_beside_the_patches(blocks):
    """The class token a constant of the concatenate, x[:, 1:] a slice: the patches'
    boxes against back-propagation (each its own patch before attention, the whole
    input after)."""
    a = check_boxes(M.TinyViT(blocks=blocks), (32, 32), modules=False)  # the map returned
    f = a.field()
    assert not a.graph.unknown_ops and f.output_size == (8, 8)
    assert f.is_global == bool(blocks) and f.local_rf == (4, 4)


def test_verify_on_a_flax_vit_measures_its_maps_and_refuses_its_tokens(capsys):
    """Module outputs holding tokens have no layout the JAX measurement can place:
    verify's default nodes leave them out, and naming one is one line, exit 2."""
    from rfield.cli import main

    code = main(["verify", "tests/jax_models.py:TinyViT", "--input", "32,32"])
    out, err = capsys.readouterr()
    assert code == 0 and "equals back-propagation" in out, err
    code = main(["verify", "tests/jax_models.py:TinyViT", "--input", "32,32",
                 "--node", "TinyViT/LayerNorm_0"])
    err = capsys.readouterr().err
    assert code == 2 and "holds no map" in err and "Traceback" not in err
