"""The engine against the brute-force reference on the shipped example networks."""

import json
from pathlib import Path

import pytest
from reference import Reference

import rfield
from rfield.spec.parse import EXAMPLES

# inputs small enough for the brute force, large enough for interior units
SIZES = {"wavenet": [2400], "vgg16": [96, 96], "resnet18": [160, 160], "video3d": [12, 40, 40]}


def canonical(layers):
    """Name every layer as rfield does, for the reference."""
    out = []
    for layer in layers:
        out.append(dict(layer))
    return out


def compare(layers, input_size, units_per_node=3):
    """Every number the engine reports, checked against the reference."""
    a = rfield.analyze({"input": input_size, "layers": layers})
    ref = Reference(canonical(layers), input_size)
    checked = 0
    for f in a.layers:
        assert f.output_size == ref.sizes[f.name], f.name
        n_units = f.output_size
        for axis in range(len(input_size)):
            n = n_units[axis]
            # concrete boxes and coverage on the given input
            for o in sorted({0, n // 2, n - 1, n // 3}):
                unit = tuple(o if ax == axis else n_units[ax] // 2 for ax in range(len(n_units)))
                box = a.box(f.name, unit)
                want = ref.box(f.name, axis, o)
                assert box.ranges[axis] == (want if want else (0, -1)), (f.name, axis, o)
                assert box.coverage[axis] == ref.coverage(f.name, axis, o), (f.name, axis, o)
                checked += 1
            if f.is_global:
                continue
            # the unbounded view, on units that touch no border
            interior = ref.interior(f.name, axis)
            amap = a._maps[f.name][axis]
            sizes = []
            for o in interior:
                lo, hi = ref.box(f.name, axis, o)
                assert amap.at(o) == (lo, hi), (f.name, axis, o)
                sizes.append(hi - lo + 1)
                if amap.period == 1:
                    assert f.start[axis] + o * f.jump[axis] == (lo + hi) / 2 * 1, (f.name, o)
                if o % amap.period == 0 and amap.exact:
                    c = (lo + hi) / 2
                    assert c - o * f.jump[axis] == f.start[axis]
                checked += 1
            if len(interior) >= amap.period + 1 and amap.exact:
                assert max(sizes) == f.rf[axis], f.name
                assert min(sizes) == f.rf_min[axis], f.name
    return a, checked


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_example_matches_reference(name):
    spec = json.loads(Path(EXAMPLES, f"{name}.json").read_text())
    size = SIZES.get(name, spec["input"])
    _, checked = compare(spec["layers"], size)
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
