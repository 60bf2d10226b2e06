"""Whether a zoo model's stages still do anything at another input size, answered
from the atlas's stage fields without building the model (``rfield zoo NAME
--input 64,64``).

The rule is the one ``rfield analyze`` applies layer by layer (rfa-toolbox's,
:mod:`rfield.core.unproductive`), read at the granularity the atlas keeps: a
stage is *unproductive* when the stage before it already covers the input (so
every layer in it, reading a covering field, covers it too), and *reaches the
input* when it is the first whose field covers it (its later layers may be
unproductive; ``rfield analyze`` names them). A global stage is judged by its
local field. After a stage whose jump is smaller than an earlier one's (an
upsampling decoder), the atlas's largest field is not the smallest one the rule
needs: those stages are not judged, and say so.
"""

from __future__ import annotations

from .atlas import Row


def _field(row: Row) -> list[int] | None:
    s = row.stage
    return s["local_rf"] if s["global"] else s["rf"]


def verdicts(rows: list[Row], size: tuple[int, ...]) -> list[str]:
    """One word per row (rows of one or more models, each model's stages in order)."""
    out: list[str] = []
    prev: dict[str, tuple[bool, list]] = {}  # model -> (covered before, jumps so far)
    for row in rows:
        key = f"{row.model['library']}:{row.model['model']}"
        covered, jumps = prev.get(key, (False, []))
        field, jump = _field(row), row.stage["jump"]
        if len(size) != len(row.model["input"]) - 1:
            out.append("-")
            continue
        upsampled = jump is not None and any(
            j is not None and min(jump) < min(j) for j in jumps)
        covers = field is not None and all(r >= n for r, n in zip(field, size))
        exceeds = field is not None and all(r > n for r, n in zip(field, size))
        if upsampled:
            out.append("not judged (upsampled)")
        elif covered and exceeds:
            out.append("unproductive")
        elif covers:
            out.append("reaches the input")
        else:
            out.append("")
        prev[key] = (covered or (covers and not upsampled), jumps + [jump])
    return out
