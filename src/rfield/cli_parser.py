"""The ``rfield`` command's arguments and help texts."""

from __future__ import annotations

import argparse

from .report.oplist import spec_help

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
                       a callable returning a torch.nn.Module or a keras.Model
                       (--kwargs passes JSON)
  model.onnx           an ONNX file (no weights are read)
  model.keras          a Keras model file (loaded with safe_mode; never compiled)
"""


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="what to analyse (see rfield --help)")
    p.add_argument("--input", metavar="SIZE",
                   help="spatial input size, e.g. 224,224 or 16000 (default: the spec's, the "
                   "ONNX file's or Keras model's, or a zoo model's native size)")
    p.add_argument("--channels", type=int, help="input channels of a model (default: read "
                   "from its first layer)")
    p.add_argument("--kwargs", metavar="JSON", help="arguments for a model factory, as JSON")
    p.add_argument("--layout", choices=("nchw", "nhwc"),
                   help="ONNX: the input's layout, where the graph does not tell it")
    p.add_argument("--input-name", metavar="NAME",
                   help="ONNX, Keras: the image input, where the model has several")
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
    ops = sub.add_parser("ops", help="the operators each front-end reads")
    ops.add_argument("frontend", nargs="*", metavar="FRONTEND",
                     help="spec, torch or onnx (default: all)")
    return parser
