"""The network as a graph, drawn as inline SVG (no Graphviz): one box per layer
(or per module at a depth, for big models), branches and merges as edges, each
box coloured by its field relative to the input, unproductive layers and
misaligned merges marked. A box carries ``data-layer`` so the report's script
shows its field over the image when it is clicked, as a table row does."""

from __future__ import annotations

import html
from dataclasses import dataclass

from ..core.analysis import Analysis, LayerField
from ..core.graph import INPUT
from ..core.unproductive import unproductive
from .formats import axes, grouped, rf_text

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 30, 14, 22, 10


@dataclass
class Card:
    label: str
    field: LayerField
    level: int = 0
    slot: int = 0


def _groups(a: Analysis, depth: int | None) -> tuple[list[Card], dict[str, int]]:
    """The boxes (one per row of the table at ``depth``) and each node's box: a node
    belongs to the first box, in graph order, that ends at or after it."""
    rows = grouped(a, depth)
    boxes = [Card(label, f) for label, f in rows]
    order = {n: i for i, n in enumerate(a.graph.nodes)}
    ends = sorted((order[b.field.name], i) for i, b in enumerate(boxes))
    of: dict[str, int] = {}
    k = 0
    for name in a.graph.nodes:
        while k < len(ends) and ends[k][0] < order[name]:
            k += 1
        if k < len(ends):
            of[name] = ends[k][1]
    return boxes, of


def _edges(a: Analysis, of: dict[str, int]) -> set[tuple[int, int]]:
    """Box-to-box edges (earlier to later only), and the input's as -1."""
    found = set()
    for name, node in a.graph.nodes.items():
        if name not in of:
            continue
        for src in node.inputs:
            s = -1 if src == INPUT else of.get(src)
            if s is not None and s != of[name] and s < of[name]:
                found.add((s, of[name]))
    return found


def _colour(a: Analysis, f: LayerField) -> str:
    """Light to dark blue as the field grows to the input's size; global darkest."""
    if f.is_global or f.rf is None:
        share = 1.0
    else:
        share = min(1.0, max(r / n for r, n in zip(f.rf, a.graph.input_size)))
    return f"hsl(210, 70%, {92 - 50 * share:.0f}%)"


def graph_svg(a: Analysis, depth: int | None, element_id: str) -> str:
    boxes, of = _groups(a, depth)
    edges = _edges(a, of)
    for i, b in enumerate(boxes):  # a box sits a level below everything it reads
        b.level = 1 + max([boxes[s].level for s, t in edges if t == i and s >= 0], default=0)
    per_level: dict[int, int] = {}
    for b in boxes:
        b.slot = per_level.get(b.level, 0)
        per_level[b.level] = b.slot + 1
    width = MARGIN * 2 + max(per_level.values(), default=1) * (BOX_W + GAP_X)
    levels = max(per_level, default=0) + 1
    height = MARGIN * 2 + levels * (BOX_H + GAP_Y)
    centre = lambda b: (MARGIN + b.slot * (BOX_W + GAP_X) + BOX_W / 2,
                        MARGIN + b.level * (BOX_H + GAP_Y) + BOX_H / 2)
    source = (MARGIN + BOX_W / 2, MARGIN + BOX_H / 2)
    marks = unproductive(a)
    misaligned = {f.node for f in a.findings if f.kind == "misaligned"}
    parts = [f'<svg id="{element_id}" class="graph" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
             'role="img" aria-label="the network as a graph">',
             '<g stroke="#999" fill="none">']
    for s, t in sorted(edges):
        x0, y0 = source if s < 0 else centre(boxes[s])
        x1, y1 = centre(boxes[t])
        # down the source's column, then a bend into the target from the level above
        bottom, top = y0 + BOX_H / 2, y1 - BOX_H / 2
        parts.append(f'<path d="M{x0:.0f},{bottom:.0f} L{x0:.0f},{top - GAP_Y:.0f} '
                     f'C{x0:.0f},{top:.0f} {x1:.0f},{top - GAP_Y:.0f} {x1:.0f},{top:.0f}"/>')
    parts.append('</g><g font-size="10" font-family="monospace">')
    parts.append(f'<rect x="{MARGIN}" y="{MARGIN}" width="{BOX_W}" height="{BOX_H}" rx="4" '
                 f'fill="#fff" stroke="#555"/><text x="{MARGIN + 6}" y="{MARGIN + 19}">'
                 f'input {axes(a.graph.input_size)}</text>')
    for b in boxes:
        x, y = centre(b)
        f = b.field
        mark = marks.get(f.name)
        classes = ["node"] + (["unproductive"] if mark and any(mark) else []) + (
            ["misaligned"] if f.name in misaligned else [])
        stroke = "#d62728" if "unproductive" in classes else (
            "#ff7f0e" if "misaligned" in classes else "#555")
        label = b.label if len(b.label) <= 22 else "…" + b.label[-21:]
        dash = ' stroke-dasharray="4,2"' if "misaligned" in classes else ""
        tip = (f"{b.label} ({f.kind}): rf {rf_text(f)}, jump {axes(f.local_jump)}, "
               f"output {axes(f.output_size)}" + (", unproductive" if "unproductive"
                                                  in classes else "") +
               (", misaligned inputs" if "misaligned" in classes else ""))
        parts.append(
            f'<g class="{" ".join(classes)}" data-layer="{html.escape(f.name)}">'
            f"<title>{html.escape(tip)}</title>"
            f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="4" fill="{_colour(a, f)}" stroke="{stroke}" '
            f'stroke-width="{2 if len(classes) > 1 else 1}"{dash}/>'
            f'<text x="{x - BOX_W / 2 + 5:.0f}" y="{y - 2:.0f}">{html.escape(label)}</text>'
            f'<text x="{x - BOX_W / 2 + 5:.0f}" y="{y + 10:.0f}" fill="#333">'
            f"rf {html.escape(rf_text(f))}</text></g>")
    parts.append("</g></svg>")
    return "".join(parts)
