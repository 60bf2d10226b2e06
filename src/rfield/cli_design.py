"""``rfield design``: the layer string that reaches a target, with its table."""

from __future__ import annotations

import json
from collections.abc import Callable

from .design import Target, describe, design


def run(args, write: Callable[[str, str | None], None]) -> int:
    from .report.formats import render, result_dict

    d = design(Target(args.rf, args.jump, args.dims, args.kernel, args.causal,
                      args.max_dilation, args.max_layers))
    a = d.analysis
    size = ",".join(str(n) for n in d.input_size)
    command = f'rfield analyze "{d.line}" --input {size}'
    if args.format == "json":
        data = {"line": d.line, "input_size": list(d.input_size), "layers": d.layers,
                "command": command, "analysis": result_dict(a, a.box(a.field().name))}
        write(json.dumps(data, indent=1) + "\n", args.output)
        return 0
    table = render(args.format or "table", a, a.box(a.field().name))
    write(f"{command}\n\n{table}{describe(d)}\n", args.output)
    return 0
