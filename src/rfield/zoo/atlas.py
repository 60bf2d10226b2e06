"""Reading the atlas: the committed result of the sweep, answered without importing any
framework.

One line a model (see :mod:`.sweep`); a query gives one row per stage: the models of
a name or a family, or every stage that passes the filters a backbone is chosen by
(a field of at least N at stride S).
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import io
import json
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import RfieldError
from ..numbers import exact

#: the atlas shipped with the package
ATLAS = Path(__file__).with_name("atlas.jsonl.gz")


def load(path: Path | None = None) -> list[dict]:
    """The atlas's model lines (the last line of each model), failures included."""
    path = path or ATLAS
    if not path.is_file():
        raise RfieldError(f"{path}: no such atlas file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            lines = [json.loads(t) for t in f if t.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RfieldError(f"{path}: not an atlas ({type(exc).__name__})") from None
    last = {(m["library"], m["model"]): m for m in lines}
    return sorted(last.values(), key=lambda m: (m["library"], m["family"], m["model"]))


def save(lines: list[dict], path: Path) -> None:
    """Write the atlas: sorted, one model a line, gzip without a timestamp (the same
    lines make the same bytes)."""
    text = "".join(json.dumps(m, sort_keys=True) + "\n" for m in lines)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(text.encode())


@dataclass(frozen=True)
class Row:
    """One stage of one model."""

    model: dict
    stage: dict

    def field(self, local: bool) -> list[int] | None:
        """The stage's field; with ``local``, a global stage's local field."""
        s = self.stage
        return s["local_rf"] if s["global"] and local else s["rf"]

    def as_dict(self) -> dict:
        m, s = self.model, self.stage
        return {"model": m["model"], "library": m["library"], "family": m["family"],
                "input": m["input"], **s, "verified": stage_verdict(m, s)}


def split_name(name: str | None,
               libraries: list[str] | None) -> tuple[str | None, list[str] | None]:
    """``torchvision:resnet50`` (the form the atlas prints) is ``resnet50`` of
    torchvision; a bare name is of the libraries given (all by default)."""
    if name and ":" in name:
        lib, _, bare = name.partition(":")
        if libraries and lib not in libraries:
            raise RfieldError(f"{name!r} names {lib}, but --library says "
                              f"{' and '.join(libraries)}")
        return bare, [lib]
    return name, libraries


def family_matches(family: str, wanted: str) -> bool:
    """A family by its name (``resnet``, not ``inception_resnet_v2``), a glob, or the
    last part of a dotted one (``faster_rcnn`` for ``detection.faster_rcnn``), or its
    first part (``video`` for every ``video.*``)."""
    return fnmatch.fnmatch(family, wanted) or family.rsplit(".", 1)[-1] == wanted or \
        family.startswith(wanted + ".")


def models(lines: list[dict], name: str | None = None, family: str | None = None,
           libraries: list[str] | None = None) -> list[dict]:
    """The model lines (failures too) named (``resnet*``, ``timm:vit_*``), of a family
    and of the libraries given."""
    name, libraries = split_name(name, libraries)
    return [m for m in lines if (not libraries or m["library"] in libraries)
            and (not name or fnmatch.fnmatch(m["model"], name))
            and (not family or family_matches(m["family"], family))]


def query(lines: list[dict], name: str | None = None, family: str | None = None,
          rf_min: int | None = None, stride: int | None = None,
          local: bool = False, libraries: list[str] | None = None) -> list[Row]:
    """Stages of the models named (a name or a glob) or of a family, passing the
    filters: a field of at least ``rf_min`` on every axis (a global stage passes, or
    with ``local`` its local field must), a jump of ``stride`` on every axis. With
    filters, the stages that just pass come first: local fields by size, then global
    stages by their local field."""
    rows = []
    for m in models(lines, name, family, libraries):
        for s in m.get("stages", []):
            row = Row(m, s)
            rf = row.field(local)
            if rf_min is not None and not (rf is None and s["global"] and not local) and \
                    (rf is None or min(rf) < rf_min):
                continue
            if stride is not None and (s["jump"] is None or any(j != stride for j in s["jump"])):
                continue
            rows.append(row)
    if rf_min is not None or stride is not None:
        rows.sort(key=lambda r: (r.stage["global"], min(r.field(True) or [0])))
    return rows


def suggestions(lines: list[dict], name: str | None, family: str | None) -> str:
    """What to say when nothing matched: the nearest model names (any case) or the
    families there are."""
    import difflib

    if family:
        families = sorted({m["family"] for m in lines})
        near = difflib.get_close_matches(family, families, n=3, cutoff=0.5)
        guess = f"; did you mean {', '.join(near)}?" if near else "."
        return f"no family {family!r}{guess} Families: {', '.join(families)}"
    bare, _ = split_name(name, None)
    models = {m["model"].lower(): m for m in lines}
    hits = [models[n] for n in difflib.get_close_matches((bare or "").lower(), list(models),
                                                         n=3, cutoff=0.6)]
    if hits:
        return (f"no model in the atlas matches {name!r}; did you mean "
                + ", ".join(f"{m['library']}:{m['model']}" for m in hits) + "?")
    return (f"no model in the atlas matches {name!r}; 'rfield analyze timm:NAME' reads "
            "any model")


def axes_text(v: Any) -> str:
    if v is None:
        return "-"
    text = ["-" if x is None else exact(Fraction(x)) for x in v]  # ints, floats or "p/q"
    return "x".join(text) if len(set(text)) > 1 else text[0]


#: lines of an older sweep measured only the final stage at its native size
STANDARD = 2


def stage_verdict(m: dict, s: dict) -> str:
    """A stage's own verdict (see zoo/measure.py); '-' where it was not measured (the
    line or the stage says why); 'not yet' where the line predates per-stage checks."""
    if s.get("verified"):
        return s["verified"]
    return "not yet" if m.get("standard", 1) < STANDARD and "error" not in m else "-"


#: a stage's verdicts, best first (see zoo/measure.py)
VERDICTS = ("exact", "covers", "contains", "differs")


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=VERDICTS.index)


