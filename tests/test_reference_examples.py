"""The engine against the brute-force reference on the shipped example networks."""

import json
from pathlib import Path

import pytest

import rfield
from rfield.spec.parse import EXAMPLES

from checks import compare
from reference import Reference

# inputs small enough for the brute force, large enough for interior units
SIZES = {"wavenet": [2400], "vgg16": [96, 96], "resnet18": [160, 160], "video3d": [12, 40, 40]}


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_example_matches_reference(name):
    spec = json.loads(Path(EXAMPLES, f"{name}.json").read_text())
    size = SIZES.get(name, spec["input"])
    _, checked = compare(spec["layers"], size, check_inside=name != "resnet18")
    assert checked > 0


def test_seed_examples_are_the_corrected_numbers():
    spec = json.loads(Path(EXAMPLES, "seed2.json").read_text())
    ref = Reference(spec["layers"], spec["input"])
    a = rfield.analyze("example:seed2")
    got = [f.rf[0] for f in a.layers]
    # reference: the span of an interior unit's dependencies
    want = []
    for f in a.layers:
        o = ref.interior(f.name, 0)[0]
        lo, hi = ref.box(f.name, 0, o)
        want.append(hi - lo + 1)
    assert got == want == [7, 11, 19]
    a1 = rfield.analyze("example:seed1")
    assert [f.rf[0] for f in a1.layers] == [3, 4, 8]
