"""Index maps on an unbounded input, in closed form.

For one axis of one tensor, ``lo(o)`` and ``hi(o)`` are the first and last
input index that unit ``o`` depends on when the input has no borders. They are
monotone and *periodic with a shift*: ``lo(o + period) == lo(o) + shift``.
Conv and pooling chains have period 1 (affine maps: the textbook recurrence);
upsampling makes the period larger, and a later stride can make it 1 again.
Storing one period makes every layer O(period), exact, in integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd, lcm

from ..errors import RfieldError
from . import rules as R

#: Periods above this are not expanded (they would mean a pathological ratio).
MAX_PERIOD = 1 << 16
#: A footprint with more holes than this is not tracked.
MAX_INTERVALS = 4096

Entry = tuple[int, int] | None  # (lo, hi) of one unit, or None: it reads nothing


@dataclass(frozen=True)
class AxisMap:
    """lo/hi of units 0 .. period-1; other units follow by the shift."""

    period: int
    shift: int
    table: tuple[Entry, ...]
    exact: bool = True  # False after merging inputs of different jumps (see merge)

    def at(self, o: int) -> Entry:
        q, r = divmod(o, self.period)
        e = self.table[r]
        if e is None:
            return None
        return e[0] + q * self.shift, e[1] + q * self.shift

    @property
    def jump(self) -> Fraction:
        return Fraction(self.shift, self.period)

    def sizes(self) -> list[int]:
        return [hi - lo + 1 for lo, hi in (e for e in self.table if e is not None)]


IDENTITY = AxisMap(1, 1, ((0, 0),))


def compose(rule: R.AxisRule, parent: AxisMap) -> AxisMap:
    """The map of a layer's output, given the rule and the map of its input."""
    if rule.is_identity:
        return parent
    if parent.period == 1 and isinstance(rule, R.Window) and parent.table[0] is not None:
        lo, hi = parent.table[0]
        j = parent.shift
        first = -rule.pad_before
        last = first + (rule.kernel - 1) * rule.dilation
        return AxisMap(1, j * rule.stride, ((lo + first * j, hi + last * j),), parent.exact)
    # reads(o + rp) == reads(o) + rq; the parent repeats every parent.period units.
    rp, rq = rule.period, rule.shift
    t = parent.period // gcd(rq, parent.period) if rq else 1
    period = rp * t
    if period > MAX_PERIOD:
        raise RfieldError(f"the field repeats only every {period} units; "
                          "rfield does not expand periods that long")
    shift = (rq * t // parent.period) * parent.shift
    table = []
    for o in range(period):
        entries = [e for e in (parent.at(r) for r in rule.reads(o)) if e is not None]
        if entries:
            table.append((min(e[0] for e in entries), max(e[1] for e in entries)))
        else:
            table.append(None)
    return AxisMap(period, shift, tuple(table), parent.exact)


def merge(maps: list[AxisMap], n_out: int) -> AxisMap:
    """The union of several inputs' fields, unit by unit.

    Inputs with one jump stay periodic. Inputs with different jumps have a
    union whose size grows with the position; it is tabulated over the
    ``n_out`` real units and marked inexact beyond them.
    """
    if len(maps) == 1:
        return maps[0]
    jumps = {m.jump for m in maps}
    exact = all(m.exact for m in maps)
    if len(jumps) == 1:
        period = lcm(*(m.period for m in maps))
        shift = maps[0].jump * period
        exact_shift = int(shift)
    else:
        period = n_out
        exact_shift = int(max(jumps) * period)
        exact = False
    if period > MAX_PERIOD:
        raise RfieldError(f"the field repeats only every {period} units; "
                          "rfield does not expand periods that long")
    table = []
    for o in range(period):
        entries = [e for e in (m.at(o) for m in maps) if e is not None]
        table.append((min(e[0] for e in entries), max(e[1] for e in entries))
                     if entries else None)
    return AxisMap(period, exact_shift, tuple(table), exact)


# --------------------------------------------------------------------------- footprints

Footprint = tuple[tuple[int, int], ...] | None  # disjoint sorted intervals of unit 0


def _union(intervals: list[tuple[int, int]]) -> Footprint:
    intervals.sort()
    out: list[list[int]] = []
    for a, b in intervals:
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    if len(out) > MAX_INTERVALS:
        return None
    return tuple((a, b) for a, b in out)


def footprint_through(rule: R.AxisRule, parent_map: AxisMap, parent: Footprint) -> Footprint:
    """The exact input indices unit 0 depends on, for affine maps; None where unknown."""
    if parent is None:
        return None
    if rule.is_identity:
        return parent
    if parent_map.period != 1 or rule.period != 1 or rule.is_global:
        return None
    j = parent_map.shift
    pieces = [(a + r * j, b + r * j) for r in rule.reads(0) for a, b in parent]
    return _union(pieces) if pieces else None


def footprint_merge(maps: list[AxisMap], prints: list[Footprint]) -> Footprint:
    if any(p is None for p in prints) or any(m.period != 1 for m in maps):
        return None
    if len({m.shift for m in maps}) != 1:
        return None
    return _union([iv for p in prints for iv in p])


def coverage(fp: Footprint) -> Fraction | None:
    """Share of the box that unit 0 really depends on."""
    if not fp:
        return None
    covered = sum(b - a + 1 for a, b in fp)
    return Fraction(covered, fp[-1][1] - fp[0][0] + 1)
