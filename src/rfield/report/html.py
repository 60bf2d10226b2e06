"""One self-contained HTML report: no network access, no external file.

The page carries its data as JSON: the layer table, the growth chart (inline
SVG), the warnings, and for every layer the exact first and last input index
of every unit per axis (``bound_arrays``), so choosing any layer and unit in
the browser shows its true field over the image without further computation.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from ..core.analysis import Analysis
from ..core.query import bound_arrays
from ..core.unproductive import unproductive
from ..errors import RfieldError
from ..numbers import exact, json_value
from ..safeio import read_regular
from .formats import axes, fitting_depth, layer_dict, rf_text
from .graph_svg import graph_svg
from .plots import growth_data


def growth_svg(a: Analysis, width: int = 860, height: int = 260, labels: int = 40) -> str:
    """rf and jump per layer on a log scale, stage boundaries dotted, layer names
    (at most ``labels`` of them, evenly spread) on the axis."""
    d = growth_data(a)
    n = len(d["names"])
    if not n:
        return "<p>No layer with a field to chart.</p>"
    values = [v for v in d["rf"] + [j for j in d["jump"] if j] if v and v > 0]
    top = math.log10(max(values) * 1.2)
    left, right, pad_y, below = 50, 10, 20, 110
    x = lambda i: left + (width - left - right) * (i / max(n - 1, 1))
    y = lambda v: height - pad_y - (height - 2 * pad_y) * (math.log10(max(v, 1)) / top)
    step = max(1, math.ceil(n / labels))
    ticks = "".join(
        f'<text class="tick" transform="translate({x(i):.1f},{height - pad_y + 12}) '
        f'rotate(-60)" font-size="9" text-anchor="end" fill="#444">'
        f'{html.escape(d["names"][i][-28:])}</text>' for i in range(0, n, step))
    parts = [f'<svg id="growth" viewBox="0 0 {width} {height + below}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="receptive field and jump per layer">']
    for k in range(int(top) + 1):
        yy = y(10 ** k)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     f'stroke="#ddd"/><text x="{left - 6}" y="{yy + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{10 ** k}</text>')
    for s in d["stages"]:  # each stage's first layer named beside its mark
        xx = x(s - 0.5) if s else x(0)
        parts.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{pad_y}" y2="{height - pad_y}" '
                     'stroke="#999" stroke-dasharray="3,3"/><text class="stage" '
                     f'x="{xx + 3:.1f}" y="{height - pad_y - 4}" font-size="9" fill="#555">'
                     f'{html.escape(d["names"][s])} (jump {exact(d["jump"][s])})</text>')
    for key, color in (("rf", "#1f77b4"), ("jump", "#ff7f0e")):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(d[key]) if v)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                     f'points="{pts}"/>')
    parts.append(ticks)
    parts.append(f'<text x="{left + 8}" y="14" font-size="11" fill="#1f77b4">receptive field '
                 f'(largest so far)</text><text x="{left + 200}" y="14" font-size="11" '
                 'fill="#ff7f0e">jump</text></svg>')
    return "".join(parts)


def graph_section(a: Analysis) -> str:
    """The graph of the modules at the depth whose table fits (every layer when that is
    all of them), and every layer's behind a toggle."""
    depth = fitting_depth(a)
    every = graph_svg(a, None, "graph-all")
    if depth is None:
        return f'<div class="graphbox">{every}</div>'
    return (f'<p><label><input type="checkbox" id="expand"> show every layer</label> '
            f'(modules to depth {depth} shown)</p><div class="graphbox">'
            f'{graph_svg(a, depth, "graph")}'
            f'<div id="all" hidden>{every}</div></div>')


def default_layer(a: Analysis) -> str:
    """The layer shown first: the deepest spatial one whose centre unit's field is
    still inside the input (a classifier's last map sees the whole image, and its box
    would be the image's own border), else the last spatial layer."""
    last = a.last_spatial(a.graph.last()) or a.graph.last()
    inside = [f.name for f in a.layers if all(v > 1 for v in f.output_size)
              and not any(a.box(f.name).clipped)]
    return inside[-1] if inside else last


def report_data(a: Analysis, image_png: bytes | None = None) -> dict:
    g = a.graph
    bounds = [bound_arrays(g, ax) for ax in range(g.ndim)]
    layers = []
    marks = unproductive(a)
    for f in a.layers:
        d = layer_dict(f, marks[f.name])
        d["bounds"] = [[bounds[ax][f.name][0].tolist(), bounds[ax][f.name][1].tolist()]
                       for ax in range(g.ndim)]
        layers.append(d)
    return {
        "input_size": list(g.input_size),
        "layers": layers,
        "warnings": a.warnings,
        "default": default_layer(a),
        "image": None if image_png is None else
        f"data:image/{picture_type(image_png)};base64," + base64.b64encode(image_png).decode(),
    }


#: pictures the browser shows as they are, by their first bytes
PICTURES = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"GIF8": "gif", b"RIFF": "webp"}


def read_picture(path: str) -> bytes:
    """A picture's bytes for the report (PNG, JPEG, GIF or WebP, embedded as is)."""
    image = read_regular(path, "picture", 64 * 1024 ** 2)
    if picture_type(image) is None:
        raise RfieldError(f"{path}: not a PNG, JPEG, GIF or WebP picture")
    return image


def picture_type(image: bytes) -> str | None:
    for magic, kind in PICTURES.items():
        if image.startswith(magic) and (kind != "webp" or image[8:12] == b"WEBP"):
            return kind
    return None


def render(a: Analysis, title: str, image_png: bytes | None = None) -> str:
    data = report_data(a, image_png)
    rows = []
    marks = unproductive(a)
    for f in a.layers:
        rf = rf_text(f)
        mark = marks[f.name]
        unprod = "" if not mark or not any(mark) else " x ".join(
            "yes" if m else "no" for m in mark) if not all(mark) else "yes"
        rows.append(
            f'<tr data-layer="{html.escape(f.name)}"><td>{html.escape(f.name)}</td>'
            f"<td>{html.escape(f.kind)}</td><td>{axes(f.output_size)}</td><td>{rf}</td>"
            f"<td>{axes(f.local_rf) if f.is_global else ''}</td><td>{axes(f.local_jump)}</td>"
            f"<td>{axes(f.local_start)}</td><td>{axes(f.effective_padding)}</td>"
            f"<td>{unprod}</td></tr>")
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in a.warnings) or \
        "<li>none</li>"
    payload = json.dumps(data, default=json_value).replace("</", "<\\/")
    template = (Path(__file__).parent / "template.html").read_text(encoding="utf-8")
    return (template.replace("%TITLE%", html.escape(title))
            .replace("%INPUT%", axes(a.graph.input_size))
            .replace("%SVG%", growth_svg(a))
            .replace("%GRAPH%", graph_section(a))
            .replace("%ROWS%", "\n".join(rows))
            .replace("%WARNINGS%", warnings)
            .replace("%DATA%", payload))
