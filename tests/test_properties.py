"""Property-based tests: random chains and random graphs with merges, against the reference."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rfield
from rfield.errors import ShapeError

from checks import compare

MAX_SIZE = 90
PROFILE = settings(max_examples=int(os.environ.get("RFIELD_EXAMPLES", "120")), deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def padding(draw, k, d):
    kind = draw(st.sampled_from(["int", "pair", "same", "valid", "causal"]))
    if kind == "int":
        return draw(st.integers(0, (k - 1) * d))
    if kind == "pair":
        return [[draw(st.integers(0, (k - 1) * d)), draw(st.integers(0, (k - 1) * d))]]
    return kind


@st.composite
def layer(draw, interp: bool = True):
    """One layer dict for a 1-D axis (per-axis lists of length 1 where lists are used)."""
    kinds = ["conv", "conv", "maxpool", "avgpool", "convtranspose", "relu", "pad", "crop",
             "slice", "pixelshuffle", "pixelunshuffle", "adaptivepool", "upsample", "upsample"]
    op = draw(st.sampled_from(kinds))
    if op == "conv":
        k, d = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        return {"op": op, "kernel": k, "stride": draw(st.integers(1, 3)), "dilation": d,
                "padding": draw(padding(k, d))}
    if op in ("maxpool", "avgpool"):
        k = draw(st.integers(1, 4))
        return {"op": op, "kernel": k, "stride": draw(st.sampled_from([None, 1, 2, 3])),
                "padding": draw(st.integers(0, k // 2)), "ceil_mode": draw(st.booleans())}
    if op == "convtranspose":
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        return {"op": op, "kernel": k, "stride": s, "dilation": d,
                "padding": draw(st.integers(0, (k - 1) * d)),
                "output_padding": draw(st.integers(0, max(s, d) - 1))}
    if op == "pad":
        return {"op": op, "padding": [[draw(st.integers(0, 3)), draw(st.integers(0, 3))]],
                "mode": draw(st.sampled_from(["constant", "replicate", "reflect", "circular"]))}
    if op == "crop":
        return {"op": op, "crop": [[draw(st.integers(0, 3)), draw(st.integers(0, 3))]]}
    if op == "slice":
        return {"op": op, "start": draw(st.integers(-4, 4)),
                "stop": draw(st.sampled_from([None, -3, -1, 30, 60])),
                "step": draw(st.integers(1, 3))}
    if op in ("pixelshuffle", "pixelunshuffle"):
        return {"op": op, "factor": draw(st.integers(1, 3))}
    if op == "adaptivepool":
        return {"op": op, "size": draw(st.integers(1, 12))}
    if op == "upsample":
        modes = ["nearest", "nearest-exact"] + (["linear", "cubic"] if interp else [])
        mode = draw(st.sampled_from(modes))
        spec = {"op": op, "mode": mode}
        if mode in ("linear", "cubic"):
            spec["align_corners"] = draw(st.booleans())
        if draw(st.booleans()):
            spec["scale"] = draw(st.sampled_from([1, 2, 3, 0.5, 1.5, 2.5, 0.75, 1.25]))
        else:
            # sizes prime to the input's give align_corners ratios with long periods
            spec["size"] = draw(st.integers(2, MAX_SIZE))
        return spec
    return {"op": op}


def build(layers, size):
    """Name layers and check the engine accepts them; reject too-large or invalid ones."""
    named = []
    for i, spec in enumerate(layers):
        spec = dict(spec)
        spec["name"] = spec.get("name", f"n{i}")
        if spec.get("stride", 1) is None:
            del spec["stride"]
        named.append(spec)
    try:
        a = rfield.analyze({"input": size, "layers": named})
    except ShapeError:
        assume(False)
    assume(all(max(f.output_size) <= MAX_SIZE for f in a.layers))
    return named


@PROFILE
@given(st.lists(layer(), min_size=1, max_size=6), st.integers(8, 48))
def test_random_chains_1d(layers, n):
    named = build(layers, [n])
    interp = any(s.get("mode") in ("linear", "cubic") for s in named)
    compare(named, [n], check_inside=not interp)


@st.composite
def graph(draw):
    """Layers reading random earlier nodes, with merges of nodes of equal size."""
    n = draw(st.integers(10, 40))
    layers, sizes = [], {"input": n}
    for i in range(draw(st.integers(2, 8))):
        names = list(sizes)
        by_size: dict[int, list[str]] = {}
        for name, m in sizes.items():
            by_size.setdefault(m, []).append(name)
        groups = [g for g in by_size.values() if len(g) >= 2]
        name = f"n{i}"
        if groups and draw(st.booleans()):
            group = draw(st.sampled_from(groups))
            ins = draw(st.lists(st.sampled_from(group), min_size=2, max_size=3, unique=True))
            layers.append({"name": name, "op": draw(st.sampled_from(["add", "concat", "mul"])),
                           "inputs": ins})
            sizes[name] = sizes[ins[0]]
            continue
        spec = dict(draw(layer(interp=False)), name=name, inputs=[draw(st.sampled_from(names))])
        if spec.get("stride", 1) is None:
            del spec["stride"]
        try:
            a = rfield.analyze({"input": [n], "layers": layers + [spec]})
        except ShapeError:
            continue
        m = a.fields[name].output_size[0]
        if m > MAX_SIZE:
            continue
        layers.append(spec)
        sizes[name] = m
    assume(layers)
    return layers, n


@PROFILE
@given(graph())
def test_random_graphs_with_merges(g):
    layers, n = g
    compare(layers, [n])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 2), st.integers(1, 2),
                          st.integers(0, 2)), min_size=1, max_size=4),
       st.integers(12, 30), st.integers(12, 30))
def test_random_2d_chains_with_different_axes(params, h, w):
    layers = [{"name": f"c{i}", "op": "conv", "kernel": [k, k2 := max(1, k - 1)],
               "stride": [s, 1], "dilation": [1, d], "padding": [[p, 0], [0, min(p, k2)]]}
              for i, (k, s, d, p) in enumerate(params)]
    named = build(layers, [h, w])
    compare(named, [h, w])


@PROFILE
@given(graph())
def test_bound_arrays_equal_boxes(g):
    """The forward bound arrays (used by the HTML report) equal the per-unit boxes."""
    from rfield.core.query import bound_arrays

    from reference import Reference

    layers, n = g
    a = rfield.analyze({"input": [n], "layers": layers})
    ref = Reference(layers, [n])
    arrays = bound_arrays(a.graph, 0)
    for name, (lo, hi) in arrays.items():
        for o in range(len(lo)):
            want = ref.box(name, 0, o)
            got = (int(lo[o]), int(hi[o])) if lo[o] <= hi[o] else None
            assert got == want, (name, o)
