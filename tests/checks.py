"""Compare everything the engine reports with the brute-force reference."""

from __future__ import annotations

from fractions import Fraction

import rfield

from reference import Reference


def compare(layers, input_size, units=None, check_inside=True):
    """Assert the engine equals the reference; return how many facts were checked."""
    a = rfield.analyze({"input": list(input_size), "layers": layers})
    ref = Reference(layers, input_size)
    checked = 0
    nd = len(input_size)
    for f in a.layers:
        assert f.output_size == ref.sizes[f.name], f.name
        size = f.output_size
        for axis in range(nd):
            n = size[axis]
            picks = {0, n // 2, n - 1, n // 3} if units is None else set(units) & set(range(n))
            picks = sorted(picks)
            for o in picks:
                unit = tuple(o if ax == axis else size[ax] // 2 for ax in range(nd))
                box = a.box(f.name, unit)
                want = ref.box(f.name, axis, o)
                assert box.ranges[axis] == (want if want else (0, -1)), (f.name, axis, o)
                assert box.coverage[axis] == ref.coverage(f.name, axis, o), (f.name, axis, o)
                checked += 1
            if f.is_global:
                continue
            interior = ref.interior(f.name, axis)
            amap = a.axis_maps(f.name)[axis]
            sizes, offsets = [], {}
            for o in interior:
                if ref.box(f.name, axis, o) is None:  # reads nothing (a sparse transposed conv)
                    assert amap.at(o) is None, (f.name, axis, o)
                    continue
                lo, hi = ref.box(f.name, axis, o)
                assert amap.at(o) == (lo, hi), (f.name, axis, o)
                sizes.append(hi - lo + 1)
                offsets[o % amap.period] = Fraction(lo + hi, 2) - o * f.jump[axis]
                checked += 1
            phases = {o % amap.period for o in interior if ref.box(f.name, axis, o)}
            live = {r for r, e in enumerate(amap.table) if e is not None}
            assert f.exact[axis] == amap.exact, f.name  # nothing inexact goes unmarked
            if amap.exact and sizes:
                # over every phase of the unbounded input: at least what real units show
                assert f.rf[axis] >= max(sizes) and f.rf_min[axis] <= min(sizes), f.name
            if amap.exact and phases >= live:
                if offsets:  # start: the mean offset of centres from o * jump, over a period
                    assert sum(offsets.values()) / len(offsets) == f.start[axis], f.name
                assert max(sizes, default=0) == f.rf[axis], f.name
                assert min(sizes, default=0) == f.rf_min[axis], f.name
                if amap.period == 1 and f.coverage[axis] is not None:
                    o = interior[len(interior) // 2]
                    assert f.coverage[axis] == ref.coverage(f.name, axis, o), f.name
    if check_inside:
        last = a.graph.last()
        inside = a.units_inside(last)
        regions = [(n // 3, n // 2) for n in input_size]
        seeing_all = a.units_seeing(regions, last)
        for axis in range(nd):
            want = [o for o in range(ref.sizes[last][axis]) if not ref.deps(last, axis, o)[1]]
            got = [o for lo, hi in inside[axis] for o in range(lo, hi + 1)]
            assert got == want, (last, axis)
            region = regions[axis]
            seeing = seeing_all[axis]
            got = [o for lo, hi in seeing for o in range(lo, hi + 1)]
            want = [o for o in range(ref.sizes[last][axis])
                    if any(region[0] <= i <= region[1] for i in ref.deps(last, axis, o)[0])]
            assert got == want, (last, axis, region)
    return a, checked


def read_or_refuse(path, outcomes: dict) -> None:
    """One fuzzed file: read (a unit's box answered) or refused in one short line,
    counted in ``outcomes`` ("read", "refused"); anything else ends the test."""
    from rfield.errors import RfieldError

    try:
        rfield.analyze(str(path)).box()
        outcomes["read"] += 1
    except RfieldError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600, str(exc)
        outcomes["refused"] += 1
