"""``rfield design``: every design checked against the brute-force reference (the
input positions an interior unit depends on: a run of at least the target, with
no hole), dilated stacks shown to have the fewest layers, and the commands the
issue names run as a user would."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_run import run
from rfield.design import DesignError, Target, design

from reference import Reference


def _reference_run(d, axis: int = 0) -> tuple[int, int]:
    """(length, positions read) of an interior unit of the last layer, by brute force."""
    ref = Reference(d.layers, d.input_size)
    last = d.layers[-1]["name"]
    units = ref.interior(last, axis)
    assert units, "no unit of the design sees an unclipped field"
    deps = sorted(ref.deps(last, axis, units[len(units) // 2])[0])
    return deps[-1] - deps[0] + 1, len(deps)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(2, 4), st.booleans(),
       st.one_of(st.none(), st.integers(1, 8)))
def test_dilated_designs_reach_the_field_without_holes(rf, kernel, causal, cap):
    d = design(Target(rf, 1, 1, kernel, causal, max_dilation=cap))
    span, read = _reference_run(d)
    assert span == read == d.rf >= rf  # a run: every position inside the field read
    assert d.analysis.field().jump == (1,)
    if cap is None:  # the fewest layers: n - 1 layers reach at most kernel ** (n - 1)
        assert kernel ** (len(d.layers) - 1) < rf or len(d.layers) == 1


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 120), st.sampled_from([2, 3, 4, 6, 8, 12, 16]), st.integers(2, 5))
def test_strided_designs_reach_the_field_at_the_jump(rf, jump, kernel):
    d = design(Target(rf, jump, 1, kernel))
    span, read = _reference_run(d)
    assert span == read == d.rf >= rf
    ref = Reference(d.layers, d.input_size)
    last = d.layers[-1]["name"]
    units = ref.interior(last, 0)
    a, b = units[0], units[1]
    assert min(ref.deps(last, 0, b)[0]) - min(ref.deps(last, 0, a)[0]) == jump


def test_wavenets_doubling(capsys):
    code, out, err = run(capsys, "design", "--rf", "1024", "--kernel", "2", "--causal",
                         "--dims", "1")
    assert code == 0 and not err
    line = re.match(r'rfield analyze "(.*)" --input (\d+)', out.splitlines()[0])
    assert line is not None
    assert [int(d) for d in re.findall(r"d=(\d+)", line[1])] == [2 ** i for i in range(1, 10)]
    # the printed string reads back, with the field and no holes
    code, back, _ = run(capsys, "analyze", line[1], "--input", line[2])
    assert code == 0 and "receptive field 1024, jump 1" in back


def test_a_backbone_at_jump_16(capsys):
    code, out, _ = run(capsys, "design", "--rf", "200", "--jump", "16")
    assert code == 0
    line = re.match(r'rfield analyze "(.*)" --input (\S+)', out.splitlines()[0])
    code, back, _ = run(capsys, "analyze", line[1], "--input", line[2])
    found = re.search(r"receptive field (\d+) x (\d+), jump 16 x 16", back)
    assert code == 0 and found and int(found[1]) >= 200


@pytest.mark.parametrize("argv, words", [
    (["--rf", "1024", "--kernel", "2", "--max-layers", "8"], ["10 layers", "--max-layers"]),
    (["--rf", "10", "--kernel", "1"], ["kernel of 1"]),
    (["--rf", "0"], ["--rf must be at least 1"]),
    (["--rf", "5000", "--kernel", "2", "--max-dilation", "1", "--max-layers", "100"],
     ["4999 layers", "dilations of at most 1"]),
    (["--rf", "9", "--dims", "4"], ["--dims"]),
])
def test_an_impossible_target_is_one_line(capsys, argv, words):
    code, out, err = run(capsys, "design", *argv)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert all(w in err for w in words) and "Traceback" not in err


def test_the_api_raises_a_design_error():
    with pytest.raises(DesignError):
        design(Target(5, kernel=1))
