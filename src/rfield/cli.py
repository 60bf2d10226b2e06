"""The ``rfield`` command: it parses, calls the library, renders, exits.

The library raises; only this module prints. Exit codes: 0 fine, 1 a check
failed (verify), 2 bad input or usage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

from .cli_parser import build_parser, depth, input_size, whole_numbers
from .errors import RfieldError
from .safeio import write_atomic

__all__ = ["as_flags", "build_parser", "main"]


def _terminal_width(args) -> int | None:
    """The terminal's width when the table goes to one; a file or a pipe gets whole names."""
    if args.output or not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((80, 24)).columns


def _region(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:(?:\.\.|:|-)\s*(\d+))?\s*", part)
        if not m:
            raise RfieldError(f"--seeing takes lo..hi per axis, like 10..20,30..40; got {text!r}")
        lo = int(m[1])
        out.append((lo, int(m[2]) if m[2] else lo))
    return out


def _options(args) -> dict:
    opts: dict = {}
    if getattr(args, "channels", None) is not None:
        opts["channels"] = args.channels
    if getattr(args, "kwargs", None):
        try:
            opts["kwargs"] = json.loads(args.kwargs)
        except json.JSONDecodeError as exc:
            raise RfieldError(f"--kwargs is not valid JSON: {exc.msg}") from None
        if not isinstance(opts["kwargs"], dict):
            raise RfieldError("--kwargs must be a JSON object, like '{\"num_classes\": 10}'")
    if getattr(args, "strict", False):
        opts["strict"] = True
    if getattr(args, "inputs", None) is not None:
        if args.inputs < 1:
            raise RfieldError("--inputs must be at least 1")
        opts["inputs"] = args.inputs
    for name in ("layout", "input_name"):
        if getattr(args, name, None) is not None:
            opts[name] = getattr(args, name)
    return opts


def _size(args) -> tuple[int, ...] | None:
    return input_size(args.input) if args.input else None


def _write(text: str, path: str | None) -> None:
    """To stdout, or to ``path`` whole or not at all."""
    if path is None:
        sys.stdout.write(text)
    else:
        write_atomic(path, text)


def cmd_analyze(args) -> int:
    from .api import analyze
    from .core.query import resolve_node, resolve_unit
    from .report.formats import fitting_depth, render

    level = depth(args.depth)
    a = analyze(args.target, _size(args), **_options(args))
    fmt = args.format or "table"
    if level is None and fmt in ("table", "markdown"):
        level = fitting_depth(a)
    node = resolve_node(a.graph, args.node)
    unit = whole_numbers(args.unit, "--unit") if args.unit else None
    if args.span is not None:
        box = a.span(node, resolve_unit(a.graph, node, unit), args.span)
    else:
        box = a.box(node, unit)
    queries = {}
    if args.seeing:
        queries["units_seeing"] = a.units_seeing(_region(args.seeing), node)
    if args.inside:
        queries["units_inside"] = a.units_inside(node)
    text = render(fmt, a, box, depth=level or None, queries=queries,
                  leading_to=node if args.node else None, width=_terminal_width(args))
    # pictures first: if one fails, nothing has been printed
    if args.plot:
        from .report.plots import plot_growth

        plot_growth(a, args.plot)
    if args.boxes:
        from .report.plots import load_picture, plot_boxes

        picture = load_picture(args.image, a.graph.input_size) if args.image else None
        corners = [(0,) * a.graph.ndim, tuple(n - 1 for n in a.graph.nodes[node].size)]
        plot_boxes(a, node, args.boxes, image=picture,
                   units=[tuple(u[0] for u in box.units)] + corners)
    _write(text, args.output)
    return 0