def model_verdict(m: dict) -> str:
    """The worst verdict of a model's measured stages."""
    found = [s["verified"] for s in m.get("stages", []) if s.get("verified")]
    return worst(found) if found else stage_verdict(m, {})


def verdict_counts(rows: list[Row]) -> str:
    """'stages: exact 10, covers 2; models: ...' over the rows (and their models)."""
    stages = Counter(stage_verdict(r.model, r.stage) for r in rows)
    models = Counter(model_verdict(m) for m in {id(r.model): r.model for r in rows}.values())
    text = lambda c: ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
    return f"stages: {text(stages)}; models: {text(models)}"


def measured_text(s: dict) -> str:
    """The measured rf per axis ('-' on an axis whose field reached the border)."""
    rf = s.get("measured_rf")
    if not rf:
        return "-"
    return axes_text(rf)


def cells(row: Row) -> list[str]:
    m, s = row.model, row.stage
    return [f"{m['library']}:{m['model']}", axes_text(m["input"][1:]), s["module"],
            axes_text(s["size"]),
            "global" if s["global"] else axes_text(s["rf"]), axes_text(s["jump"]),
            axes_text(s["padding"]), axes_text(s["local_rf"]), measured_text(s),
            stage_verdict(m, s)]


#: the words of `rfield analyze`'s table (output, pad) where they mean the same
HEADER = ["model", "input", "stage", "output", "rf", "jump", "pad", "local", "measured",
          "verified"]


def text(rows: list[Row]) -> str:
    table = [HEADER] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                     for line in table) + "\n" + verdict_counts(rows) + "\n"


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[Row]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(cells(r) for r in rows)
    return out.getvalue()


def json_text(rows: list[Row]) -> str:
    return json.dumps([r.as_dict() for r in rows], indent=1) + "\n"


#: the libraries the atlas sweeps (the prefix of their targets: ``hf:vit``)
LIBRARIES = ("torchvision", "timm", "hf", "smp", "ultralytics", "keras")
#: the package each atlas library is installed as
DISTRIBUTIONS = {"hf": "transformers", "smp": "segmentation-models-pytorch"}


def version_note(lines: list[dict]) -> str | None:
    """Says so when the installed torchvision or timm is not the atlas's version."""
    from importlib.metadata import PackageNotFoundError, version

    notes = []
    for library in sorted({m["library"] for m in lines}):
        lib = DISTRIBUTIONS.get(library, library)
        made = Counter(m.get("versions", {}).get(lib) for m in lines
                       if m["library"] == library)
        atlas = made.most_common(1)[0][0] if made else None
        try:
            here = version(lib)
        except PackageNotFoundError:
            continue
        if atlas and here != atlas:
            notes.append(f"{lib} {atlas} (installed: {here})")
    if not notes:
        return None
    return ("note: the atlas was made with " + ", ".join(notes) + "; 'rfield analyze "
            "LIBRARY:NAME' (timm:NAME, keras:NAME...) gives the live answer")
