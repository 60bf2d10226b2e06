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

from ..core.analysis import Analysis
from ..core.query import bound_arrays
from .formats import axes, layer_dict, number
from .plots import growth_data


def growth_svg(a: Analysis, width: int = 860, height: int = 260) -> str:
    """rf and jump per layer on a log scale, stage boundaries dotted."""
    d = growth_data(a)
    n = len(d["names"])
    if not n:
        return "<p>No layer with a field to chart.</p>"
    values = [v for v in d["rf"] + [j for j in d["jump"] if j] if v and v > 0]
    top = math.log10(max(values) * 1.2)
    left, right, pad_y = 50, 10, 20
    x = lambda i: left + (width - left - right) * (i / max(n - 1, 1))
    y = lambda v: height - pad_y - (height - 2 * pad_y) * (math.log10(max(v, 1)) / top)
    parts = [f'<svg id="growth" viewBox="0 0 {width} {height}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="receptive field and jump per layer">']
    for k in range(int(top) + 1):
        yy = y(10 ** k)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     f'stroke="#ddd"/><text x="{left - 6}" y="{yy + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{10 ** k}</text>')
    for s in d["stages"]:
        xx = x(s - 0.5) if s else x(0)
        parts.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{pad_y}" y2="{height - pad_y}" '
                     'stroke="#999" stroke-dasharray="3,3"/>')
    for key, color in (("rf", "#1f77b4"), ("jump", "#ff7f0e")):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(d[key]) if v)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                     f'points="{pts}"/>')
    parts.append(f'<text x="{left + 8}" y="14" font-size="11" fill="#1f77b4">receptive field'
                 f'</text><text x="{left + 120}" y="14" font-size="11" fill="#ff7f0e">jump'
                 '</text></svg>')
    return "".join(parts)


def report_data(a: Analysis, image_png: bytes | None = None) -> dict:
    g = a.graph
    bounds = [bound_arrays(g, ax) for ax in range(g.ndim)]
    layers = []
    for f in a.layers:
        d = layer_dict(f)
        d["bounds"] = [[bounds[ax][f.name][0].tolist(), bounds[ax][f.name][1].tolist()]
                       for ax in range(g.ndim)]
        layers.append(d)
    return {
        "input_size": list(g.input_size),
        "layers": layers,
        "warnings": a.warnings,
        "default": a.last_spatial(g.last()) or g.last(),
        "image": None if image_png is None else
        "data:image/png;base64," + base64.b64encode(image_png).decode(),
    }


def render(a: Analysis, title: str, image_png: bytes | None = None) -> str:
    data = report_data(a, image_png)
    rows = []
    for f in a.layers:
        rf = "global" if f.is_global else axes(f.rf) if not f.position_dependent else \
            axes(f.rf_min) + " to " + axes(f.rf)
        rows.append(
            f'<tr data-layer="{html.escape(f.name)}"><td>{html.escape(f.name)}</td>'
            f"<td>{html.escape(f.kind)}</td><td>{axes(f.output_size)}</td><td>{rf}</td>"
            f"<td>{axes(f.local_rf) if f.is_global else ''}</td><td>{axes(f.jump)}</td>"
            f"<td>{axes(f.start)}</td><td>{axes(f.effective_padding)}</td></tr>")
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in a.warnings) or \
        "<li>none</li>"
    payload = json.dumps(data, default=number).replace("</", "<\\/")
    return (TEMPLATE.replace("%TITLE%", html.escape(title))
            .replace("%INPUT%", axes(a.graph.input_size))
            .replace("%SVG%", growth_svg(a))
            .replace("%ROWS%", "\n".join(rows))
            .replace("%WARNINGS%", warnings)
            .replace("%DATA%", payload))


TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>rfield report: %TITLE%</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;font-size:12px}
td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:right}
td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
tr[data-layer]{cursor:pointer} tr.sel{background:#fff3c4}
#view{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
canvas{border:1px solid #ccc;image-rendering:pixelated}
#readout{font-family:monospace;font-size:14px;margin:.6em 0}
.scroll{max-height:420px;overflow:auto;border:1px solid #eee}
</style></head><body>
<h1>rfield report: %TITLE%</h1>
<p>Input %INPUT%. Click a layer in the table or pick it below, then click a unit on the
layer's grid to see the exact input box it depends on.</p>
<h2>Field over the input</h2>
<div id="view">
 <div><label>layer <select id="layer"></select></label>
  <label> unit <input id="unit" size="10"></label>
  <div id="readout"></div>
  <canvas id="image" width="448" height="448"></canvas></div>
 <div><div>units of the layer (click one)</div><canvas id="grid" width="224" height="224"></canvas></div>
</div>
<h2>Growth</h2>
%SVG%
<h2>Warnings</h2><ul id="warnings">%WARNINGS%</ul>
<h2>Layers</h2>
<div class="scroll"><table id="layers"><thead><tr><th>layer</th><th>op</th><th>output</th>
<th>rf</th><th>local rf</th><th>jump</th><th>start</th><th>pad</th></tr></thead>
<tbody>%ROWS%</tbody></table></div>
<script id="data" type="application/json">%DATA%</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const byName = {}; D.layers.forEach(l => byName[l.name] = l);
const nd = D.input_size.length;
const RA = nd >= 2 ? nd - 2 : null, CA = nd - 1;  // the axes drawn as rows and columns
const H = RA === null ? 1 : D.input_size[RA], W = D.input_size[CA];
const sel = document.getElementById("layer"), unitBox = document.getElementById("unit");
const img = document.getElementById("image"), grid = document.getElementById("grid");
const readout = document.getElementById("readout");
D.layers.forEach(l => { const o = document.createElement("option"); o.value = o.textContent = l.name; sel.appendChild(o); });
let picture = null;
if (D.image) { picture = new Image(); picture.onload = draw; picture.src = D.image; }
function background(ctx, sx, sy) {
  if (picture) { ctx.drawImage(picture, 0, 0, W * sx, H * sy); return; }
  for (let r = 0; r < H; r += 1) for (let c = 0; c < W; c += 1) {
    const v = Math.round(255 * Math.min(1, (((Math.floor(r / 16) + Math.floor(c / 16)) % 2) * 0.35 + 0.3 + 0.3 * c / Math.max(W - 1, 1))));
    ctx.fillStyle = `rgb(${v},${v},${v})`; ctx.fillRect(c * sx, r * sy, sx + 1, sy + 1);
  }
}
function state() {
  const l = byName[sel.value];
  const size = l.output_size;
  let unit = unitBox.value.split(/[ ,x]+/).filter(s => s !== "").map(Number);
  if (unit.length !== size.length || unit.some((u, i) => !(u >= 0 && u < size[i])))
    unit = size.map(s => Math.floor(s / 2));
  return [l, unit];
}
function boxOf(l, unit) {
  return unit.map((u, ax) => [l.bounds[ax][0][u], l.bounds[ax][1][u]]);
}
function draw() {
  const [l, unit] = state();
  unitBox.value = unit.join(",");
  const box = boxOf(l, unit);
  const sx = img.width / W, sy = RA === null ? img.height : img.height / H;
  const ctx = img.getContext("2d");
  background(ctx, sx, sy);
  const [r0, r1] = RA === null ? [0, 0] : box[RA], [c0, c1] = box[CA];
  ctx.strokeStyle = "red"; ctx.lineWidth = 3;
  ctx.strokeRect(c0 * sx, RA === null ? 2 : r0 * sy, (c1 - c0 + 1) * sx, RA === null ? img.height - 4 : (r1 - r0 + 1) * sy);
  const size = l.output_size, gh = RA === null ? 1 : size[RA], gw = size[CA];
  const gx = grid.width / gw, gy = grid.height / gh, g = grid.getContext("2d");
  g.fillStyle = "#f4f4f4"; g.fillRect(0, 0, grid.width, grid.height);
  g.strokeStyle = "#ccc";
  if (gw <= 64 && gh <= 64) for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) g.strokeRect(c * gx, r * gy, gx, gy);
  g.fillStyle = "red"; g.fillRect(unit[CA] * gx, RA === null ? 0 : unit[RA] * gy, gx, RA === null ? grid.height : gy);
  const extent = box.map(([a, b]) => `${a}..${b}`).join(" x ");
  const sizeTxt = box.map(([a, b]) => b - a + 1).join(" x ");
  readout.textContent = `unit (${unit.join(", ")}) of ${l.name} sees input ${extent} (${sizeTxt})`;
  document.querySelectorAll("tr[data-layer]").forEach(tr => tr.classList.toggle("sel", tr.dataset.layer === l.name));
}
grid.addEventListener("click", ev => {
  const [l, unit] = state(), size = l.output_size, rect = grid.getBoundingClientRect();
  unit[CA] = Math.min(size[CA] - 1, Math.floor((ev.clientX - rect.left) / rect.width * size[CA]));
  if (RA !== null) unit[RA] = Math.min(size[RA] - 1, Math.floor((ev.clientY - rect.top) / rect.height * size[RA]));
  unitBox.value = unit.join(","); draw();
});
document.querySelectorAll("tr[data-layer]").forEach(tr => tr.addEventListener("click", () => { sel.value = tr.dataset.layer; unitBox.value = ""; draw(); }));
sel.addEventListener("change", () => { unitBox.value = ""; draw(); });
unitBox.addEventListener("change", draw);
sel.value = D.default; draw();
</script></body></html>
"""
