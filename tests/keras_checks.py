"""Checks shared by the Keras tests: every unit's box of every layer the analysis names,
against back-propagation through the model in its own backend (rfield's measurement,
which shares no code with the analysis), and rf and jump through ``verify``."""

from __future__ import annotations

import itertools
import random

import rfield
from rfield.core.analysis import Analysis
from rfield.empirical.keras_gradient import measure
from rfield.empirical.verify import verify
from rfield.frontends.keras_graph import graph_from_keras


def spatial_layers(a: Analysis) -> list[str]:
    """Top-level layers whose output is a map (every axis over 1)."""
    g = a.graph
    return [name for name, node in g.aliases.items()
            if "/" not in name and all(s > 1 for s in g.nodes[node].size)]


def units_of(size: tuple[int, ...], limit: int = 48) -> list[tuple[int, ...]]:
    """Every unit of a small map; else its centre, corners and a fixed random sample
    (``limit`` units in all)."""
    every = list(itertools.product(*(range(n) for n in size)))
    if len(every) <= limit:
        return every
    centre = tuple(n // 2 for n in size)
    corners = list(itertools.product(*((0, n - 1) for n in size)))
    if limit <= len(corners) + 1:
        return [centre] + corners[:limit - 1]
    picked = random.Random(0).sample(every, limit - len(corners) - 1)
    return [centre] + corners + picked


def check_boxes(model, size=None, layers=None, limit: int = 48) -> Analysis:
    """Every sampled unit's box of every spatial layer equals the measured one; a unit
    reading only padding reads nothing in the measurement and is empty in the
    analysis along some axis."""
    a = Analysis(graph_from_keras(model, size))
    g = a.graph
    layers = layers or spatial_layers(a)
    assert layers, "no spatial layer to check"
    units = {n: units_of(g.nodes[g.aliases[n]].size, limit) for n in layers}
    layouts = {n: g.alias_layouts[n] for n in layers}
    got = measure(model, g.input_size, layers, units, layouts, g.provenance.input_layout)
    assert_same_boxes(a, got)
    return a


def assert_same_boxes(a: Analysis, got: dict) -> None:
    """Each measured box (``got``: alias -> Measured list) equals the analysed one; a
    unit reading only padding reads nothing in the measurement and is empty in the
    analysis along some axis."""
    bad = []
    for name, measured in got.items():
        for m in measured:
            box = a.box(a.graph.aliases[name], m.unit).ranges
            if all(lo > hi for lo, hi in m.box):
                ok = any(lo > hi for lo, hi in box)
            else:
                ok = tuple(box) == m.box
            if not ok:
                bad.append((name, m.unit, box, m.box))
    assert not bad, f"{len(bad)} boxes differ, first: {bad[:3]}"


def check_verify(model, size=None, nodes=None) -> None:
    """rf and jump on an input large enough for the whole field, and the boxes of the
    centre unit and its neighbour, through ``rfield verify``."""
    checks = verify(model, size, nodes=nodes)
    bad = [c for c in checks if not c.ok]
    assert checks and not bad, bad[:3]


def analyze(target, size=None, **options) -> Analysis:
    return rfield.analyze(target, size, **options)
