"""Exact questions about units on the concrete input, answered with index masks.

Every rule is separable per axis and a merge is a union, so for one axis a
set of units of a node depends on a set of input indices that is found by
walking the graph backwards with boolean masks (numpy, one array per node).
The box is the hull of that set, and the coverage the share of the box it
fills; both are exact on the given input, borders and padding included.
Questions the other way (which units see an input region, which units read
no padding) walk forwards the same way.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import QueryError
from . import rules as R
from .graph import INPUT, Graph


@dataclass(frozen=True)
class Box:
    """The input region a set of units depends on, per axis, inclusive.

    ``coverage`` is the share of each axis's extent really read (below 1 when
    dilation or stride leaves holes); ``clipped`` is True on axes where the
    field reaches past the input into padding.
    """

    node: str
    units: tuple[tuple[int, int], ...]
    ranges: tuple[tuple[int, int], ...]
    coverage: tuple[Fraction, ...]
    clipped: tuple[bool, ...]

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(hi - lo + 1 for lo, hi in self.ranges)


def resolve_node(graph: Graph, name: str | None) -> str:
    """A node by its name, a module path, an ONNX tensor name or the name of what a
    model returns (``output``, ``output.logits`` or just ``logits``). By default: the
    first spatial tensor the model returns, else its first, else the last node."""
    outputs = graph.provenance.outputs
    if name is None:
        returned = [n for n in outputs.values() if n in graph.nodes]
        spatial = [n for n in returned if all(s > 1 for s in graph.nodes[n].size)]
        return (spatial or returned or [graph.last()])[0]
    if name in graph.nodes:
        return name
    if name in graph.aliases:
        return graph.aliases[name]
    for key in (name, f"output.{name}"):
        if key in outputs and outputs[key] in graph.nodes:
            return outputs[key]
    if name == INPUT:
        raise QueryError("'input' is the network's input, not a layer")
    # a module and the node it names are often spelled alike: each name offered once
    near = difflib.get_close_matches(name, list(dict.fromkeys(
        list(graph.aliases) + list(graph.nodes))), n=3)
    hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise QueryError(f"no layer named {name!r}{hint}")


def resolve_unit(graph: Graph, node: str, unit) -> tuple[int, ...]:
    size = graph.nodes[node].size
    if unit is None:
        return tuple(n // 2 for n in size)
    if isinstance(unit, numbers.Integral):
        unit = (unit,) * len(size)
    unit = tuple(int(i) if isinstance(i, numbers.Integral) and not isinstance(i, bool)
                 else i for i in unit)  # numpy integers too
    if len(unit) != len(size):
        raise QueryError(f"unit {list(unit)} has {len(unit)} indices; layer {node!r} has "
                         f"{len(size)} axes")
    for i, n in zip(unit, size):
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
            raise QueryError(f"unit {list(unit)} is outside layer {node!r} of size {list(size)}")
    return unit


def ancestors(graph: Graph, node: str) -> list[str]:
    """The node and every node it reads from, in graph order."""
    keep = {node}
    for name in reversed(list(graph.nodes)):
        if name in keep:
            keep.update(s for s in graph.nodes[name].inputs if s != INPUT)
    return [n for n in graph.nodes if n in keep]


def _as_mask(value, n: int) -> np.ndarray:
    if isinstance(value, tuple):
        mask = np.zeros(n, dtype=bool)
        mask[value[0]:value[1] + 1] = True
        return mask
    return value


def _union(old, new, n: int):
    """Union of two index sets, each a run (lo, hi) or a boolean mask."""
    if old is None:
        return new
    if isinstance(old, tuple) and isinstance(new, tuple) and \
            new[0] <= old[1] + 1 and old[0] <= new[1] + 1:
        return min(old[0], new[0]), max(old[1], new[1])
    return _as_mask(old, n) | _as_mask(new, n)


def _run_through(rule: R.AxisRule, run: tuple[int, int]):
    """The parent run of a run of units, when it is one; else None (use masks)."""
    if rule.is_identity:
        return run, False
    if rule.is_global:
        return (0, rule.n_in - 1), False
    if isinstance(rule, R.Window) and (rule.kernel == 1 or rule.dilation == 1) and (
            run[0] == run[1] or rule.stride <= rule.kernel):
        lo = run[0] * rule.stride - rule.pad_before
        hi = run[1] * rule.stride - rule.pad_before + (rule.kernel - 1) * rule.dilation
        padded = lo < 0 or hi >= rule.n_in
        return (max(lo, 0), min(hi, rule.n_in - 1)), padded
    return None


def _backward(graph: Graph, node: str, axis: int, first: int, last: int):
    """Input indices read by units first..last of ``node`` on one axis, and whether
    padding is read. Sets are runs (lo, hi) while they stay contiguous, masks after."""
    sets: dict[str, object] = {node: (first, last)}
    padded = False
    for name in reversed(ancestors(graph, node)):
        current = sets.pop(name, None)
        if current is None:
            continue
        n = graph.nodes[name]
        rule = n.rules[axis]
        parent = _run_through(rule, current) if isinstance(current, tuple) else None
        if parent is not None:
            run, pad = parent
            padded = padded or pad
            for src in n.inputs:
                if run[0] <= run[1]:
                    sets[src] = _union(sets.get(src), run, rule.n_in)
            continue
        units = np.flatnonzero(_as_mask(current, rule.n_out))
        if units.size == 0:
            continue
        target = np.zeros(rule.n_in, dtype=bool)
        if rule.is_global:
            target[:] = True
        else:
            edge = rule.border(units)
            padded = padded or (edge is not None and bool(edge.any()))
            for idx, present in rule.taps(units):
                idx = idx[present]
                inside = (idx >= 0) & (idx < rule.n_in)
                padded = padded or not inside.all()
                target[idx[inside]] = True
        for src in n.inputs:
            sets[src] = _union(sets.get(src), target, rule.n_in)
    return _as_mask(sets.get(INPUT, (0, -1)), graph.input_size[axis]), padded


def box(graph: Graph, node: str | None = None, unit=None, span=None) -> Box:
    """The input box of one unit (default: the centre), or of ``span`` units from it."""
    node = resolve_node(graph, node)
    unit = resolve_unit(graph, node, unit)
    size = graph.nodes[node].size
    counts = (1,) * len(size) if span is None else tuple(span)
    ranges, cover, clipped, units = [], [], [], []
    for a, (i, c, n) in enumerate(zip(unit, counts, size)):
        if c < 1 or i + c > n:
            raise QueryError(f"a span of {c} units from unit {i} does not fit in layer "
                             f"{node!r} of size {n} on axis {a}")
        mask, padded = _backward(graph, node, a, i, i + c - 1)
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            ranges.append((0, -1))
            cover.append(Fraction(0))
        else:
            ranges.append((int(hits[0]), int(hits[-1])))
            cover.append(Fraction(int(hits.size), int(hits[-1] - hits[0] + 1)))
        clipped.append(padded)
        units.append((i, i + c - 1))
    return Box(node, tuple(units), tuple(ranges), tuple(cover), tuple(clipped))


def _forward(graph: Graph, node: str, axis: int, start: np.ndarray, combine: str) -> np.ndarray:
    """Propagate a per-index flag from the input to ``node``.

    ``combine="any"``: a unit is flagged when it reads any flagged index
    (which units see a region). ``combine="all"``: when every read is flagged
    and none is padding (which units read no padding).
    """
    flags: dict[str, np.ndarray] = {INPUT: start}
    for name in ancestors(graph, node):
        n = graph.nodes[name]
        rule: R.AxisRule = n.rules[axis]
        out: np.ndarray | None = None
        for src in n.inputs:
            parent = flags[src]
            if rule.is_global:
                v = np.full(rule.n_out, parent.any() if combine == "any" else parent.all())
            else:
                units = np.arange(rule.n_out)
                v = np.zeros(rule.n_out, bool) if combine == "any" else np.ones(rule.n_out, bool)
                for idx, present in rule.taps(units):
                    inside = (idx >= 0) & (idx < rule.n_in)
                    hit = parent[np.clip(idx, 0, rule.n_in - 1)] & inside
                    if combine == "any":
                        v |= present & hit
                    else:
                        v &= ~present | hit
                edge = rule.border(units)
                if combine == "all" and edge is not None:
                    v &= ~edge
            if out is None:
                out = v
            else:
                out = out | v if combine == "any" else out & v
        assert out is not None  # every node has an input
        flags[name] = out
    return flags[node]


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def units_seeing(graph: Graph, node: str | None, region) -> list[list[tuple[int, int]]]:
    """Per axis, the runs of units of ``node`` whose field meets the input region.

    ``region`` is one (first, last) pair per axis, inclusive.
    """
    node = resolve_node(graph, node)
    out = []
    for a, (lo, hi) in enumerate(region):
        n = graph.input_size[a]
        if not (0 <= lo <= hi < n):
            raise QueryError(f"region {lo}..{hi} on axis {a} is not inside the input (0..{n - 1})")
        start = np.zeros(n, bool)
        start[lo:hi + 1] = True
        out.append(_runs(_forward(graph, node, a, start, "any")))
    return out


def units_inside(graph: Graph, node: str | None = None) -> list[list[tuple[int, int]]]:
    """Per axis, the runs of units of ``node`` whose field reads no padding at any layer."""
    node = resolve_node(graph, node)
    return [_runs(_forward(graph, node, a, np.ones(graph.input_size[a], bool), "all"))
            for a in range(graph.ndim)]


def bound_arrays(graph: Graph, axis: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For every node, the first and last input index each unit depends on (one axis).

    Forward, exact: the hull of a union of sets is the min of their mins and the
    max of their maxes. A unit that depends on nothing has lo > hi.
    """
    n0 = graph.input_size[axis]
    empty_lo, empty_hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    out = {INPUT: (np.arange(n0), np.arange(n0))}
    for name, node in graph.nodes.items():
        rule: R.AxisRule = node.rules[axis]
        lo = np.full(rule.n_out, empty_lo, dtype=np.int64)
        hi = np.full(rule.n_out, empty_hi, dtype=np.int64)
        for src in node.inputs:
            plo, phi = out[src]
            if rule.is_global:
                live = plo <= phi
                if live.any():
                    lo = np.minimum(lo, plo[live].min())
                    hi = np.maximum(hi, phi[live].max())
                continue
            for idx, present in rule.taps(np.arange(rule.n_out)):
                ok = present & (idx >= 0) & (idx < rule.n_in)
                j = np.clip(idx, 0, rule.n_in - 1)
                lo = np.where(ok, np.minimum(lo, plo[j]), lo)
                hi = np.where(ok, np.maximum(hi, phi[j]), hi)
        out[name] = (lo, hi)
    del out[INPUT]
    return out
