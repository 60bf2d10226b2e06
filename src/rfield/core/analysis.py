"""The analysis of a graph: per node and axis, rf, jump, start, padding; findings.

One pass over the nodes in order, O(period) per node and axis (O(1) for conv
and pooling chains): no path enumeration, so a 100,000-layer chain or a
DenseNet with quadratic edges costs time linear in nodes plus edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod

from . import maps as M
from .graph import INPUT, Graph


@dataclass(frozen=True)
class LayerField:
    """What one node sees, per spatial axis, in the vocabulary of Araujo et al.

    ``rf`` is the largest field over positions on an unbounded input, ``rf_min``
    the smallest (they differ after upsampling); ``jump`` is the effective
    stride and ``start`` the centre of unit 0 in input coordinates, so unit i
    is centred near ``start + i * jump``. On a global node (one that reads the
    whole input) these are None, and ``local_rf`` is the field with the paths
    through global operators left out.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    module: str | None
    output_size: tuple[int, ...]
    rf: tuple[int, ...] | None
    rf_min: tuple[int, ...] | None
    jump: tuple[Fraction, ...] | None
    start: tuple[Fraction, ...] | None
    effective_padding: tuple[int, ...] | None
    is_global: bool
    local_rf: tuple[int, ...] | None
    coverage: tuple[Fraction | None, ...] | None

    @property
    def position_dependent(self) -> bool:
        return self.rf is not None and self.rf != self.rf_min


@dataclass(frozen=True)
class Finding:
    """Something a designer should know about a node (printed as a warning)."""

    kind: str  # misaligned | position-dependent | holes | covers-input | unknown-op | ...
    node: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


def _fmt(x: Fraction) -> str:
    return str(int(x)) if x.denominator == 1 else f"{float(x):g}"


def _entry_center(m: M.AxisMap) -> Fraction | None:
    e = m.at(0)
    return None if e is None else Fraction(e[0] + e[1], 2)


def _field(name, node, maps, local, prints) -> LayerField:
    if maps is None:
        rf = rf_min = jump = start = pad = cov = None
    else:
        sizes = [m.sizes() or [0] for m in maps]
        rf = tuple(max(s) for s in sizes)
        rf_min = tuple(min(s) for s in sizes)
        jump = tuple(m.jump for m in maps)
        start = tuple(_entry_center(m) for m in maps)
        pad = tuple(None if m.at(0) is None else -m.at(0)[0] for m in maps)
        cov = tuple(M.coverage(p) for p in prints)
    local_rf = None if local is None else tuple(max(m.sizes() or [0]) for m in local)
    return LayerField(name, node.kind if node else "input", node.inputs if node else (),
                      node.module if node else None,
                      node.size if node else (), rf, rf_min, jump, start, pad,
                      maps is None, local_rf, cov)


