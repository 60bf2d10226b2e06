"""Checks shared by the JAX tests: every sampled unit's box of every returned map and
module output the analysis names, against back-propagation through the program
(rfield's measurement, which shares no code with the analysis), and rf and jump
through ``verify``."""

from __future__ import annotations

import rfield
from rfield.core.analysis import Analysis
from rfield.empirical.jax_gradient import measure
from rfield.empirical.verify import verify
from rfield.models.jax_programs import input_shape, program

from keras_checks import assert_same_boxes, units_of


def spatial_names(a: Analysis, modules: bool = True) -> list[str]:
    """Returned maps and (with ``modules``) module outputs that are maps (every axis
    over 1)."""
    g = a.graph
    names = [n for n in g.aliases if modules or n.startswith("output")]
    return [n for n in names if all(s > 1 for s in g.nodes[g.aliases[n]].size)]


def check_boxes(target, size, names=None, limit: int = 48, layout: str = "nhwc",
                channels: int = 3, modules: bool = True) -> Analysis:
    """Every sampled unit's box equals the measured one."""
    a = rfield.analyze(target, size, framework="jax", layout=layout, channels=channels)
    g = a.graph
    names = names or spatial_names(a, modules)
    assert names, "no spatial map to check"
    units = {n: units_of(g.nodes[g.aliases[n]].size, limit) for n in names}
    layouts = {n: g.alias_layouts[n] for n in names}
    shape = input_shape(size, channels, layout)
    prog = program(target, shape)
    with prog.scopes():
        got = measure(prog.fn, prog.extra, shape, names, units, layouts,
                      g.provenance.input_layout)
    assert_same_boxes(a, got)
    return a


def check_verify(target, size, nodes=None, **options) -> None:
    """rf and jump on an input large enough for the whole field, and the boxes of the
    centre unit and its neighbour, through ``rfield verify``."""
    checks = verify(target, size, nodes=nodes, framework="jax", **options)
    bad = [c for c in checks if not c.ok]
    assert checks and not bad, bad[:3]
