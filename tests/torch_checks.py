"""Analysis of torch models against the gradient measurement (rfield.empirical.gradient)."""

from __future__ import annotations

import rfield
from rfield.empirical.gradient import measure

SIZES = {"vit": 224, "swin": 224, "maxvit": 224, "inception_v3": 96, "s3d": 224}
VIDEO = ("r3d", "mc3", "r2plus1d", "s3d", "mvit", "swin3d")


def input_size(name: str) -> tuple[int, ...]:
    side = next((v for k, v in SIZES.items() if name.startswith(k)), 64)
    if name.startswith(VIDEO):
        return (8, side, side) if side == 64 else (16, side, side)
    return (side, side)


def stage_modules(a, limit: int = 6) -> list[str]:
    """Module outputs to check: the last one at each jump (stage outputs), and the final
    spatial map."""
    g = a.graph
    order = {name: i for i, name in enumerate(g.nodes)}
    spatial = [(order[n], m) for m, n in g.aliases.items()
               if all(s > 1 for s in g.nodes[n].size) and m.count(".") <= 2
               and any(d is not None for d in g.alias_layouts.get(m, ()))]
    spatial.sort()
    by_jump: dict = {}
    for _, m in spatial:
        f = a.fields[g.aliases[m]]
        key = f.jump if f.jump is not None else ("global", g.nodes[g.aliases[m]].size)
        by_jump[key] = m
    picks = list(dict.fromkeys(by_jump.values()))
    if spatial and spatial[-1][1] not in picks:
        picks.append(spatial[-1][1])
    return picks[-limit:]


def check_model(model, size, modules=None, units_per_axis=("centre", 0, -1), channels=None,
                copy_model=True, exact=None):
    """Assert analysed boxes equal measured ones at the chosen module outputs (contain
    them, where the model has operators rfield reported it cannot follow, unless
    ``exact``: the modules checked are upstream of those)."""
    a = rfield.analyze(model, size, channels=channels)
    channels = channels or a.graph.input_channels
    if modules is None:
        modules = stage_modules(a)
    shape = (1, channels) + tuple(size)
    units = {}
    for m in modules:
        n = a.graph.aliases[m] if m else a.field().name  # "": what the model returns
        out = a.graph.nodes[n].size
        picks = []
        for u in units_per_axis:
            picks.append(tuple(s // 2 if u == "centre" else (s - 1 if u == -1 else u)
                               for s in out))
        units[m] = list(dict.fromkeys(picks))
    measured = measure(model, shape, modules, units, layouts=a.graph.alias_layouts,
                       copy_model=copy_model)
    checked = 0
    for m in modules:
        n = a.graph.aliases[m] if m else a.field().name  # "": what the model returns
        for got in measured[m]:
            assert got.output_size == a.graph.nodes[n].size, (m, got.output_size)
            box = a.box(n, got.unit)
            if a.graph.unknown_ops and not exact:
                # operators rfield reported it cannot follow: the field is taken to be
                # larger (never smaller) than the truth
                assert all(lo <= glo and ghi <= hi for (lo, hi), (glo, ghi) in
                           zip(box.ranges, got.box)), (m, n, got.unit, box.ranges, got.box)
            else:
                assert box.ranges == got.box, (m, n, got.unit, box.ranges, got.box)
            checked += 1
    return a, checked
