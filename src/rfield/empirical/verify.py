"""``rfield verify``: the analysis against back-propagation through the real network.

At each chosen node, the boxes of the centre unit and its neighbour are
measured twice: on the given input (borders and padding included) and on an
input large enough that the field touches no border (the theoretical field:
rf and jump). Any difference is a failed check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..core.analysis import Analysis
from ..errors import QueryError, RfieldError
from ..frameworks import Runner, framework
from ..targets import runner

#: the large input is not grown past this many positions per axis
MAX_SIDE = {1: 65536, 2: 1024, 3: 96}


@dataclass(frozen=True)
class AxisCheck:
    node: str
    axis: int
    rf: tuple[int | None, int | None]  # analysed, measured (None: not measured)
    jump: tuple[object, object]
    box: tuple[tuple[int, int], tuple[int, int]]  # on the given input
    ok: bool


def default_nodes(a: Analysis, limit: int = 6) -> list[str]:
    """Stage outputs (the last node at each jump) and the last spatial map."""
    g = a.graph
    candidates = [n for n, node in g.nodes.items() if all(s > 1 for s in node.size)]
    if g.aliases:  # models: module outputs only, as they can be hooked
        # (a Keras model's own layers: one nested in a sub-model has no output here)
        hookable = framework(g.provenance.source).hookable
        # an output whose layout names no position (tokens a reader cannot place) is
        # not measurable
        placed = lambda name: any(d is not None for d in g.alias_layouts.get(name, (0,)))
        named = {node for name, node in g.aliases.items() if hookable(name) and placed(name)}
        candidates = [n for n in candidates if n in named]
    by_jump: dict = {}
    for n in candidates:
        f = a.fields[n]
        by_jump[f.jump if f.jump is not None else ("global", g.nodes[n].size)] = n
    picks = list(dict.fromkeys(by_jump.values()))
    if candidates and candidates[-1] not in picks:
        picks.append(candidates[-1])
    return picks[-limit:]


def _period(a: Analysis, node: str) -> int:
    """The period (in units) the neighbour is taken at: the longest of the node's maps."""
    maps = a.axis_maps(node) or a.axis_maps(node, local=True)
    return max((m.period for m in maps), default=1) if maps else 1


def _measure_at(t: Runner, a: Analysis, nodes: list[str],
                device: str = "cpu") -> dict[str, list]:
    paths = t.paths(a.graph)
    modules, units = [], {}
    for n in nodes:
        path = paths.get(n)
        if path is None:
            raise QueryError(f"layer {n!r} is not the output of a module, so it cannot be "
                             "measured; name a module with node='layer4'")
        size = a.graph.nodes[n].size
        centre = tuple(s // 2 for s in size)
        # the neighbour one period away: after upsampling, one step is not one jump
        period = _period(a, n)
        nxt = tuple(min(c + period, s - 1) for c, s in zip(centre, size))
        modules.append(path)
        units[path] = [centre, nxt]
    layouts = {paths[n]: a.graph.alias_layouts.get(paths[n]) for n in nodes}
    got = t.measure(a.graph, modules, units, layouts, device)
    return {n: got[paths[n]] for n in nodes}


def verify(target, input_size=None, nodes=None, device: str = "cpu",
           say: Callable[[str], object] | None = None, **options) -> list[AxisCheck]:
    """Checks per node and axis; ``ok`` is False where analysis and measurement differ.
    ``device`` (cpu, cuda) is where a PyTorch model or spec is measured; ``say`` hears
    what is being measured (the command prints it on a terminal)."""
    say = say or (lambda _text: None)
    t = runner(target, input_size, options, device=device)
    a = Analysis(t.graph)
    if nodes:
        from ..core.query import resolve_node

        nodes = [resolve_node(a.graph, n) for n in nodes]
    else:
        nodes = default_nodes(a)
    if not nodes:
        raise RfieldError("the network has no spatial layer to verify")
    say(f"measuring {len(nodes)} layers on the {'x'.join(map(str, a.graph.input_size))} "
        "input")
    here = _measure_at(t, a, nodes, device)
    # a large enough input: the centre unit's field touches no border
    need = [a.graph.input_size[ax] for ax in range(a.graph.ndim)]
    for n in nodes:
        f = a.fields[n]
        rf = f.local_rf if f.is_global else f.rf
        jump = f.jump or (1,) * a.graph.ndim
        for ax in range(a.graph.ndim):
            if rf is not None:
                need[ax] = max(need[ax], int(rf[ax] + 4 * jump[ax] + 8))
    cap = MAX_SIDE[a.graph.ndim]
    big_size = tuple(min(v, cap) for v in need)
    big = Analysis(t.graph_at(big_size, nodes)) if big_size != tuple(a.graph.input_size) else a
    say(f"measuring them again on a {'x'.join(map(str, big_size))} input (the whole field)")
    far = _measure_at(t, big, nodes, device)
    checks = []
    for n in nodes:
        f, fb = a.fields[n], big.fields[n]
        for ax in range(a.graph.ndim):
            m_here = here[n][0]
            box_a = a.box(n, m_here.unit).ranges[ax]
            box_m = m_here.box[ax]
            m0, m1 = far[n]
            b0 = big.box(n, m0.unit).ranges[ax]
            b1 = big.box(n, m1.unit).ranges[ax]
            clipped = m0.box[ax][0] == 0 or m0.box[ax][1] == big_size[ax] - 1
            rf_m = None if clipped else m0.box[ax][1] - m0.box[ax][0] + 1
            step = m1.unit[ax] - m0.unit[ax]
            # the jump is the left ends' step over one whole period of the map (after
            # upsampling one unit is not one jump); a neighbour the map's edge cut short
            # of a period measures no jump
            whole = step > 0 and step == _period(big, n)
            jump_m = Fraction(m1.box[ax][0] - m0.box[ax][0], step) \
                if whole and not clipped else None
            rf_a = b0[1] - b0[0] + 1
            ok = (box_a == box_m and b0 == m0.box[ax] and b1 == m1.box[ax])
            jump_a = fb.jump[ax] if fb.jump is not None else None
            checks.append(AxisCheck(n, ax, (None if clipped else rf_a, rf_m),
                                    (jump_a, jump_m), (box_a, box_m), ok))
    return checks