class Analysis:
    """Fields of every node of a graph, with findings. Queries live in :mod:`query`."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        nd = graph.ndim
        maps: dict[str, list[M.AxisMap] | None] = {INPUT: [M.IDENTITY] * nd}
        local: dict[str, list[M.AxisMap] | None] = {INPUT: [M.IDENTITY] * nd}
        prints: dict[str, list[M.Footprint]] = {INPUT: [((0, 0),)] * nd}
        self.fields: dict[str, LayerField] = {}
        self.findings: list[Finding] = []
        for name, node in graph.nodes.items():
            ins = node.inputs
            if any(r.is_global for r in node.rules):
                maps[name] = local[name] = None
                prints[name] = [None] * nd
            else:
                maps[name] = self._through(node, [maps[s] for s in ins])
                local[name] = self._through(node, [local[s] for s in ins], skip_global=True)
                if maps[name] is None:
                    prints[name] = [None] * nd
                else:
                    prints[name] = [
                        M.footprint_merge([maps[s][a] for s in ins],
                                          [M.footprint_through(node.rules[a], maps[s][a],
                                                               prints[s][a]) for s in ins])
                        if len(ins) > 1 else
                        M.footprint_through(node.rules[a], maps[ins[0]][a], prints[ins[0]][a])
                        for a in range(nd)
                    ]
            self.fields[name] = _field(name, node, maps[name], local[name], prints[name])
            self._check(node, maps, local)
        self._maps = maps
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

    def _check(self, node, maps, local) -> None:
        f = self.fields[node.name]
        parents = [self.fields.get(s) for s in node.inputs]
        if len(node.inputs) > 1 and all(maps[s] is not None for s in node.inputs):
            self._check_alignment(node, maps)
        if f.position_dependent and not any(p and p.position_dependent for p in parents):
            spans = ", ".join(f"{a} to {b}" for a, b in zip(f.rf_min, f.rf))
            self.findings.append(Finding(
                "position-dependent", node.name,
                f"the field size depends on the unit's position ({spans} per axis)"))
        if f.coverage and all(c is not None for c in f.coverage):
            was_full = all(p is None or p.coverage is None or prod(c or 1 for c in p.coverage) == 1
                           for p in parents)
            if prod(f.coverage) < 1 and was_full:
                shares = " x ".join(f"{float(c):.0%}" for c in f.coverage)
                box = " x ".join(str(r) for r in f.rf)
                self.findings.append(Finding(
                    "holes", node.name,
                    f"a unit reads only {shares} of the positions its {box} field spans "
                    "per axis (dilation or stride leaves holes)"))
        if maps[node.name] is not None and self._covers(node, maps[node.name]):
            if not any(maps[s] is not None and s != INPUT and
                       self._covers(self.graph.nodes[s], maps[s]) for s in node.inputs):
                self.findings.append(Finding(
                    "covers-input", node.name,
                    "the field of the centre unit already covers the whole input: "
                    "layers after it add no spatial context"))

    def _covers(self, node, axis_maps) -> bool:
        for m, n_out, n_in in zip(axis_maps, node.size, self.graph.input_size):
            e = m.at(n_out // 2)
            if e is None or e[0] > 0 or e[1] < n_in - 1:
                return False
        return True

    def _check_alignment(self, node, maps) -> None:
        for a in range(self.graph.ndim):
            axis = [maps[s][a] for s in node.inputs]
            jumps = [m.jump for m in axis]
            centres = [_entry_center(m) for m in axis]
            if len(set(jumps)) > 1 or len(set(centres)) > 1:
                detail = "; ".join(
                    f"{s}: jump {_fmt(j)}, centre of unit 0 at "
                    f"{'-' if c is None else _fmt(c)}"
                    for s, j, c in zip(node.inputs, jumps, centres))
                self.findings.append(Finding(
                    "misaligned", node.name,
                    f"inputs are misaligned on axis {a} ({detail}); the union is reported"))
                return

    def _report_unknown(self) -> None:
        for op, count in sorted(self.graph.unknown_ops.items()):
            self.findings.append(Finding(
                "unknown-op", None,
                f"{count} x unknown operator {op}: treated as {'global'}; "
                "its field may be wrong (see --strict)"))

    # ------------------------------------------------------------------ access

    @property
    def layers(self) -> list[LayerField]:
        return list(self.fields.values())

    def field(self, name: str | None = None) -> LayerField:
        from .query import resolve_node

        return self.fields[resolve_node(self.graph, name)]

    def last_spatial(self, name: str) -> str | None:
        """The nearest non-global node up the first-input chain (what a global head pools)."""
        while name in self.fields and self.fields[name].is_global:
            name = self.fields[name].inputs[0]
        return name if name in self.fields else None

    @property
    def warnings(self) -> list[str]:
        return [str(f) for f in self.findings]

    # ------------------------------------------------------------------ queries

    def box(self, node: str | None = None, unit=None):
        """The input box of one unit on the concrete input (default: centre unit of the last node)."""
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
