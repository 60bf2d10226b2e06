"""Unproductive (border) layers at the analysed input size.

Richter et al. ("Should You Go Deeper? Optimizing Convolutional Neural Network
Architectures without Training", ICMLA 2021; "(Input) Size Matters for CNN
Classifiers", 2021) found that a layer whose receptive field already covers the
input, fed only by layers whose fields cover it too, adds little to the
solution: rfa-toolbox's ``EnrichedNetworkNode.is_border`` (1.7.0). rfield
applies that rule to its exact fields, per axis: a layer is unproductive on an
axis when its smallest field there (``rf_min``; a global layer reads everything)
is larger than the input's size and every input layer's is at least that size;
or, as rfa-toolbox adds, when it is a window (conv, pooling) whose kernel is at
least as long as every input map there (it reads each map whole, as a dense
layer does). The network's input itself has a field of 1. A layer global only
through global paths (after a squeeze-and-excitation gate, or attention) is
judged by its local field, the one its convolutions grow, as rfa-toolbox (which
reads such gates as identities) does; layers fed only by layers with no local
field at all (a classifier's head after its pooling) are not judged, as
rfa-toolbox leaves dense layers out.
"""

from __future__ import annotations

import weakref

from .analysis import Analysis
from .graph import INPUT
from .ops import Conv
from .rules import Window


def _reach(a: Analysis, node: str) -> list[float]:
    """Per axis, the largest input ``node``'s smallest field covers: its local field
    where it is global through global paths, any input where it has none."""
    if node == INPUT:
        return [1.0] * a.graph.ndim
    f = a.fields[node]
    field = f.rf_min if f.rf_min is not None else f.local_rf
    if field is None:
        return [float("inf")] * a.graph.ndim
    return [float(r) for r in field]


def _dense_like(a: Analysis, name: str) -> tuple[bool, ...]:
    """Per axis, whether ``name`` is a window whose kernel spans its whole input map."""
    node = a.graph.nodes[name]
    if not isinstance(node.op, Conv):
        return (False,) * a.graph.ndim
    return tuple(isinstance(r, Window) and r.n_in <= r.kernel for r in node.rules)


def unproductive(a: Analysis, dense: bool = True) -> dict[str, tuple[bool, ...] | None]:
    """Per node, per axis whether it is unproductive; None where it is not judged.
    Without ``dense``, by the field rule alone (what the input advice inverts).
    Kept per analysis: every format of one report asks for the same marks."""
    memo = _MARKS.setdefault(a, {})
    if dense not in memo:
        memo[dense] = _marks(a, dense)
    return memo[dense]


#: analysis -> {dense: marks}; an analysis is immutable once made, and dropped with it
_MARKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _marks(a: Analysis, dense: bool) -> dict[str, tuple[bool, ...] | None]:
    size = a.graph.input_size
    out: dict[str, tuple[bool, ...] | None] = {}
    for name, node in a.graph.nodes.items():
        if not unproductive_judged(a, node.inputs):
            out[name] = None
            continue
        marks = tuple(r > n for r, n in zip(_reach(a, name), size))
        for i in node.inputs:
            marks = tuple(m and r >= n for m, r, n in zip(marks, _reach(a, i), size))
        if dense:
            marks = tuple(m or d for m, d in zip(marks, _dense_like(a, name)))
        out[name] = marks
    return out


def first_unproductive(marks: dict[str, tuple[bool, ...] | None]) -> tuple[int, str | None]:
    """How many layers are unproductive on some axis, and the first of them."""
    hit = [n for n, m in marks.items() if m and any(m)]
    return len(hit), (hit[0] if hit else None)


def input_advice(a: Analysis) -> dict[str, list[int] | None]:
    """Per axis: the smallest input at which no layer is unproductive by the field
    rule (a kernel spanning a whole map is judged at each size itself), and the
    largest the last spatial layer's smallest field spans (its local one where it is
    global; None: it has none), both from the fields as analysed at this size."""
    worst = [0.0] * a.graph.ndim
    for name, node in a.graph.nodes.items():
        if unproductive_judged(a, node.inputs):  # unproductive while s < own, s <= inputs'
            reach = [r - 1 for r in _reach(a, name)]
            for i in node.inputs:
                reach = [min(x, y) for x, y in zip(reach, _reach(a, i))]
            worst = [max(w, r) for w, r in zip(worst, reach)]
    last = a.last_spatial(a.field().name) or a.field().name
    f = a.fields[last]
    field = f.rf_min if f.rf_min is not None else f.local_rf  # a global one's local
    spans = None if field is None else list(field)
    return {"no_unproductive_from": [int(w) + 1 for w in worst]
            if all(w != float("inf") for w in worst) else None,
            "last_field_spans_up_to": spans}


def unproductive_judged(a: Analysis, inputs) -> bool:
    """Whether a layer with these inputs is judged: not fed only by layers with no
    local field (global, and global along every path)."""
    return not all(i != INPUT and a.fields[i].is_global and a.fields[i].local_rf is None
                   for i in inputs)
