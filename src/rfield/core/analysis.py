"""The analysis of a graph: per node and axis, rf, jump, start, padding; findings.

One pass over the nodes in order, O(period) per node and axis (O(1) for conv
and pooling chains): no path enumeration, so a 100,000-layer chain or a
DenseNet with quadratic edges costs time linear in nodes plus edges.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..numbers import exact
from . import maps as M
from . import ops as O
from . import rules as R
from .graph import INPUT, Graph, gc_paused


@dataclass(frozen=True)
class LayerField:
    """What one node sees, per spatial axis, in the vocabulary of Araujo et al.

    ``rf`` is the largest field over positions on an unbounded input, ``rf_min``
    the smallest (they differ after upsampling); ``jump`` is the effective
    stride and ``start`` the centre of unit 0 in input coordinates, so unit i
    is centred near ``start + i * jump``. On a global node (one that reads the
    whole input) these are None, and ``local_rf``, ``local_jump`` and
    ``local_start`` describe the field with the paths through global operators
    left out (equal to rf, jump and start on other nodes). ``exact`` is False on an axis where these
    numbers are estimated from the real units (the field does not repeat within
    ``maps.MAX_PERIOD`` units, or merged inputs have different jumps).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    module: str | None
    output_size: tuple[int, ...]
    rf: tuple[int, ...] | None
    rf_min: tuple[int, ...] | None
    jump: tuple[Fraction, ...] | None
    start: tuple[Fraction | None, ...] | None
    effective_padding: tuple[int | None, ...] | None
    is_global: bool
    local_rf: tuple[int, ...] | None
    coverage: tuple[Fraction | None, ...] | None
    exact: tuple[bool, ...] = ()
    local_jump: tuple[Fraction, ...] | None = None
    local_start: tuple[Fraction | None, ...] | None = None

    @property
    def is_exact(self) -> bool:
        return all(self.exact)

    @property
    def position_dependent(self) -> bool:
        return self.rf is not None and self.rf != self.rf_min


@dataclass(frozen=True)
class Finding:
    """Something a designer should know about a node (printed as a warning)."""

    kind: str  # misaligned | position-dependent | input-size | holes | covers-input | ...
    node: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


