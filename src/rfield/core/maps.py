"""Index maps on an unbounded input, in closed form.

For one axis of one tensor, ``lo(o)`` and ``hi(o)`` are the first and last
input index that unit ``o`` depends on when the input has no borders. They are
monotone and *periodic with a shift*: ``lo(o + period) == lo(o) + shift``.
Conv and pooling chains have period 1 (affine maps: the textbook recurrence);
upsampling makes the period larger, and a later stride can make it 1 again.
Storing one period makes every layer O(period), exact, in integers.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm

from . import rules as R

#: A period longer than this and than the layer itself is not expanded: the real
#: units are tabulated instead (exact for them; beyond the border, approximate).
MAX_PERIOD = 1 << 16
#: A footprint with more holes than this is not tracked.
MAX_INTERVALS = 4096

Entry = tuple[int, int] | None  # (lo, hi) of one unit, or None: it reads nothing


class AxisMap:
    """lo/hi of units 0 .. period-1; other units follow by the shift.

    A plain slotted class, not a dataclass: one is made per layer and axis,
    and construction cost is most of the work on a long chain.
    """

    __slots__ = ("period", "shift", "table", "exact")

    def __init__(self, period: int, shift: int, table: tuple[Entry, ...],
                 exact: bool = True) -> None:
        self.period, self.shift, self.table, self.exact = period, shift, table, exact

    def __eq__(self, other) -> bool:
        return (isinstance(other, AxisMap) and self.period == other.period
                and self.shift == other.shift and self.table == other.table)

    def __hash__(self) -> int:
        return hash((self.period, self.shift, self.table))

    def __repr__(self) -> str:
        return f"AxisMap(period={self.period}, shift={self.shift}, table={self.table})"

    def at(self, o: int) -> Entry:
        q, r = divmod(o, self.period)
        e = self.table[r]
        if e is None:
            return None
        return e[0] + q * self.shift, e[1] + q * self.shift

    @property
    def jump(self) -> Fraction:
        if self.period == 1:  # Fraction's fast path: a whole number
            return Fraction(self.shift)
        return Fraction(self.shift, self.period)

    @property
    def jump_key(self) -> tuple[int, int]:
        """The jump as a reduced (shift, period) pair: cheap to compare."""
        g = gcd(self.shift, self.period)
        return self.shift // g, self.period // g

    @property
    def start2(self) -> Fraction | int | None:
        """Twice the mean of centre(o) - o * jump over one period: centre(i) ~ start + i*jump.

        For period 1 (conv chains) this is exactly twice the centre of unit 0, an int
        (compared at every input of every merge: no Fraction on that path).
        """
        if self.period == 1:
            e = self.table[0]
            return None if e is None else e[0] + e[1]
        vals = [Fraction(e[0] + e[1]) - 2 * o * Fraction(self.shift, self.period)
                for o, e in enumerate(self.table) if e is not None]
        return sum(vals, Fraction(0)) / len(vals) if vals else None

    @property
    def rf_max(self) -> int:
        if self.period == 1:  # conv chains: no generator for one entry
            e = self.table[0]
            return 0 if e is None else e[1] - e[0] + 1
        return max((e[1] - e[0] + 1 for e in self.table if e is not None), default=0)

    @property
    def rf_min(self) -> int:
        if self.period == 1:
            return self.rf_max
        return min((e[1] - e[0] + 1 for e in self.table if e is not None), default=0)


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
    shift = (rq * t // parent.period) * parent.shift
    exact = parent.exact
    if period > MAX_PERIOD and period > rule.n_out:
        shift = (shift * rule.n_out) // period
        period, exact = rule.n_out, False
    table: list[Entry] = []
    for o in range(period):
        entries = [e for e in (parent.at(r) for r in rule.reads(o)) if e is not None]
        if entries:
            table.append((min(e[0] for e in entries), max(e[1] for e in entries)))
        else:
            table.append(None)
    return AxisMap(period, shift, tuple(table), exact)


def merge(maps: list[AxisMap], n_out: int) -> AxisMap:
    """The union of several inputs' fields, unit by unit.

    Inputs with one jump stay periodic. Inputs with different jumps have a
    union whose size grows with the position; it is tabulated over the
    ``n_out`` real units and marked inexact beyond them.
    """
    if len(maps) == 1:
        return maps[0]
    exact = all(m.exact for m in maps)
    if all(m.period == 1 and m.table[0] is not None for m in maps):
        if len({m.shift for m in maps}) == 1:
            firsts = [m.table[0] for m in maps if m.table[0] is not None]
            lo = min(e[0] for e in firsts)
            hi = max(e[1] for e in firsts)
            return AxisMap(1, maps[0].shift, ((lo, hi),), exact)
    jumps = {m.jump_key for m in maps}
    if len(jumps) == 1:
        period = lcm(*(m.period for m in maps))
        exact_shift = int(maps[0].jump * period)
    else:
        period = n_out
        exact_shift = int(max(m.jump for m in maps) * period)
        exact = False
    if period > MAX_PERIOD and period > n_out:
        exact_shift = (exact_shift * n_out) // period
        period, exact = n_out, False
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
    if len(parent) == 1 and isinstance(rule, R.Window):
        (a, b), step = parent[0], rule.dilation * j
        if step <= b - a + 1 or rule.kernel == 1:
            first = -rule.pad_before * j
            return ((a + first, b + first + (rule.kernel - 1) * step),)
    pieces = [(a + r * j, b + r * j) for r in rule.reads(0) for a, b in parent]
    return _union(pieces) if pieces else None


def footprint_merge(maps: list[AxisMap], prints: list[Footprint]) -> Footprint:
    if any(p is None for p in prints) or any(m.period != 1 for m in maps):
        return None
    if len({m.shift for m in maps}) != 1:
        return None
    return _union([iv for p in prints if p is not None for iv in p])


def has_holes(fp: Footprint) -> bool:
    return fp is not None and len(fp) > 1


def coverage(fp: Footprint) -> Fraction | None:
    """Share of the box that unit 0 really depends on."""
    if not fp:
        return None
    span = fp[-1][1] - fp[0][0] + 1
    if len(fp) == 1:
        return Fraction(1)
    return Fraction(sum(b - a + 1 for a, b in fp), span)
