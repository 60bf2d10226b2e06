"""The ``rfield`` command's arguments and help texts."""

from __future__ import annotations

import argparse
import re

from .errors import RfieldError
from .report.oplist import frontends, spec_help
from .zoo.atlas import LIBRARIES

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
  hf:TYPE              a Hugging Face transformers model built from its config
  keras:NAME           a keras.applications model (weights=None), e.g. keras:ResNet50
  file.py:factory, package.module:factory
                       a callable returning a torch.nn.Module, a keras.Model, or a
                       JAX/Flax function of an image (--kwargs passes JSON)
  model.onnx           an ONNX file (no weights are read)
  model.keras          a Keras model file (loaded with safe_mode; never compiled)
"""
#: verify and erf run the network: an ONNX file has no runnable weights here
RUNNABLE = TARGETS.replace(
    "  model.onnx           an ONNX file (no weights are read)\n", "")


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="what to analyse (see rfield --help)")
    p.add_argument("--input", metavar="SIZE",
                   help="spatial input size, e.g. 224,224 or 16000 (default: the spec's, the "
                   "ONNX file's or Keras model's, or a zoo model's native size)")
    p.add_argument("--channels", type=int, help="input channels of a model (default: read "
                   "from its first layer; 0: no channel dim, as a waveform model's "
                   "(batch, time) input)")
    p.add_argument("--kwargs", metavar="JSON", help="arguments for a model factory, as JSON")
    p.add_argument("--layout", choices=("nchw", "nhwc"),
                   help="ONNX: the input's layout, where the graph does not tell it")
    p.add_argument("--input-name", metavar="NAME",
                   help="ONNX, Keras: the image input, where the model has several")
    p.add_argument("--inputs", type=int, metavar="N",
                   help="PyTorch: the model takes N images (RAFT's pair, a stereo "
                   "network); the one image is passed to each, and fields are over its "
                   "positions (what any input contributes)")
    p.add_argument("--strict", action="store_true",
                   help="fail on operators rfield does not know instead of warning")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfield", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Exact receptive fields of convolutional networks.",
        epilog=TARGETS + "\n" + spec_help())
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rfield {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    an = sub.add_parser("analyze", help="per-layer receptive fields and the box of one unit",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=TARGETS + "\n" + spec_help())
    _add_target_options(an)
    an.add_argument("--node", help="the layer to ask about (default: the last)")
    an.add_argument("--unit", help="the unit, e.g. 28,28 (default: the centre)")
    an.add_argument("--span", type=int, metavar="N",
                    help="the field of N consecutive units from --unit on every axis")
    an.add_argument("--seeing", metavar="LO..HI,...",
                    help="which units of --node see this input region")
    an.add_argument("--depth", metavar="N",
                    help="models: one row per module output down to depth N (layer4 is "
                    "depth 1), like torchinfo; 'all' for every node (default for a model's "
                    "table: the deepest level that fits in 40 rows; JSON and CSV: all)")
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
                        "analysis. Exit code 1 when they differ.", epilog=RUNNABLE)
    _add_target_options(ve)
    ve.add_argument("--node", action="append",
                    help="a layer to check (repeatable; default: each stage output and the "
                    "last spatial layer)")
    ve.add_argument("--device", default="cpu",
                    help="cpu (default) or cuda: where a PyTorch model is measured")
    er = sub.add_parser("erf", help="the effective receptive field (Luo et al., 2016)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=RUNNABLE)
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
    rp.add_argument("--image", metavar="PICTURE", help="draw fields over this PNG, JPEG, "
                    "GIF or WebP picture "
                    "(default: a built-in checkerboard)")
    sub.add_parser("examples", help="list the built-in example networks")
    ops = sub.add_parser("ops", help="the operators each front-end reads")
    ops.add_argument("frontend", nargs="*", metavar="FRONTEND",
                     help=f"{', '.join(frontends())} (default: all)")
    _add_zoo(sub)
    _add_design(sub)
    return parser


ZOO_HELP = """\
examples:
  rfield zoo resnet50                     every stage of a model (a glob works too)
  rfield zoo --family convnext            a family's models
  rfield zoo --rf-min 400 --stride 16     stages that see 400 px at stride 16
  rfield zoo --rf-min 400 --local         global stages by their local field
  rfield zoo --html atlas.html            the atlas as a page (search, sort, draw)
  rfield zoo build --out my.jsonl         run the sweep (resumable; --ray ADDRESS)
