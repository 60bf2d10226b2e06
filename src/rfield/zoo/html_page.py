"""``rfield zoo --html FILE``: the atlas as one self-contained page to browse.

Every number is written here as text, exactly as the atlas holds it (no script formats a
number); the script only filters, sorts (by a float kept beside the text) and draws each
model's stages as growing boxes over one input.
"""

from __future__ import annotations

import html
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from .atlas import axes_text, model_verdict, stage_verdict


def _largest(v: Any) -> float | None:
    """A sort key: the largest per-axis value (None sorts last)."""
    if not v or any(x is None for x in v):
        return None
    return float(max(Fraction(x) for x in v))


def _stage(m: dict, s: dict) -> dict:
    field = s["local_rf"] if s["global"] else s["rf"]
    return {"module": s["module"], "size": axes_text(s["size"]),
            "rf": "global" if s["global"] else axes_text(s["rf"]),
            "local": axes_text(s["local_rf"]) if s["global"] else "",
            "jump": axes_text(s["jump"]), "verdict": stage_verdict(m, s),
            "note": s.get("verify_note", ""),
            # what the drawing scales by (floats for geometry only; never printed)
            "box": [float(Fraction(x)) for x in field] if field and None not in field
            else None, "is_global": s["global"]}


def _model(m: dict) -> dict:
    stages = m.get("stages", [])
    last = stages[-1] if stages else None
    return {
        "name": m["model"], "library": m["library"], "family": m["family"],
        "input": axes_text(m["input"][1:]) if "input" in m else "-",
        "in": [int(v) for v in m["input"][1:]] if "input" in m else [],
        "params": m.get("params"),
        "rf": "-" if last is None else "global" if last["global"] else axes_text(last["rf"]),
        "local": "" if last is None or not last["global"] else axes_text(last["local_rf"]),
        "jump": "-" if last is None else axes_text(last["jump"]),
        "sort_rf": None if last is None else _largest(
            last["local_rf"] if last["global"] else last["rf"]),
        "sort_jump": None if last is None else _largest(last["jump"]),
        "verdict": "failed" if "error" in m else model_verdict(m),
        "unknown": ", ".join(f"{k} {v}" for k, v in sorted(m.get("unknown_ops", {}).items())),
        "error": m.get("error", ""), "note": m.get("verify_note", ""),
        "stages": [_stage(m, s) for s in stages]}


def page(lines: list[dict], title: str = "rfield zoo atlas") -> str:
    """The page for the atlas's lines (failures included, with their reasons)."""
    models = [_model(m) for m in lines]
    read = [m for m in lines if "error" not in m]
    summary = (f"{len(lines)} models, {len(read)} read, "
               f"{sum(not m.get('unknown_ops') for m in read)} meeting no unknown operator; "
               f"{sum(model_verdict(m) == 'exact' for m in read)} with every measured stage "
               "equal to back-propagation, unclipped")
    payload = json.dumps(models, separators=(",", ":")).replace("</", "<\\/")
    template = (Path(__file__).parent / "page_template.html").read_text(encoding="utf-8")
    return (template.replace("%TITLE%", html.escape(title))
            .replace("%SUMMARY%", html.escape(summary))
            .replace("%DATA%", payload))
