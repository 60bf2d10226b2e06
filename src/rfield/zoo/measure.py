"""Every stage of an atlas model measured where the measurement could disagree.

A check on the model's native input proves little for a deep stage: its field covers
the whole input, so any analysis that reaches the borders passes. Here each axis is
measured on a strip, long on that axis (past the largest field plus a few jumps) and
thin on the other (float64 memory stays small), two units a stage one period apart:
their boxes, unclipped, pin rf, jump and start. A model that cannot run a strip
(position embeddings, fixed windows) is measured at its native size, and a stage whose
field reaches the border there says ``covers``, not ``exact``.

Verdicts per stage, worst over the axes: ``exact`` (the analysed boxes equal the
measured ones, unclipped; a global stage measured whole on an input larger than its
local field), ``covers`` (equal, but the field touches the border: its size is not
confirmed), ``contains`` (the analysis holds the measured boxes, where rfield reported
operators it cannot follow), ``differs``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ..core.analysis import Analysis
from ..errors import RfieldError
from ..numbers import json_value
from .atlas import worst

#: the long side of a strip is not grown past this (nor past LONGEST_WIDE where the
#: other side cannot be thin)
LONGEST = 4096
LONGEST_WIDE = 1024
#: the thin side of a strip (a 32-stride network still has two units across it)
THIN = 64


#: what a model raises at a size it cannot run (position tables sized for the native
#: input index out of range, shapes that do not divide): the next size is tried
RUNS_NOT = (RfieldError, RuntimeError, MemoryError, KeyError, IndexError, ValueError,
            TypeError, AssertionError)


def _field(stage: dict, axis: int) -> tuple[Any, Any]:
    """(rf, jump) along ``axis`` that the strip must hold: the local ones if global."""
    rf = stage["local_rf"] if stage["global"] else stage["rf"]
    jump = stage["jump"]
    return (None if rf is None else rf[axis]), (None if jump is None else jump[axis])


def needed(stage: dict, axis: int) -> int:
    """The input length on ``axis`` past which the centre unit's field (or local field)
    touches no border: rf plus four jumps plus a margin."""
    rf, jump = _field(stage, axis)
    if rf is None:
        return 0
    step = Fraction(jump or 1)
    # a field off its unit (a decoder's upsampled mask) needs twice the offset more:
    # unit i's field is centred on start + i * jump, on i * jump where padding is even
    # (the four jumps of margin hold an offset of up to two)
    start = stage.get("start")
    offset = abs(Fraction(start[axis])) if start and start[axis] is not None else 0
    return math.ceil(rf + (2 * offset if offset > 2 * step else 0) + 4 * step + 8)


def _jump(stage: dict, axis: int) -> int:
    jump = stage["jump"]
    return math.ceil(Fraction(jump[axis])) if jump and jump[axis] is not None else 1


def sizes_to_try(stages: list[dict], native: tuple[int, ...], axis: int) -> list[tuple]:
    """Spatial sizes to measure ``axis`` on, best first: a strip, the long side with the
    native other side, the native size."""
    # sides a multiple of the deepest stride: networks that merge levels (DLA, U-Nets,
    # FPNs) run only where every level divides evenly, as at their native sizes
    step = 1 << max(0, math.ceil(math.log2(max(
        [float(Fraction(j)) for s in stages for j in (s["jump"] or [1])] + [1]))))
    # after upsampling the unit measured is the widest of its period and its neighbour a
    # period away, each up to the stride upsampled from in input pixels, not one jump
    longest, deepest = native[axis], 1
    for s in stages:  # in order: a stage finer than one before it is upsampled
        longest = max(longest, needed(s, axis) + 2 * max(0, deepest - _jump(s, axis)))
        deepest = max(deepest, _jump(s, axis))
    long = -(-longest // step) * step
    thin = min(max(THIN, 2 * step), min(native))
    out = []
    for other, cap in ((thin, LONGEST), (None, LONGEST_WIDE)):
        out.append(tuple(min(long, cap) if a == axis else (other or native[a])
                         for a in range(len(native))))
    out.append(tuple(native))
    return list(dict.fromkeys(out))


def _units(a: Analysis, node: str, axis: int) -> list[tuple[int, ...]]:
    """The centre unit and its neighbour one period away along ``axis`` (after
    upsampling one step is not one jump)."""
    size = a.graph.nodes[node].size
    centre = tuple(s // 2 for s in size)
    maps = a.axis_maps(node) or a.axis_maps(node, local=True)
    period = maps[axis].period if maps else 1
    if period > 1:  # after upsampling fields differ by phase: take the widest, the rf
        def width(i: int) -> int:
            lo, hi = a.box(node, centre[:axis] + (i,) + centre[axis + 1:]).ranges[axis]
            return hi - lo
        phase = max(range(centre[axis], min(centre[axis] + period, size[axis])), key=width)
        centre = centre[:axis] + (phase,) + centre[axis + 1:]
    # towards the farther border: a window's neighbour must not be the border's window
    step = period if size[axis] - 1 - (centre[axis] + period) > centre[axis] - period \
        else -period
    other = tuple(c + step if i == axis else c for i, c in enumerate(centre))
    if not 0 <= other[axis] < size[axis]:
        return [centre]
    return [centre, other]


def judge(stage: dict, axis: int, size: tuple, analysed: list, measured: list,
          units: list, unknown: bool) -> dict:
    """One stage's verdict on one axis from its units' analysed and measured boxes
    (each a list of per-axis (lo, hi))."""
    out: dict[str, Any] = {"on": list(size)}
    ends = [m[axis] for m in measured]
    touches = [lo <= 0 or hi >= size[axis] - 1 for lo, hi in ends]
    clipped = any(touches)
    if not touches[0]:  # what was measured, whatever the verdict
        lo0, hi0 = ends[0]
        out["rf"] = hi0 - lo0 + 1
        if len(units) > 1 and not touches[1]:
            out["jump"] = json_value(Fraction(ends[1][0] - lo0,
                                              units[1][axis] - units[0][axis]))
    if analysed != measured:
        inside = all(lo <= mlo and mhi <= hi for b, m in zip(analysed, measured)
                     for (lo, hi), (mlo, mhi) in zip(b, m))
        out["verdict"] = "contains" if unknown and inside else "differs"
    elif stage["global"]:
        whole = all(lo == 0 and hi == size[axis] - 1 for lo, hi in ends)
        rf, _ = _field(stage, axis)
        out["verdict"] = "exact" if whole and rf is not None and \
            size[axis] >= needed(stage, axis) else "covers"
    else:
        out["verdict"] = "covers" if clipped else "exact"
        # the input was long enough for the recorded field, yet the field reached its
        # border: the field grows with the input (or the record is wrong), never silent
        out["beyond"] = touches[0] and size[axis] >= needed(stage, axis)
    return out


def measure_stages(build_graph: Any, run: Any, stages: list[dict], native: tuple[int, ...],
                   unknown: bool) -> dict[str, dict]:
    """module -> its verdict and what was measured (per axis: rf, jump, the input
    size), for the atlas's stage records. ``build_graph(size)`` analyses the model at
    a spatial size; ``run(graph, modules, units, layouts)`` measures the modules' units
    by back-propagation on that graph's input (module -> the measured boxes)."""
    found: dict[str, dict[int, dict]] = {s["module"]: {} for s in stages}
    for axis in range(len(native)):
        left, reason = list(stages), ""
        for size in sizes_to_try(stages, native, axis):
            try:
                a = Analysis(build_graph(size))
                g = a.graph
                nodes = {s["module"]: g.aliases[s["module"]] for s in left}
                units = {m: _units(a, n, axis) for m, n in nodes.items()}
                got = run(g, list(nodes), units, {m: g.alias_layouts.get(m) for m in nodes})
            except RUNS_NOT as exc:
                reason = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                continue
            for s in left:
                m = s["module"]
                analysed = [[list(r) for r in a.box(nodes[m], u).ranges] for u in units[m]]
                measured = [[list(r) for r in got_m.box] for got_m in got[m]]
                found[m][axis] = judge(s, axis, size, analysed, measured, units[m], unknown)
            # a field that differs with the input size (an adaptive pool to a fixed
            # size) is measured again at the next size, down to the native one
            left = [s for s in left if not _settled(s, axis, found[s["module"]][axis])]
            if not left:
                break
        for s in left:  # never measured, or only at sizes where its field is another
            entry = found[s["module"]].setdefault(axis, {"verdict": None, "note": reason})
            if entry["verdict"] == "exact":
                entry["verdict"] = "covers"
    return {m: _record(per_axis) for m, per_axis in found.items()}


