"""Long periods are computed, not estimated: the three networks a fuzz against the brute
force found printed inexact numbers unmarked (issue 9), and a merge whose field cannot
repeat is marked."""

from __future__ import annotations

from fractions import Fraction
from math import floor

import rfield

from checks import compare
from reference import Reference


def test_reflect_pad_after_shuffles_is_exact():
    spec = "adaptivepool(8); convtranspose(1,s=3); pixelshuffle(3); pad(3,mode=reflect); " \
           "maxpool(2,s=1)"
    a = rfield.analyze({"input": [9], "layers": _layers(spec)})
    f = a.field()
    ref = Reference(_layers(spec), [9])
    boxes = [ref.box(f.name, 0, o) for o in ref.interior(f.name, 0)]
    sizes = {hi - lo + 1 for lo, hi in filter(None, boxes)}
    assert f.is_exact and f.rf == (2,) and sizes == {2}


def test_align_corners_then_pooling_has_the_true_jump():
    a = rfield.analyze("upsample(4, mode=bilinear, align_corners=true); avgpool(2)", (29,))
    f = a.field()
    # align_corners maps output o to input o * (29 - 1) / (116 - 1); pooling by 2 doubles it
    assert f.is_exact and f.jump == (2 * Fraction(29 - 1, 116 - 1),)
    compare(_layers("upsample(4, mode=bilinear, align_corners=true); avgpool(2)"), [29],
            check_inside=False)


def test_align_corners_then_padded_convs_has_the_true_padding():
    spec = "upsample(4, mode=bilinear, align_corners=true); conv(1,s=2,p=1); conv(1,p=[[4,1]])"
    a = rfield.analyze(spec, (20,))
    # unit 0 of the last conv reads conv1 unit -4, upsample unit -9, input -9 * 19 / 79:
    # bilinear reads floor of that
    first = floor(Fraction(-9 * 19, 79))
    assert a.field().is_exact and a.field().effective_padding == (-first,)
    compare(_layers(spec), [20], check_inside=False)


def test_a_merge_of_different_jumps_is_marked_inexact():
    a = rfield.analyze("conv(3,s=3); upsample(size=40); b=conv(3, in=input,p=1); "
                       "add(upsample1, b)", (40,))
    f = a.field("add1")
    assert not f.is_exact and f.exact == (False,)
    assert any(x.kind == "inexact" and x.node == "add1" for x in a.findings)
    assert a.field("b").is_exact


ALIASES = {"s": "stride", "p": "padding", "k": "kernel"}


def _layers(spec: str) -> list[dict]:
    """The one-line spec as full layer dicts, for the brute-force reference."""
    from rfield.spec.parse import parse_compact

    return [{ALIASES.get(k, k): v for k, v in dict(layer, name=f"n{i}").items()}
            for i, layer in enumerate(parse_compact(spec))]


def test_align_corners_fields_change_with_the_input_size():
    """After align_corners upsampling the step is (n - 1) / (m - 1): the field at the
    same unit differs between input sizes, and rfield says so (checked against the
    brute force at both sizes)."""
    spec = "conv(3,s=2); upsample(scale=2, mode=bilinear, align_corners=true); conv(3)"
    fields = {}
    for n in (33, 65):
        a = rfield.analyze({"input": [n], "layers": _layers(spec)})
        assert any("changes with the input size" in w for w in a.warnings)
        compare(_layers(spec), [n])  # every box against the brute force
        fields[n] = a.field().jump  # 30/31 at 33, 62/63 at 65
    assert fields[33] != fields[65]
    plain = rfield.analyze(spec.replace("true", "false"), (33,))
    assert not any("input size" in w for w in plain.warnings)
