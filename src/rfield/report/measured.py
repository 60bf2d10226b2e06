"""What the measurements print: verify's table, the erf summary and its JSON."""

from __future__ import annotations

import json
from typing import Any

from ..numbers import exact, json_value


def verify_table(checks: list[Any]) -> str:
    """A table with a verdict line."""
    head = ("layer", "axis", "rf", "measured", "jump", "measured", "box", "measured", "")
    rows = []
    for c in checks:
        rows.append((c.node, str(c.axis), exact(c.rf[0]), exact(c.rf[1]),
                     exact(c.jump[0]), exact(c.jump[1]),
                     f"{c.box[0][0]}..{c.box[0][1]}", f"{c.box[1][0]}..{c.box[1][1]}",
                     "ok" if c.ok else "DIFFERS"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                                  for i, (v, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    bad = sorted({c.node for c in checks if not c.ok})
    lines.append("")
    if bad:
        lines.append(f"verify: the analysis differs from back-propagation at {', '.join(bad)}")
    else:
        lines.append(f"verify: the analysis equals back-propagation at all {len(checks)} "
                     "checks (boxes on the given input and on an input large enough "
                     "for the whole field)")
    return "\n".join(lines) + "\n"


def erf_text(e: Any) -> str:
    """The effective receptive field in three lines."""
    # the ratios are exact (counts of positions); the spread is a float statistic,
    # written as the shortest text that reads back as the same float
    ratios = ", ".join(f"{int(t * 100)}%: {exact(r)}" for t, r in e.area_ratio.items())
    std = " x ".join(repr(float(s)) for s in e.std)
    rf = "global" if e.rf is None else " x ".join(str(v) for v in e.rf)
    return (f"{e.node}: effective receptive field over {e.samples} inputs\n"
            f"  high-contribution area ratio (t: share of the input area) {ratios}\n"
            f"  spread (std per axis) {std} positions; theoretical field {rf}\n")


def erf_json(e: Any, field: Any, input_size, box) -> str:
    data = {"node": e.node, "samples": e.samples, "input_size": list(input_size),
            "area_ratio": {f"{int(k * 100)}": json_value(v) for k, v in e.area_ratio.items()},
            "std": list(e.std), "rf": None if e.rf is None else list(e.rf),
            "box": [list(r) for r in box], "global": field.is_global,
            "jump": None if field.jump is None else [json_value(j) for j in field.jump]}
    return json.dumps(data) + "\n"