"""


def _add_zoo(sub) -> None:
    zoo = sub.add_parser("zoo", help="the atlas of zoo models (torchvision, timm, Hugging Face, "
                         "smp, ultralytics, keras.applications)",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog=ZOO_HELP)
    zoo.add_argument("name", nargs="?", help="a model (or a glob); 'build' runs the sweep")
    zoo.add_argument("--family", help="a family (a timm module, torchvision family, hf type, "
                     "smp architecture...)")
    zoo.add_argument("--rf-min", type=int, metavar="N", help="a field of at least N")
    zoo.add_argument("--stride", type=int, metavar="S", help="a jump of S")
    zoo.add_argument("--input", metavar="SIZE",
                     help="which stages are unproductive at this input size, from the "
                     "atlas's fields (rfa-toolbox's rule)")
    zoo.add_argument("--local", action="store_true",
                     help="judge a global stage by its local field")
    zoo.add_argument("--atlas", metavar="FILE", help="another atlas (a sweep's output)")
    for name in ("json", "csv", "markdown"):
        zoo.add_argument(f"--{name}", dest="format", action="store_const", const=name)
    zoo.add_argument("-o", "--output", metavar="FILE", help="write to FILE")
    zoo.add_argument("--html", metavar="FILE",
                     help="write the atlas (or the models picked) as one page to browse")
    build = zoo.add_argument_group("build (rfield zoo build)")
    build.add_argument("--out", metavar="FILE.jsonl", default="atlas.jsonl",
                       help="the sweep's output, resumed if it exists (default atlas.jsonl)")
    build.add_argument("--models", default="*", metavar="GLOB", help="models to sweep")
    zoo.add_argument("--library", action="append", choices=LIBRARIES,
                     help="one library's models (repeatable; default: every one): for "
                     "the answers and for build")
    build.add_argument("--workers", type=int, default=2)
    build.add_argument("--device", default="cpu",
                       help="cpu (default) or cuda: where the stages are measured")
    build.add_argument("--no-verify", dest="verify", action="store_false",
                       help="skip back-propagation of the final stage")
    build.add_argument("--timeout", type=int, default=600, metavar="S",
                       help="seconds a model may take (default 600)")
    build.add_argument("--retry-failed", action="store_true",
                       help="run again the models whose line is a failure")
    build.add_argument("--ray", metavar="ADDRESS", help="run on this Ray cluster")
    build.add_argument("--pack", metavar="FILE.jsonl.gz",
                       help="then write the sorted, compressed atlas here")


DESIGN_HELP = """\
examples:
  rfield design --rf 1024 --kernel 2 --causal --dims 1   WaveNet: dilations 1, 2, ..., 512
  rfield design --rf 16000 --kernel 3 --dims 1 --max-dilation 512
                                                         one second of 16 kHz audio
  rfield design --rf 200 --jump 16                       a backbone: field 200 at stride 16
Every design is checked by the analysis before it is printed: a field of at least
--rf on every axis, the jump asked for, and no holes (every position inside the
field is read); the first line is a layer string 'rfield analyze' reads back.
"""


def _add_design(sub) -> None:
    de = sub.add_parser("design", help="the layers that reach a target receptive field",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=DESIGN_HELP)
    de.add_argument("--rf", type=int, required=True, metavar="N",
                    help="the field to reach (at least N positions per axis)")
    de.add_argument("--jump", type=int, default=1, metavar="J",
                    help="the effective stride (default 1: a dilated stack)")
    de.add_argument("--dims", type=int, default=2, help="spatial axes: 1, 2 or 3 (default 2)")
    de.add_argument("--kernel", type=int, default=3, metavar="K", help="kernel size (default 3)")
    de.add_argument("--causal", action="store_true",
                    help="causal padding (each output sees only the past), else centred")
    de.add_argument("--max-dilation", type=int, metavar="D", help="the largest dilation")
    de.add_argument("--max-layers", type=int, metavar="L", help="the most layers allowed")
    for name in ("json", "markdown"):
        de.add_argument(f"--{name}", dest="format", action="store_const", const=name)
    de.add_argument("-o", "--output", metavar="FILE", help="write to FILE")


def whole_numbers(text: str, what: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise RfieldError(f"{what} must be whole numbers like 224,224; got {text!r}") from None
    if not values:
        raise RfieldError(f"{what} is empty")
    return values


def depth(text: str | None) -> int | None:
    """--depth: a level from 1, or ``all`` (0: every node); None where not given."""
    if text is None:
        return None
    word = text.strip().lower()
    if word == "all":
        return 0
    if not word.isdigit() or int(word) < 1:
        raise RfieldError(f"--depth must be a level from 1, or all; got {text!r}")
    return int(word)


def input_size(text: str) -> tuple[int, ...]:
    """--input: positive whole numbers, none left out (224, is not a 1-D size)."""
    text = text.strip()
    if re.search(r"(^|[,x])\s*($|[,x])", text):
        raise RfieldError(f"--input {text}: a size is missing between the commas (give "
                          "every axis: 224,224)")
    values = whole_numbers(text, "--input")
    if any(v < 1 for v in values):
        raise RfieldError(f"--input {text}: sizes must be at least 1")
    return values
