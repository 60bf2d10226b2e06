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
    fmt = {"json": atlas.json_text, "csv": atlas.csv_text, "markdown": atlas.markdown}
    write(fmt.get(args.format or "", atlas.text)(rows), args.output)
    note = atlas.version_note(lines)
    if note:
        sys.stderr.write(note + "\n")
    return 0


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
