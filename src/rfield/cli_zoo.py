"""``rfield zoo``: the atlas's answers (no framework imported), and ``rfield zoo build``,
the sweep that makes it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .errors import RfieldError


def run(args, write: Callable[[str, str | None], None]) -> int:
    if args.name == "build":
        return build(args)
    from .zoo import atlas

    lines = atlas.load(Path(args.atlas) if args.atlas else None)
    if args.html:
        return _html(lines, args, write)
    if not (args.name or args.family or args.rf_min or args.stride):
        raise RfieldError("name a model (rfield zoo resnet50), a family (--family convnext) "
                          "or filters (--rf-min 400 --stride 16)")
    rows = atlas.query(lines, args.name, args.family, args.rf_min, args.stride, args.local,
                       args.library)
    if not rows:
        bare, _ = atlas.split_name(args.name, None)
        failed = [m for m in lines if bare and m["model"] == bare and "error" in m]
        if failed:
            raise RfieldError(f"{args.name}: the sweep could not read it ({failed[0]['error']})")
        if args.name or args.family:
            raise RfieldError(atlas.suggestions(lines, args.name, args.family))
        raise RfieldError("no model in the atlas matches these filters")
    if args.input:
        write(_fit_text(rows, args.input), args.output)
        return 0
    fmt = {"json": atlas.json_text, "csv": atlas.csv_text, "markdown": atlas.markdown}
    write(fmt.get(args.format or "", atlas.text)(rows), args.output)
    note = atlas.version_note(lines)
    if note:
        sys.stderr.write(note + "\n")
    return 0


def _html(lines: list[dict], args, write: Callable[[str, str | None], None]) -> int:
    """The atlas page, of every model or of those the name, family and library pick."""
    from .zoo import atlas
    from .zoo.html_page import page

    picked = atlas.models(lines, args.name, args.family, args.library)
    if not picked:
        raise RfieldError(atlas.suggestions(lines, args.name, args.family))
    write(page(picked), args.html)
    return 0


def _fit_text(rows: list, text: str) -> str:
    """The stages with what each does at the input size asked (``--input``)."""
    from .cli_parser import input_size
    from .zoo.atlas import axes_text
    from .zoo.fit import verdicts

    size = input_size(text)
    axes = {len(r.model["input"]) - 1 for r in rows}
    if axes != {len(size)}:
        raise RfieldError(f"--input {text} has {len(size)} ax{'is' if len(size) == 1 else 'es'}, "
                          "but the models named have "
                          f"{' or '.join(str(n) for n in sorted(axes))}: give one size per "
                          "axis, e.g. --input 64,64")
    words = verdicts(rows, size)
    head = ["model", "stage", "output", "rf", "local", f"at {axes_text(list(size))}"]
    table = [head] + [[f"{r.model['library']}:{r.model['model']}", r.stage["module"],
                       axes_text(r.stage["size"]),
                       "global" if r.stage["global"] else axes_text(r.stage["rf"]),
                       axes_text(r.stage["local_rf"]), w] for r, w in zip(rows, words)]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines) + (
        "\n(from the atlas's stage fields, at its native size; rfield analyze NAME "
        f"--input {text} names every unproductive layer)\n")


def build(args) -> int:
    from .zoo import atlas, sweep

    todo = sweep.select(args.library or sweep.LIBRARIES, args.models)
    if not todo:
        raise RfieldError(f"no model matches {args.models!r}")
    done = sweep.sweep(Path(args.out), todo, args.workers, args.verify, args.timeout,
                       args.ray, progress=sweep.progress_printer(), retry=args.retry_failed,
                       device=args.device)
    failed = sum("error" in m for m in done.values())
    sys.stdout.write(f"{len(done)} models in {args.out} ({failed} failed)\n")
    if args.pack:
        atlas.save(atlas.load(Path(args.out)), Path(args.pack))
    return 0