def cmd_erf(args) -> int:
    from .core.analysis import Analysis
    from .core.query import resolve_node
    from .empirical.verify import default_nodes
    from .frameworks import ErfAsk
    from .report.measured import erf_json, erf_text
    from .targets import runner

    if args.samples < 1:
        raise RfieldError("--samples must be at least 1")
    t = runner(args.target, _size(args), _options(args), init=True, command="erf",
               device=args.device)
    a = Analysis(t.graph)
    node = resolve_node(a.graph, args.node) if args.node else (
        default_nodes(a, limit=1) or [a.graph.last()])[-1]
    module = t.paths(a.graph).get(node)
    if module is None:
        raise RfieldError(f"layer {node!r} is not the output of a module; name a module "
                          "with --node")
    e = t.erf(a, node, module, ErfAsk(args.samples, args.seed, args.images, args.weights,
                                      args.device, sys.stderr.isatty()))
    box = a.box(node).ranges
    if args.plot:
        from .report.plots import plot_erf

        plot_erf(e, args.plot, box)
    sys.stdout.write(erf_json(e, a.fields[node], a.graph.input_size, box) if args.json
                     else erf_text(e))
    return 0


def cmd_report(args) -> int:
    from .api import analyze
    from .report.html import read_picture, render

    image = read_picture(args.image) if args.image else None
    a = analyze(args.target, _size(args), **_options(args))
    _write(render(a, str(args.target), image), args.output)
    return 0


def cmd_examples(args) -> int:
    from .spec.parse import example_names, example_path

    for name in example_names():
        desc = json.loads(example_path(name).read_text()).get("description", "")
        sys.stdout.write(f"example:{name:<10} {desc}\n")
    return 0


def cmd_ops(args) -> int:
    from .report.oplist import frontends, ops_text

    wrong = [f for f in args.frontend if f not in frontends()]
    if wrong:
        raise RfieldError(f"no front-end {wrong[0]!r}; choose from {', '.join(frontends())}")
    sys.stdout.write(ops_text(args.frontend))
    return 0


def cmd_verify(args) -> int:
    from .empirical.verify import verify
    from .report.measured import verify_table

    say = (lambda text: sys.stderr.write(f"verify: {text}\n")) if sys.stderr.isatty() \
        else None
    checks = verify(args.target, _size(args), args.node, device=args.device, say=say,
                    **_options(args))
    sys.stdout.write(verify_table(checks))
    return 0 if all(c.ok for c in checks) else 1


# library messages name Python arguments; the command names its flags
_FLAGS = [(re.compile(r"input_size=\(([^)]*)\)"), lambda m: "--input " + m[1].replace(", ", ",")),
          (re.compile(r"input_size="), lambda m: "--input"),
          (re.compile(r"strict=True"), lambda m: "--strict"),
          (re.compile(r"\bdepth=(\d+)"), lambda m: f"--depth {m[1]}"),
          (re.compile(r"\b(channels|node|kwargs|layout|input_name|inputs)='([^']*)'"),
           lambda m: f"--{m[1].replace('_', '-')} {m[2]}"),
          (re.compile(r"\b(channels|node|kwargs|layout|input_name|inputs)="),
           lambda m: f"--{m[1].replace('_', '-')} ")]


def as_flags(message: str) -> str:
    """A library message in the command's words: ``input_size=(224, 224)`` is
    ``--input 224,224``."""
    for pattern, repl in _FLAGS:
        message = pattern.sub(repl, message)
    return message


def cmd_zoo(args) -> int:
    from .cli_zoo import run

    return run(args, _write)


def cmd_design(args) -> int:
    from .cli_design import run

    return run(args, _write)


COMMANDS = {"design": cmd_design, "analyze": cmd_analyze, "verify": cmd_verify, "erf": cmd_erf,
            "report": cmd_report, "examples": cmd_examples, "ops": cmd_ops, "zoo": cmd_zoo}


def main(argv: list[str] | None = None) -> int:
    # XLA (under JAX and TensorFlow) logs its CPU set-up to stderr unless told not to
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except RfieldError as exc:
        sys.stderr.write(f"rfield: error: {as_flags(str(exc))}\n")
        return 2
    except RecursionError:
        sys.stderr.write("rfield: error: the network is nested too deeply to read\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("rfield: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line all the same, the traceback on request
        if os.environ.get("RFIELD_DEBUG") == "1":
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        sys.stderr.write(f"rfield: internal error: {type(exc).__name__}: {first[:200]} "
                         "(please report it; RFIELD_DEBUG=1 shows the traceback)\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
