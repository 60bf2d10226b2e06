"""What users read: the text table, JSON, CSV and Markdown.

Each renderer takes an :class:`Analysis` and the chosen unit's :class:`Box`
and returns one string, so nothing is half-written when something fails.
The JSON key names are a stable interface: other tools read them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ..core.analysis import Analysis, LayerField
from ..core.query import Box, ancestors
from ..core.unproductive import first_unproductive, input_advice, unproductive
from ..errors import QueryError
from ..frameworks import framework
from ..numbers import exact, json_value


def percent(shares) -> str:
    """Shares of positions read, as exact percentages (33.5%, or 1/3 as 100/3%)."""
    return " x ".join(exact(Fraction(c) * 100) + "%" for c in shares)


def axes(values, sep: str = "x") -> str:
    """Per-axis values as 19x19; '-' when missing."""
    if values is None:
        return "-"
    return sep.join(exact(v) for v in values)


def rf_text(f: LayerField) -> str:
    if f.is_global:
        return "global"
    mark = "" if f.is_exact else "~"
    if f.position_dependent and f.rf is not None and f.rf_min is not None:
        return mark + "x".join(str(a) if a == b else f"{a}-{b}"
                               for a, b in zip(f.rf_min, f.rf))
    return mark + axes(f.rf)


def layer_dict(f: LayerField, unproductive: tuple[bool, ...] | None = None) -> dict:
    """One layer in the JSON layout; ``unproductive`` per axis (None: not judged)."""
    listed = lambda v: None if v is None else [json_value(x) for x in v]
    return {
        "name": f.name, "op": f.kind, "inputs": list(f.inputs), "module": f.module,
        "output_size": list(f.output_size), "rf": listed(f.rf), "rf_min": listed(f.rf_min),
        "jump": listed(f.jump), "start": listed(f.start),
        "effective_padding": listed(f.effective_padding), "global": f.is_global,
        "local_rf": listed(f.local_rf), "local_jump": listed(f.local_jump),
        "local_start": listed(f.local_start), "coverage": listed(f.coverage),
        "exact": list(f.exact),
        "unproductive": None if unproductive is None else list(unproductive),
    }


def result_dict(a: Analysis, box: Box, queries: dict | None = None,
                leading_to: str | None = None) -> dict:
    """The JSON layout; with ``leading_to``, only the layers that node reads from."""
    unit = [u[0] for u in box.units]
    marks = unproductive(a)
    out: dict[str, Any] = {
        "input_size": list(a.graph.input_size),
        "node": box.node,
        "unit": unit,
        "box": [list(r) for r in box.ranges],
        "box_size": list(box.size),
        "coverage": [json_value(c) for c in box.coverage],
        "in_padding": list(box.clipped),
        "layers": [layer_dict(f, marks[f.name]) for f in _leading_to(a, leading_to)],
        "warnings": a.warnings,
        "input_advice": input_advice(a),
    }
    if any(u[1] != u[0] for u in box.units):
        out["units"] = [list(u) for u in box.units]
    last = a.last_spatial(box.node)
    if last is not None and last != box.node:  # what a classifier's head is fed
        centre = a.box(last)
        out["last_spatial"] = dict(layer_dict(a.fields[last], marks[last]), box=[
            list(r) for r in centre.ranges], unit=[u[0] for u in centre.units])
    maps = returned_maps(a, box.node)
    if maps:
        out["returned_maps"] = [dict(layer_dict(a.fields[n], marks[n]), returned=key)
                                for key, n in maps]
    for key, runs in (queries or {}).items():
        out[key] = [[list(r) for r in axis] for axis in runs]
    return out


def returned_maps(a: Analysis, node: str) -> list[tuple[str, str]]:
    """(name, node) of each spatial map the model returns, when it returns several
    and ``node`` is one of them: a detector's P3/P4/P5 levels, whose stride and field
    anchor design needs."""
    maps: dict[str, str] = {}
    for key, n in a.graph.provenance.outputs.items():
        if n in a.graph.nodes and all(v > 1 for v in a.graph.nodes[n].size):
            maps.setdefault(n, key)
    if len(maps) < 2 or node not in maps:
        return []
    return [(key, n) for n, key in maps.items()]


def _levels(a: Analysis, node: str) -> str:
    lines = []
    for key, n in returned_maps(a, node):
        f = a.fields[n]
        field = (f"global, local {axes(f.local_rf, ' x ')}, jump {axes(f.local_jump, ' x ')}"
                 if f.is_global else f"receptive field {axes(f.rf, ' x ')}, jump "
                 f"{axes(f.jump, ' x ')}, start {axes(f.start, ' x ')}")
        lines.append(f"  {key} ({n}, {axes(f.output_size, 'x')}): {field}")
    return "\nreturned maps:\n" + "\n".join(lines) if lines else ""


def dumps(data: dict) -> str:
    """JSON with one line per top-level key and per layer: readable and diff-friendly."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            inner = ",\n".join("    " + json.dumps(v) for v in value)
            lines.append(f"  {json.dumps(key)}: [\n{inner}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _leading_to(a: Analysis, node: str | None) -> list[LayerField]:
    """Every layer, or only those ``node`` reads from (and itself), in order."""
    if node is None:
        return list(a.layers)
    wanted = set(ancestors(a.graph, node))
    return [f for f in a.layers if f.name in wanted]


def to_json(a: Analysis, box: Box, queries: dict | None = None,
            leading_to: str | None = None) -> str:
    return dumps(result_dict(a, box, queries, leading_to))


CSV_COLUMNS = ("name", "op", "inputs", "output_size", "rf", "rf_min", "jump", "start",
               "effective_padding", "global", "local_rf", "exact", "unproductive")


def to_csv(a: Analysis, box: Box, leading_to: str | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    marks = unproductive(a)
    for f in _leading_to(a, leading_to):
        mark = marks[f.name]
        w.writerow([f.name, f.kind, "+".join(f.inputs), axes(f.output_size), axes(f.rf),
                    axes(f.rf_min), axes(f.jump), axes(f.start), axes(f.effective_padding),
                    str(f.is_global).lower(), axes(f.local_rf), str(f.is_exact).lower(),
                    "" if mark is None else axes(int(m) for m in mark)])
    return buf.getvalue()


def summary(a: Analysis, box: Box) -> str:
    f = a.fields[box.node]
    unit = ", ".join(str(u[0]) if u[0] == u[1] else f"{u[0]}..{u[1]}" for u in box.units)
    seen = " x ".join(f"[{lo}..{hi}]" for lo, hi in box.ranges)
    if f.is_global:
        head = f"{box.node}: reads the whole input (global)"
        if f.local_rf is not None:
            head += (f"; without the global paths, receptive field {axes(f.local_rf, ' x ')}"
                     f", jump {axes(f.local_jump, ' x ')}")
        last = a.last_spatial(box.node)
        if last is not None and last != box.node:
            g = a.fields[last]
            if g.is_global:
                head += (f"\nlast spatial layer {last}: global; without the global paths, "
                         f"receptive field {axes(g.local_rf, ' x ')}")
            else:
                centre = a.box(last)
                seen_there = " x ".join(f"[{lo}..{hi}]" for lo, hi in centre.ranges)
                head += (f"\nlast spatial layer {last}: receptive field {axes(g.rf, ' x ')}, "
                         f"jump {axes(g.jump, ' x ')}; its unit "
                         f"({', '.join(str(u[0]) for u in centre.units)}) sees input "
                         f"{seen_there}")
    else:
        head = (f"{box.node}: receptive field {'' if f.is_exact else '~'}{axes(f.rf, ' x ')}"
                + (f" (down to {axes(f.rf_min, ' x ')})" if f.position_dependent else "")
                + f", jump {axes(f.jump, ' x ')}, start {axes(f.start, ' x ')}")
    cov = ""
    if any(c < 1 for c in box.coverage):
        cov = f", reading {percent(box.coverage)} of the positions it spans per axis"
    pad = " (partly padding)" if any(box.clipped) else ""
    return (f"{head}\nunit ({unit}) sees input {seen}, {' x '.join(map(str, box.size))}"
            f"{cov}{pad}{_levels(a, box.node)}{unproductive_text(a)}")


def unproductive_text(a: Analysis) -> str:
    """The summary's lines on unproductive layers and the input sizes that suit."""
    count, first = first_unproductive(unproductive(a))
    text = ""
    if count:
        text = (f"\nunproductive at {axes(a.graph.input_size, ' x ')}: {count} "
                f"layer{'s' if count > 1 else ''}, from {first} (its field exceeds the "
                "input and its inputs' cover it, or its kernel spans its whole input map: "
                "rfa-toolbox's is_border, Richter et al. 2021)")
    advice = input_advice(a)
    sizes = []
    if advice["no_unproductive_from"]:
        sizes.append(f"no layer is unproductive from {axes(advice['no_unproductive_from'], ' x ')}")
    if advice["last_field_spans_up_to"]:
        last = a.fields[a.last_spatial(a.field().name) or a.field().name]
        which = "local field (it is global)" if last.is_global and last.rf_min is None \
            else "smallest field"
        sizes.append(f"the last spatial layer's {which} spans inputs up to "
                     f"{axes(advice['last_field_spans_up_to'], ' x ')}")
    if sizes:
        text += "\ninput sizes: " + "; ".join(sizes)
    return text


def grouped(a: Analysis, depth: int | None) -> list[tuple[str, LayerField]]:
    """(label, field) rows: every node, or with ``depth`` only the outputs of modules
    at most that deep (``layer4`` is depth 1, ``layer4.0.conv1`` depth 3; a Keras
    ``stage/conv`` depth 2), in order."""
    if depth is None or not a.graph.aliases:
        return [(f.name, f) for f in a.layers]
    fw = framework(a.graph.provenance.source)
    if fw.node_paths:
        return _grouped_by_node_names(a, depth)
    order = {n: i for i, n in enumerate(a.graph.nodes)}
    sep = fw.sep  # torch layer4.0; Keras and JAX outer/inner
    rows = [(order[n], m.count(sep) + 1, m, n) for m, n in a.graph.aliases.items()
            if m.count(sep) + 1 <= depth]
    rows.sort(key=lambda r: (r[0], -r[1]))  # a node that ends several modules: the outer
    seen, out = set(), []
    for _, _, module, node in rows:
        if node not in seen:
            seen.add(node)
            out.append((module, a.fields[node]))
    if not out:
        deepest = max(m.count(sep) + 1 for m in a.graph.aliases)
        raise QueryError(f"no module output at depth {depth} (modules there are never "
                         f"called themselves, a ModuleList for one); try depth={depth + 1}"
                         f" (the deepest is {deepest})")
    return out


def _grouped_by_node_names(a: Analysis, depth: int) -> list[tuple[str, LayerField]]:
    """Exporters name ONNX nodes by module path (``/layer1/layer1.0/conv1/Conv``): a
    module's output is the last node under its path; ``layer1`` is depth 1."""
    last: dict[str, str] = {}
    for node in a.graph.nodes:
        parts = [p for p in node.split("/") if p][:-1]  # the last part is the operator
        for d in range(1, min(depth, len(parts)) + 1):
            last["/".join(parts[:d])] = node
    if not last:
        raise QueryError("the ONNX file's node names carry no module paths "
                         "(/layer1/conv1/Conv), so --depth cannot group them")
    order = {n: i for i, n in enumerate(a.graph.nodes)}
    rows = sorted(last.items(), key=lambda kv: (order[kv[1]], kv[0].count("/")))  # outer first
    seen: set[str] = set()
    out = []
    for module, node in rows:
        if node not in seen:
            seen.add(node)
            out.append((module, a.fields[node]))
    return out


#: a model's table shows the deepest level of modules that fits in this many rows
FITTING_ROWS = 40


def fitting_depth(a: Analysis, rows: int = FITTING_ROWS) -> int | None:
    """The deepest module level whose table fits in ``rows`` (at least level 1), or
    None where every node fits or there are no modules (a spec)."""
    if not a.graph.aliases or len(a.layers) <= rows:
        return None
    fits, before = 1, 0
    for level in range(1, 64):
        try:
            n = len(grouped(a, level))
        except QueryError:
            continue  # a level with no module output of its own
        if n > rows:
            break
        if n > before:  # a level that adds rows
            fits, before = level, n
    return fits


def _depth_note(a: Analysis, depth: int | None, shown: int) -> str:
    """The line after a table grouped by module: what it leaves out, and how to see it."""
    if depth is None or shown >= len(a.layers):
        return ""
    return (f"(module outputs to depth {depth}: {shown} of {len(a.layers)} layers; "
            "--depth all shows every layer)\n")


def _rows(a: Analysis, depth: int | None = None, leading_to: str | None = None):
    """Table rows; a 'local' column (the field without global paths) where it differs.
    With ``leading_to``, only the layers that node reads from (and itself)."""
    pairs = grouped(a, depth)
    if leading_to is not None:
        wanted = set(ancestors(a.graph, leading_to))
        pairs = [(label, f) for label, f in pairs if f.name in wanted] or pairs
    layers = [f for _, f in pairs]
    local = any(f.is_global and f.local_rf is not None for f in layers)
    marks = unproductive(a)
    unprod = any(marks[f.name] and any(marks[f.name]) for f in layers)  # type: ignore[arg-type]
    head = ("layer", "op", "output", "rf") + (("local",) if local else ()) + (
        "jump", "start", "pad") + (("unprod.",) if unprod else ())
    rows = []
    types = a.graph.module_types if depth is not None else {}
    for label, f in pairs:
        row: tuple[str, ...] = (label, types.get(label, f.kind), axes(f.output_size),
                                rf_text(f))
        if local:
            row += (axes(f.local_rf) if f.is_global else "",)
        # a global node's stride and centre along its local paths, as users ask next
        row += (axes(f.local_jump), axes(f.local_start), axes(f.effective_padding))
        if unprod:
            mark = marks[f.name]
            row += ("" if not mark or not any(mark) else "yes" if all(mark)
                    else " x ".join("yes" if m else "no" for m in mark),)
        rows.append(row)
    return head, rows


def _size_note(a: Analysis) -> str:
    note = a.graph.provenance.size_note
    return f" ({note})" if note else ""


def to_table(a: Analysis, box: Box, width: int | None = None, depth: int | None = None,
             leading_to: str | None = None) -> str:
    """The layer table. With ``width`` (a terminal's), the name column takes what the
    others leave (at least 40) and longer names keep their end
    (``…ages.0.blocks.0.conv_dw``); without it (a file, a pipe) names are whole."""
    head, rows = _rows(a, depth, leading_to)
    others = sum(max(len(h), *(len(r[i]) for r in rows)) + 2
                 for i, h in enumerate(head) if i > 0)
    max_name = max(40, width - others) if width else max(len(r[0]) for r in rows)
    clip = lambda s: s if len(s) <= max_name else "…" + s[-(max_name - 1):]
    rows = [(clip(r[0]),) + r[1:] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out.append(_depth_note(a, depth, len(rows)))
    out.append(f"input {axes(a.graph.input_size)}{_size_note(a)}; " + summary(a, box))
    for w in a.warnings:
        out.append(f"warning: {w}")
    return "\n".join(out) + "\n"


def to_markdown(a: Analysis, box: Box, depth: int | None = None,
                leading_to: str | None = None) -> str:
    head, rows = _rows(a, depth, leading_to)
    esc = lambda s: s.replace("|", "\\|")
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(
        ["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    out.append(_depth_note(a, depth, len(rows)))
    out.append(f"Input {axes(a.graph.input_size)}. "
               + summary(a, box).replace("\n", ".\n").replace("unit (", "Unit ("))
    if a.warnings:
        out.append("")
        out += [f"- **warning**: {esc(w)}" for w in a.warnings]
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[..., str]] = {
    "table": to_table, "json": to_json, "csv": to_csv, "markdown": to_markdown}

QUERY_WORDS = {"units_seeing": "see the region", "units_inside": "read no padding"}


def queries_text(node: str, queries: dict) -> str:
    """``--seeing`` and ``--inside`` answers, one line each: runs of units per axis."""
    lines = []
    for key, runs in queries.items():
        text = " x ".join("[" + ", ".join(f"{lo}..{hi}" for lo, hi in axis) + "]"
                          if axis else "[none]" for axis in runs)
        lines.append(f"units of {node} that {QUERY_WORDS[key]}: {text}")
    return "".join(line + "\n" for line in lines)


def render(fmt: str, a: Analysis, box: Box, depth: int | None = None,
           queries: dict | None = None, leading_to: str | None = None,
           width: int | None = None) -> str:
    """The analysis in one format; ``queries`` (units_seeing, units_inside) are keys of
    the JSON or lines after the other formats; ``leading_to`` keeps only the rows of
    the layers that node reads from, in every format; ``depth`` groups a model's table
    and Markdown rows by module (JSON and CSV keep every node, for scripts); ``width``
    fits the table to a terminal."""
    if fmt == "json":
        return to_json(a, box, queries, leading_to)
    if fmt == "csv":
        return to_csv(a, box, leading_to) + queries_text(box.node, queries or {})
    if fmt == "table":
        return to_table(a, box, width, depth, leading_to) + queries_text(
            box.node, queries or {})
    return RENDERERS[fmt](a, box, depth=depth, leading_to=leading_to) + queries_text(
        box.node, queries or {})
