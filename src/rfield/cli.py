"""The ``rfield`` command. The library raises; only this module prints and exits.

Exit codes: 0 fine, 1 a check failed (verify), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from .errors import RfieldError

TARGETS = """\
TARGET is one of:
  example:NAME         a built-in example (seed1, seed2, vgg16, resnet18, inception,
                       aspp, unet, fpn, wavenet, video3d)
  spec.json, spec.yaml a layer spec file: {"input": [224, 224], "layers": [...]}
  "conv(7,s=2,p=3); maxpool(3,s=2,p=1); conv(3,p=1)*2"
                       a one-line layer string (layers split by ';', name=op(...)
                       names a layer, in=a+b reads other layers, *N repeats)
  torchvision:NAME     a torchvision model, built with weights=None
  timm:NAME            a timm model (pretrained=False)
  file.py:factory, package.module:factory
                       a callable returning a torch.nn.Module (--kwargs passes JSON)
  model.onnx           an ONNX file (no weights are read)
"""


def _op_help() -> str:
    from .spec.registry import OPS

    lines, cur = ["ops in specs (parameters):"], ""
    for name in sorted(OPS):
        params = OPS[name][1]
        item = f"{name}({', '.join(params)})" if params else name
        if len(cur) + len(item) + 2 > 76:
            lines.append("  " + cur.rstrip(", "))
            cur = ""
        cur += item + ", "
    lines.append("  " + cur.rstrip(", "))
    lines.append("  aliases: k=kernel s=stride p=padding d=dilation; padding may be a number,")
    lines.append("  per axis, [[before, after], ...], 'same', 'valid' or 'causal'.")
    return "\n".join(lines)


def _ints(text: str, what: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise RfieldError(f"{what} must be whole numbers like 224,224; got {text!r}") from None
    if not values:
        raise RfieldError(f"{what} is empty")
    return values


def _region(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:(?:\.\.|:|-)\s*(\d+))?\s*", part)
        if not m:
            raise RfieldError(f"--seeing takes lo..hi per axis, like 10..20,30..40; got {text!r}")
        lo = int(m[1])
        out.append((lo, int(m[2]) if m[2] else lo))
    return out


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="what to analyse (see rfield --help)")
    p.add_argument("--input", metavar="SIZE",
                   help="spatial input size, e.g. 224,224 or 16000 (default: the spec's)")
    p.add_argument("--channels", type=int, help="input channels of a model (default: read "
                   "from its first layer)")
    p.add_argument("--kwargs", metavar="JSON", help="arguments for a model factory, as JSON")
    p.add_argument("--strict", action="store_true",
                   help="fail on operators rfield does not know instead of warning")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfield", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Exact receptive fields of convolutional networks.",
        epilog=TARGETS + "\n" + _op_help())
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rfield {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    an = sub.add_parser("analyze", help="per-layer receptive fields and the box of one unit",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=TARGETS + "\n" + _op_help())
    _add_target_options(an)
    an.add_argument("--node", help="the layer to ask about (default: the last)")
    an.add_argument("--unit", help="the unit, e.g. 28,28 (default: the centre)")
    an.add_argument("--span", type=int, metavar="N",
                    help="the field of N consecutive units from --unit on every axis")
    an.add_argument("--seeing", metavar="LO..HI,...",
                    help="which units of --node see this input region")
    an.add_argument("--depth", type=int, metavar="N",
                    help="models: one row per module output down to depth N (layer4 is "
                    "depth 1), like torchinfo")
    an.add_argument("--inside", action="store_true",
                    help="which units of --node read no padding at any layer")
    fmt = an.add_mutually_exclusive_group()
    for name in ("json", "csv", "markdown"):
        fmt.add_argument(f"--{name}", dest="format", action="store_const", const=name,
                         help=f"print {name.upper() if name != 'markdown' else 'Markdown'}")
    an.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    an.add_argument("--plot", metavar="FILE.png",
                    help="draw rf and jump growth per layer (and, with --boxes, fields over "
                    "an image)")
    an.add_argument("--boxes", metavar="FILE.png",
                    help="draw the fields of the chosen unit and the corners over an image")
    an.add_argument("--image", metavar="PICTURE.png",
                    help="the image for --boxes (default: a built-in checkerboard)")
    ve = sub.add_parser("verify", help="check the analysis against back-propagation",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Measure the field of chosen layers by back-propagation "
                        "through the real network (positive weights, no nonlinearities, max "
                        "pooling as average pooling, float64) and compare it with the "
                        "analysis. Exit code 1 when they differ.", epilog=TARGETS)
    _add_target_options(ve)
    ve.add_argument("--node", action="append",
                    help="a layer to check (repeatable; default: each stage output and the "
                    "last spatial layer)")
    er = sub.add_parser("erf", help="the effective receptive field (Luo et al., 2016)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TARGETS)
    _add_target_options(er)
    er.add_argument("--node", help="the layer (default: the last spatial layer)")
    er.add_argument("--samples", type=int, default=16,
                    help="Gaussian-noise inputs to average over (default 16)")
    er.add_argument("--images", metavar="DIR", help="average over the images in DIR instead")
    er.add_argument("--weights", metavar="FILE",
                    help="a state_dict file (loaded with torch.load(weights_only=True))")
    er.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    er.add_argument("--seed", type=int, default=0)
    er.add_argument("--plot", metavar="FILE.png", help="draw the heat map with the "
                    "theoretical field over it")
    er.add_argument("--json", action="store_true", help="print the figures as JSON")
    rp = sub.add_parser("report", help="one self-contained HTML report",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TARGETS)
    _add_target_options(rp)
    rp.add_argument("-o", "--output", metavar="FILE.html", required=True)
    rp.add_argument("--image", metavar="FILE.png", help="draw fields over this PNG "
                    "(default: a built-in checkerboard)")
    sub.add_parser("examples", help="list the built-in example networks")
    return parser


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
    return opts


def _write(text: str, path: str | None) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise RfieldError(f"cannot write {path}: {exc.strerror}") from None


def cmd_analyze(args) -> int:
    from .api import analyze
    from .core.query import resolve_node
    from .report import formats

    size = _ints(args.input, "--input") if args.input else None
    a = analyze(args.target, size, **_options(args))
    node = resolve_node(a.graph, args.node)
    unit = _ints(args.unit, "--unit") if args.unit else None
    if args.span is not None:
        from .core.query import resolve_unit

        first = resolve_unit(a.graph, node, unit)
        box = a.span(node, first, args.span)
    else:
        box = a.box(node, unit)
    fmt = args.format or "table"
    if args.depth is not None and args.depth < 1:
        raise RfieldError("--depth must be at least 1")
    if fmt in ("table", "markdown"):
        text = formats.RENDERERS[fmt](a, box, depth=args.depth)
    else:
        text = formats.RENDERERS[fmt](a, box)
    extra = {}
    if args.seeing:
        extra["units_seeing"] = a.units_seeing(_region(args.seeing), node)
    if args.inside:
        extra["units_inside"] = a.units_inside(node)
    if extra and fmt == "json":
        data = json.loads(text)
        for k, v in extra.items():
            data[k] = [[list(r) for r in runs] for runs in v]
        text = json.dumps(data, indent=2) + "\n"
    elif extra:
        lines = []
        for k, v in extra.items():
            what = "see the region" if k == "units_seeing" else "read no padding"
            runs = " x ".join("[" + ", ".join(f"{a_}..{b_}" for a_, b_ in axis) + "]"
                              if axis else "[none]" for axis in v)
            lines.append(f"units of {node} that {what}: {runs}")
        text += "\n".join(lines) + "\n"
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
    from .empirical.erf import effective_rf
    from .empirical.verify import Target, default_nodes
    from .report.formats import number

    if args.samples < 1:
        raise RfieldError("--samples must be at least 1")
    size = _ints(args.input, "--input") if args.input else None
    t = Target(args.target, size, _options(args))
    a = t.analysis(None)
    from .core.query import resolve_node

    node = resolve_node(a.graph, args.node) if args.node else (
        default_nodes(a, limit=1) or [a.graph.last()])[-1]
    net, channels, paths = t.runnable(a.graph)
    module = paths.get(node)
    if module is None:
        raise RfieldError(f"layer {node!r} is not the output of a module; name a module "
                          "with --node")
    f = a.fields[node]
    e = effective_rf(net, (1, channels) + tuple(a.graph.input_size), module,
                     samples=args.samples, images=args.images, weights=args.weights,
                     device=args.device, seed=args.seed, progress=sys.stderr.isatty(),
                     rf=f.local_rf if f.is_global else f.rf, node=node)
    box = a.box(node).ranges
    if args.json:
        data = {"node": node, "samples": e.samples, "input_size": list(a.graph.input_size),
                "area_ratio": {f"{int(k * 100)}": v for k, v in e.area_ratio.items()},
                "std": list(e.std), "rf": None if e.rf is None else list(e.rf),
                "box": [list(r) for r in box], "global": f.is_global,
                "jump": None if f.jump is None else [number(j) for j in f.jump]}
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        sys.stdout.write(e.summary())
    if args.plot:
        from .report.plots import plot_erf

        plot_erf(e, args.plot, box)
    return 0


def cmd_report(args) -> int:
    from .api import analyze
    from .report.html import render

    size = _ints(args.input, "--input") if args.input else None
    a = analyze(args.target, size, **_options(args))
    image = None
    if args.image:
        try:
            with open(args.image, "rb") as fh:
                image = fh.read()
        except OSError as exc:
            raise RfieldError(f"{args.image}: cannot be read ({exc.strerror})") from None
        if not image.startswith(b"\x89PNG"):
            raise RfieldError(f"{args.image}: not a PNG image")
    _write(render(a, str(args.target), image), args.output)
    return 0


def cmd_examples(args) -> int:
    from .spec.parse import example_names, example_path

    for name in example_names():
        desc = json.loads(example_path(name).read_text()).get("description", "")
        sys.stdout.write(f"example:{name:<10} {desc}\n")
    return 0


def cmd_verify(args) -> int:
    from .empirical.verify import render, verify

    size = _ints(args.input, "--input") if args.input else None
    checks = verify(args.target, size, args.node, **_options(args))
    sys.stdout.write(render(checks))
    return 0 if all(c.ok for c in checks) else 1


# library messages name Python arguments; the command names its flags
_FLAGS = [(re.compile(r"input_size=\(([^)]*)\)"), lambda m: "--input " + m[1].replace(", ", ",")),
          (re.compile(r"input_size="), lambda m: "--input"),
          (re.compile(r"strict=True"), lambda m: "--strict"),
          (re.compile(r"\b(channels|node|kwargs)="), lambda m: f"--{m[1]}")]


def as_flags(message: str) -> str:
    """A library message in the command's words: ``input_size=(224, 224)`` is
    ``--input 224,224``."""
    for pattern, repl in _FLAGS:
        message = pattern.sub(repl, message)
    return message


COMMANDS = {"analyze": cmd_analyze, "verify": cmd_verify, "erf": cmd_erf,
            "report": cmd_report, "examples": cmd_examples}


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