def torch_run(model: Any, prefix: str, channels: int, device: str = "cpu") -> Any:
    """``run`` for :func:`measure_stages` on a torch module (changed in place: no
    float64 copy per size) whose module names lack ``prefix`` (a detector's
    ``backbone``)."""
    from ..empirical.gradient import measure

    def own(m: str) -> str:
        return m[len(prefix) + 1:] if prefix else m

    def run(g: Any, modules: list[str], units: dict, layouts: dict) -> dict:
        got = measure(model, (1, channels, *g.input_size), [own(m) for m in modules],
                      {own(m): units[m] for m in modules},
                      layouts={own(m): layouts[m] for m in modules},
                      copy_model=False, device=device)
        return {m: got[own(m)] for m in modules}
    return run


def _settled(stage: dict, axis: int, got: dict) -> bool:
    """Whether a stage's verdict on ``axis`` speaks to its recorded numbers: anything
    but an exact local stage whose measured rf or jump is not the recorded one."""
    if got["verdict"] != "exact" or stage["global"]:
        return True
    rf, jump = stage["rf"][axis], stage["jump"][axis]
    return got.get("rf") == rf and (
        got.get("jump") is None or Fraction(got["jump"]) == Fraction(jump))


def _record(per_axis: dict[int, dict]) -> dict:
    """A stage's measurement as the atlas keeps it."""
    axes = [per_axis[a] for a in sorted(per_axis)]
    notes = [ax["note"] for ax in axes if ax.get("note")]
    if notes:
        return {"verified": None, "verify_note": f"the measurement failed: {notes[0]}"}
    out = {"verified": worst([ax["verdict"] for ax in axes]),
           "measured_rf": [ax.get("rf") for ax in axes],
           "measured_jump": [ax.get("jump") for ax in axes],
           "measured_on": [ax["on"] for ax in axes]}
    if any(ax.get("beyond") for ax in axes):
        out["verify_note"] = ("the field reached the border of an input long enough for "
                              "the recorded rf: it grows with the input size")
    return out
