"""Unproductive (border) layers at the analysed input size.

Richter et al. ("Should You Go Deeper? Optimizing Convolutional Neural Network
Architectures without Training", ICMLA 2021; "(Input) Size Matters for CNN
Classifiers", 2021) found that a layer whose receptive field already covers the
input, fed only by layers whose fields cover it too, adds little to the
solution: rfa-toolbox's ``EnrichedNetworkNode.is_border``. rfield applies that
rule to its exact fields, per axis: a layer is unproductive on an axis when its
smallest field there (``rf_min``; a global layer reads everything) is at least
the input's size and so is every input layer's. The network's input itself has
a field of 1. Layers fed only by global layers (a classifier's head after its
pooling) are not judged, as rfa-toolbox leaves dense layers out.
"""

from __future__ import annotations

from .analysis import Analysis
from .graph import INPUT


def _covers(a: Analysis, node: str) -> tuple[bool, ...]:
    """Per axis, whether ``node``'s smallest field is at least the input's size."""
    size = a.graph.input_size
    if node == INPUT:
        return tuple(n <= 1 for n in size)
    f = a.fields[node]
    if f.is_global or f.rf_min is None:
        return (True,) * len(size)
    return tuple(r >= n for r, n in zip(f.rf_min, size))


def unproductive(a: Analysis) -> dict[str, tuple[bool, ...] | None]:
    """Per node, per axis whether it is unproductive; None where it is not judged."""
    out: dict[str, tuple[bool, ...] | None] = {}
    for name, node in a.graph.nodes.items():
        if not unproductive_judged(a, node.inputs):
            out[name] = None
            continue
        own = _covers(a, name)
        for i in node.inputs:
            own = tuple(x and y for x, y in zip(own, _covers(a, i)))
        out[name] = own
    return out


def first_unproductive(marks: dict[str, tuple[bool, ...] | None]) -> tuple[int, str | None]:
    """How many layers are unproductive on some axis, and the first of them."""
    hit = [n for n, m in marks.items() if m and any(m)]
    return len(hit), (hit[0] if hit else None)


def _reach(a: Analysis, node: str) -> list[float]:
    """Per axis, the largest input size ``node``'s smallest field covers (a global
    field covers any)."""
    if node == INPUT:
        return [1.0] * a.graph.ndim
    f = a.fields[node]
    if f.is_global or f.rf_min is None:
        return [float("inf")] * a.graph.ndim
    return [float(r) for r in f.rf_min]


def input_advice(a: Analysis) -> dict[str, list[int] | None]:
    """Per axis: the smallest input at which no layer is unproductive (None: none is
    at any size), and the largest the last spatial layer's smallest field spans (None:
    it is global), both from the fields as analysed at this size."""
    worst = [0.0] * a.graph.ndim
    for name, node in a.graph.nodes.items():
        if unproductive_judged(a, node.inputs):
            reach = _reach(a, name)
            for i in node.inputs:
                reach = [min(x, y) for x, y in zip(reach, _reach(a, i))]
            worst = [max(w, r) for w, r in zip(worst, reach)]
    last = a.last_spatial(a.field().name) or a.field().name
    f = a.fields[last]
    spans = None if f.is_global or f.rf_min is None else list(f.rf_min)
    return {"no_unproductive_from": [int(w) + 1 for w in worst]
            if all(w != float("inf") for w in worst) else None,
            "last_field_spans_up_to": spans}


def unproductive_judged(a: Analysis, inputs) -> bool:
    """Whether a layer with these inputs is judged (not fed only by global layers)."""
    return not all(i != INPUT and a.fields[i].is_global for i in inputs)