def _start(m: M.AxisMap) -> Fraction | None:
    s2 = m.start2
    if s2 is None:
        return None
    if isinstance(s2, int) and s2 % 2 == 0:  # Fraction's fast path: a whole number
        return Fraction(s2 // 2)
    return Fraction(s2) / 2


def _axis_numbers(m: M.AxisMap, fp: M.Footprint) -> tuple:
    """rf, rf_min, jump, start, padding and coverage of one axis."""
    pad = None if m.table[0] is None else -m.table[0][0]
    return m.rf_max, m.rf_min, m.jump, _start(m), pad, M.coverage(fp)


def _field(name, node, maps, local, prints) -> LayerField:
    if maps is None:
        rf = rf_min = jump = start = pad = cov = None
    else:
        per_axis = [_axis_numbers(maps[0], prints[0])]
        for a in range(1, len(maps)):  # axes that share a map share its numbers
            same = maps[a] is maps[a - 1] and prints[a] is prints[a - 1]
            per_axis.append(per_axis[a - 1] if same else _axis_numbers(maps[a], prints[a]))
        rf, rf_min, jump, start, pad, cov = (tuple(col) for col in zip(*per_axis))
    if maps is not None or local is None:
        local_rf, local_jump, local_start = rf, jump, start
    else:
        local_rf = tuple(m.rf_max for m in local)
        local_jump = tuple(m.jump for m in local)
        local_start = tuple(_start(m) for m in local)
    shown = maps if maps is not None else local
    exact = tuple(m.exact for m in shown) if shown is not None else (True,) * len(node.size)
    return LayerField(name, node.kind, node.inputs, node.module, node.size, rf, rf_min, jump,
                      start, pad, maps is None, local_rf, cov, exact, local_jump, local_start)


class Fields(Mapping):
    """Node name -> :class:`LayerField`, in graph order. Each field is built on first
    access: the pass itself handles only integers."""

    def __init__(self, analysis: Analysis) -> None:
        self._a = analysis
        self._built: dict[str, LayerField] = {}

    def __getitem__(self, name: str) -> LayerField:
        f = self._built.get(name)
        if f is None:
            a = self._a
            if name not in a.graph.nodes:
                raise KeyError(name)
            f = _field(name, a.graph.nodes[name], a._maps[name], a._local[name],
                       a._prints[name])
            self._built[name] = f
        return f

    def __iter__(self) -> Iterator[str]:
        return iter(self._a.graph.nodes)

    def __len__(self) -> int:
        return len(self._a.graph.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._a.graph.nodes

    def __repr__(self) -> str:
        return "Fields({" + ", ".join(f"{n!r}: {f!r}" for n, f in self.items()) + "})"


def reads_everything(node, parent, holes: bool, input_size) -> bool:
    """Whether a window mix whose digits span every axis (MaxViT's grid, MobileViT's
    patches at one offset: every value of each axis's highest digit) has each unit
    read the whole input at this size: the fields of the units it reads (``parent``,
    its input's maps; past a global node the local ones, which leave the mix out as
    they leave other global nodes), per axis, leave no position out. Then it is
    global, with the local field beside it; otherwise its exact window-mix maps stand."""
    if not isinstance(node.op, O.WindowMix):
        return False
    if parent is None:
        return True
    if holes:
        return False
    for axis_map, rule, n in zip(parent, node.rules, input_size):
        if not isinstance(rule, R.DigitMix) or max(s * c for s, c in rule.mixed) != rule.n_in:
            return False  # not the whole axis: a window
        for o in range(rule.n_out):
            spans = sorted(e for e in map(axis_map.at, rule.reads(o)) if e is not None)
            if not spans or spans[0][0] > 0:
                return False
            reach = spans[0][1]
            for lo, hi in spans[1:]:
                if lo > reach + 1:
                    return False  # a gap between two fields
                reach = max(reach, hi)
            if reach < n - 1:
                return False
    return True


class Analysis:
    """Fields of every node of a graph, with findings. Queries live in :mod:`query`."""

    def __init__(self, graph: Graph) -> None:
        with gc_paused():
            self._run(graph)

    def _run(self, graph: Graph) -> None:
        self.graph = graph
        self._last_input = tuple(n - 1 for n in graph.input_size)
        nd = graph.ndim
        # per node: its axis maps, or None where it reads the whole input (Any: the hot
        # loop indexes them right after checking for None)
        maps: dict[str, Any] = {INPUT: [M.IDENTITY] * nd}
        local: dict[str, Any] = {INPUT: maps[INPUT]}
        prints: dict[str, list[M.Footprint]] = {INPUT: [((0, 0),)] * nd}
        self._maps, self._local, self._prints = maps, local, prints
        self._covers: dict[str, bool] = {INPUT: False}
        self._posdep: dict[str, bool] = {INPUT: False}
        # after window attention fields are off-centre by design: no alignment warnings
        self._windowed: dict[str, bool] = {INPUT: False}
        self._holes: dict[str, bool] = {INPUT: False}
        self.fields: Fields = Fields(self)
        self.findings: list[Finding] = []
        compose, through = M.compose, M.footprint_through
        for name, node in graph.nodes.items():
            ins = node.inputs
            src = ins[0] if len(ins) == 1 else None
            everything = node.global_ or (src is not None and reads_everything(
                node, maps[src] if maps[src] is not None else local[src],
                self._holes.get(src, False), graph.input_size))
            if len(ins) == 1 and not everything and maps[ins[0]] is not None \
                    and not node.pointwise and local[ins[0]] is maps[ins[0]]:
                # the common case, a window on one input with no global path upstream
                src = ins[0]
                pm, pp, rules = maps[src], prints[src], node.rules
                m = [compose(rules[0], pm[0])]
                p = [through(rules[0], pm[0], pp[0])]
                for a in range(1, nd):  # equal axes (square layers) share their maps
                    if rules[a] is rules[a - 1] and pm[a] is pm[a - 1]:
                        m.append(m[a - 1])
                        p.append(p[a - 1] if pp[a] is pp[a - 1] else
                                 through(rules[a], pm[a], pp[a]))
                    else:
                        m.append(compose(rules[a], pm[a]))
                        p.append(through(rules[a], pm[a], pp[a]))
                maps[name] = local[name] = m
                prints[name] = p
                self._check(node)
                continue
            if len(ins) == 1 and node.pointwise:
                # pointwise: everything as its input, no new finding possible
                src = ins[0]
                maps[name], local[name], prints[name] = maps[src], local[src], prints[src]
                if src == INPUT:
                    self._check(node)
                else:
                    for flags in (self._covers, self._posdep, self._holes, self._windowed):
                        flags[name] = flags[src]
                continue
            if everything:
                maps[name] = local[name] = None
                prints[name] = [None] * nd
            else:
                maps[name] = self._through(node, [maps[s] for s in ins])
                if maps[name] is not None and all(local[s] is maps[s] for s in ins):
                    local[name] = maps[name]  # no global path upstream: the same maps
                else:
                    local[name] = self._through(node, [local[s] for s in ins],
                                                skip_global=True)
                if maps[name] is None:
                    prints[name] = [None] * nd
                elif len(ins) == 1:
                    src = ins[0]
                    prints[name] = [M.footprint_through(node.rules[a], maps[src][a],
                                                        prints[src][a]) for a in range(nd)]
                else:
                    prints[name] = [M.footprint_merge(
                        [maps[s][a] for s in ins],
                        [M.footprint_through(node.rules[a], maps[s][a], prints[s][a])
                         for s in ins]) for a in range(nd)]
            self._check(node)
        self._report_unknown()

    @staticmethod
    def _through(node, parents, skip_global: bool = False):
        """Maps of a node from its inputs' maps; None means global (reads everything).

        The exact view is global as soon as one input is; the local view
        (``skip_global``) leaves global inputs out of a merge.
        """
        live = [p for p in parents if p is not None]
        if not live or (len(live) < len(parents) and not skip_global):
            return None
        nd = len(live[0])
        if len(live) == 1:
            return [M.compose(node.rules[a], live[0][a]) for a in range(nd)]
        return [M.merge([M.compose(node.rules[a], p[a]) for p in live], node.size[a])
                for a in range(nd)]

    # ------------------------------------------------------------------ findings

    def _check(self, node) -> None:
        name, ins = node.name, node.inputs
        maps = self._maps[name]
        corners = getattr(node.op, "align_corners", False) or \
            getattr(node.op, "ctm", None) == "align_corners"
        if corners and not any(f.kind == "input-size" for f in self.findings) and \
                any(n > 1 and m > 1 and (n - 1) * m != (m - 1) * n  # ratio != m / n
                    for n, m in zip(self.graph.input_size if ins[0] == INPUT
                                    else self.graph.nodes[ins[0]].size, node.size)):
            self.findings.append(Finding(
                "input-size", name,
                "align_corners resampling steps by (n - 1) / (m - 1), which changes with "
                "the input size: so do the fields after it (local ones too); analyse at "
                "the size you use"))
        windowed = not node.op.aligned or any(self._windowed.get(s, False) for s in ins)
        self._windowed[name] = windowed
        if maps is None:
            self._covers[name] = self._posdep[name] = self._holes[name] = False
            return
        if len(ins) > 1 and not windowed and all(self._maps[s] is not None for s in ins):
            self._check_alignment(node)
        # axes of a square layer share one map: look at each distinct map once
        m0 = maps[0]
        distinct = (m0,) if all(m is m0 for m in maps) else maps
        exact, posdep = True, False
        for m in distinct:
            exact = exact and m.exact
            posdep = posdep or (m.period > 1 and m.rf_max != m.rf_min)
        if not exact and all(
                self._maps[s] is None or all(m.exact for m in self._maps[s]) for s in ins):
            inexact = [a for a, m in enumerate(maps) if not m.exact]
            self.findings.append(Finding(
                "inexact", name,
                f"rf, jump, start and padding on axis {', '.join(map(str, inexact))} are "
                "estimated from the real units, not exact (marked ~): the field does not "
                f"repeat within {M.MAX_PERIOD} units, or merged inputs have different jumps"))
        self._posdep[name] = posdep
        if posdep and not any(self._posdep[s] for s in ins):
            f = self.fields[name]
            assert f.rf is not None and f.rf_min is not None
            spans = ", ".join(f"{a} to {b}" for a, b in zip(f.rf_min, f.rf))
            self.findings.append(Finding(
                "position-dependent", name,
                f"the field size depends on the unit's position ({spans} per axis)"))
        prints = self._prints[name]
        p0 = prints[0]
        holes = any(p is not None and M.has_holes(p)
                    for p in ((p0,) if all(p is p0 for p in prints) else prints))
        self._holes[name] = holes
        if holes and not any(self._holes[s] for s in ins):
            f = self.fields[name]
            assert f.rf is not None and f.coverage is not None
            shares = " x ".join("?" if c is None else f"{float(c):.0%}" for c in f.coverage)
            box = " x ".join(str(r) for r in f.rf)
            self.findings.append(Finding(
                "holes", name,
                f"a unit reads only {shares} of the positions its {box} field spans "
                "per axis (dilation or stride leaves holes)"))
        covers = self._covers_input(node, maps)
        self._covers[name] = covers
        if covers and not any(self._covers[s] for s in ins):
            self.findings.append(Finding(
                "covers-input", name,
                "the field of the centre unit already covers the whole input: "
                "layers after it add no spatial context"))

    def _covers_input(self, node, axis_maps) -> bool:
        size, last = node.size, self._last_input
        for a, m in enumerate(axis_maps):
            e = m.at(size[a] // 2)
            if e is None or e[0] > 0 or e[1] < last[a]:
                return False
        return True

    def _check_alignment(self, node) -> None:
        """Inputs of a merge must agree on jump and start, or their units see shifted fields."""
        for a in range(self.graph.ndim):
            axis = [self._maps[s][a] for s in node.inputs]
            if all(m.period == 1 for m in axis):  # the common case, in plain ints
                keys = {(m.shift, m.table[0] and m.table[0][0] + m.table[0][1]) for m in axis}
            else:
                keys = {(m.jump_key, m.start2) for m in axis}
            if len(keys) > 1:
                detail = "; ".join(
                    f"{s}: jump {exact(m.jump)}, start "
                    f"{'-' if m.start2 is None else exact(Fraction(m.start2) / 2)}"
                    for s, m in zip(node.inputs, axis))
                self.findings.append(Finding(
                    "misaligned", node.name,
                    f"inputs are misaligned on axis {a} ({detail}); the union is reported"))
                return

    def _report_unknown(self) -> None:
        for op, count in sorted(self.graph.unknown_ops.items()):
            self.findings.append(Finding(
                "unknown-op", None,
                f"{count} x operator {op} is not known to rfield: taken to read the whole "
                "input there (strict mode makes this an error; 'rfield verify' measures the "
                "real field)"))

    # ------------------------------------------------------------------ access

    def axis_maps(self, name: str, local: bool = False) -> list[M.AxisMap] | None:
        """The per-axis index maps of a node on an unbounded input (None: global).

        ``local`` leaves the paths through global operators out. Each map gives
        ``at(o)``, the (lo, hi) input indices unit ``o`` reads, and its ``period``.
        """
        return (self._local if local else self._maps)[name]

    @property
    def layers(self) -> list[LayerField]:
        return list(self.fields.values())

    def __str__(self) -> str:
        """The layer table and summary, as ``rfield analyze`` prints them."""
        from ..report.formats import to_table

        return to_table(self, self.box())

    def __repr__(self) -> str:
        return (f"<Analysis: {len(self.graph.nodes)} layers, input "
                f"{'x'.join(map(str, self.graph.input_size))}>")

    def to_dict(self) -> dict:
        """``rfield analyze --json``'s layout: plain JSON values, exact (see numbers)."""
        from ..report.formats import result_dict

        return result_dict(self, self.box())

    def field(self, name: str | None = None) -> LayerField:
        from .query import resolve_node

        return self.fields[resolve_node(self.graph, name)]

    def last_spatial(self, name: str) -> str | None:
        """The nearest node up the first-input chain that still has positions (size > 1):
        the feature map a classifier head pools."""
        nodes = self.graph.nodes
        while name in nodes and all(n == 1 for n in nodes[name].size):
            name = nodes[name].inputs[0]
        return name if name in nodes else None

    @property
    def warnings(self) -> list[str]:
        return [str(f) for f in self.findings]

    # ------------------------------------------------------------------ queries

    def box(self, node: str | None = None, unit=None):
        """The input box of one unit on the given input (default: the last node's centre)."""
        from .query import box

        return box(self.graph, node, unit)

    def span(self, node: str | None, first, count):
        """The input box of ``count`` consecutive units from ``first`` (per axis)."""
        from .query import box

        nd = self.graph.ndim
        first = (first,) * nd if isinstance(first, int) else tuple(first)
        count = (count,) * nd if isinstance(count, int) else tuple(count)
        return box(self.graph, node, first, count)

    def units_seeing(self, region, node: str | None = None):
        """Per axis, runs of units of ``node`` whose field meets ``region`` ((lo, hi) per axis)."""
        from .query import units_seeing

        return units_seeing(self.graph, node, region)

    def units_inside(self, node: str | None = None):
        """Per axis, runs of units of ``node`` whose field reads no padding."""
        from .query import units_inside

        return units_inside(self.graph, node)
