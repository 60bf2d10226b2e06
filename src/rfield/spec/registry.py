"""Op names of the spec format and the parameters each one takes.

One table, read by the spec parser, the compact string form and ``--help``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core import ops as O

# name -> (constructor, parameters it takes, the positional parameter in compact strings)
OpEntry = tuple[Callable[..., O.Op], tuple[str, ...], str | None]

_WINDOW = ("kernel", "stride", "padding", "dilation", "ceil_mode")
_POINTWISE = ("identity", "relu", "relu6", "leakyrelu", "gelu", "silu", "swish", "sigmoid",
              "tanh", "hardswish", "hardsigmoid", "mish", "elu", "selu", "softplus",
              "batchnorm", "bn", "layernorm", "groupnorm", "instancenorm", "norm", "dropout",
              "scale", "bias")
_MERGES = ("add", "mul", "concat", "sub", "max", "min", "mean", "sum")

OPS: dict[str, OpEntry] = {
    "conv": (O.Conv, _WINDOW, "kernel"),
    "maxpool": (O.MaxPool, _WINDOW, "kernel"),
    "avgpool": (O.AvgPool, _WINDOW, "kernel"),
    "convtranspose": (O.ConvTranspose,
                      ("kernel", "stride", "padding", "output_padding", "dilation"), "kernel"),
    "upsample": (O.Upsample, ("scale", "size", "mode", "align_corners"), "scale"),
    "adaptivepool": (O.AdaptivePool, ("size",), "size"),
    "global": (O.GlobalPool, (), None),
    "attention": (O.GlobalMix, (), None),
    "crop": (O.Crop, ("crop",), "crop"),
    "slice": (O.Slice, ("start", "stop", "step"), "start"),
    "pad": (O.Pad, ("padding", "mode"), "padding"),
    "pixelshuffle": (O.PixelShuffle, ("factor",), "factor"),
    "pixelunshuffle": (O.PixelUnshuffle, ("factor",), "factor"),
}
for _name in _POINTWISE:
    OPS[_name] = (lambda _k=_name: O.Pointwise(_k), (), None)
for _name in _MERGES:
    OPS[_name] = (lambda _k=_name: O.Merge(_k), (), None)

ALIASES = {
    "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "convolution": "conv",
    "maxpool1d": "maxpool", "maxpool2d": "maxpool", "maxpool3d": "maxpool", "pool": "maxpool",
    "avgpool1d": "avgpool", "avgpool2d": "avgpool", "avgpool3d": "avgpool",
    "deconv": "convtranspose", "convtranspose1d": "convtranspose",
    "convtranspose2d": "convtranspose", "convtranspose3d": "convtranspose",
    "interpolate": "upsample", "resize": "upsample",
    "adaptiveavgpool": "adaptivepool", "adaptivemaxpool": "adaptivepool",
    "globalpool": "global", "gap": "global", "globalavgpool": "global",
    "globalmaxpool": "global", "flatten": "global", "linear": "global", "fc": "global",
    "dense": "global", "selfattention": "attention",
    "cat": "concat", "multiply": "mul", "plus": "add",
}

PARAM_ALIASES = {
    "k": "kernel", "kernel_size": "kernel", "s": "stride", "p": "padding", "pad": "padding",
    "d": "dilation", "scale_factor": "scale", "output_size": "size", "f": "factor",
    "upscale_factor": "factor", "downscale_factor": "factor", "ceil": "ceil_mode",
}


def canonical_op(name: str) -> str | None:
    key = name.lower().replace("_", "").replace("-", "")
    key = ALIASES.get(key, key)
    return key if key in OPS else None


def op_names() -> list[str]:
    return sorted(OPS)
