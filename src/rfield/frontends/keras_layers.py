"""The Keras 3 layer table: layer class name -> handler.

A handler takes the reader, the layer (or a keras.ops operation recorded in a
functional graph), the input tensors and the output tensors (each a kernel
:class:`T` whose shape Keras computed at the analysed size) and makes one call of
the shared kernel, reading the layer's config: kernel sizes, strides, padding
words, ``data_format``. Classes not in :data:`LAYERS` or :data:`OPS` are unknown
(taken as reading the whole input, reported, an error with ``strict``); a
subclass that overrides ``call`` is unknown too, whatever it derives from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import ops as O
from .kernel import T, Unknown

if TYPE_CHECKING:
    from .keras_graph import KerasReader

Handler = Callable[["KerasReader", Any, list[T], list[T]], None]


def dims(r: KerasReader, layer: Any, nsp: int) -> list[int] | None:
    """Tensor dims of the spatial axes under the layer's data_format (None: trailing)."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return None
    return list(range(1, 1 + nsp))


def _word(padding: Any) -> Any:
    return padding.lower() if isinstance(padding, str) else padding


# --------------------------------------------------------------------------- windows

def conv(r: KerasReader, layer, ins, outs) -> None:
    """Conv, DepthwiseConv, SeparableConv 1-3D: TensorFlow's SAME pads the extra
    position after; 'causal' pads (k - 1) * d before."""
    k = list(layer.kernel_size)
    r.kernel.window("conv", ins[0], outs[0], k, list(layer.strides), _word(layer.padding),
                    list(layer.dilation_rate), dims=dims(r, layer, len(k)))


def conv_transpose(r: KerasReader, layer, ins, outs) -> None:
    """Conv*Transpose: Keras' own padding rule (the JAX backend's, which the others
    match), as (before, after) trims of the full transposed output."""
    k, s = list(layer.kernel_size), list(layer.strides)
    d = list(layer.dilation_rate)
    op = layer.output_padding
    op = [None] * len(k) if op is None else list(op)
    pads = []
    for ki, si, di, opi in zip(k, s, d, op):
        left, right = _transpose_pads(ki, si, di, _word(layer.padding), opi)
        span = (ki - 1) * di
        if left > span or right > span:
            raise Unknown(f"{type(layer).__name__} padding beyond its kernel")
        pads.append([span - left, span - right])
    r.kernel.window("conv", ins[0], outs[0], k, s, pads, d, output_padding=[0] * len(k),
                    dims=dims(r, layer, len(k)))


def _transpose_pads(k: int, s: int, d: int, padding: str, out_pad: int | None):
    """Padding of the stride-dilated input (keras' backend_utils, JAX's convention)."""
    k = (k - 1) * d + 1
    if padding == "valid":
        out_pad = max(k, s) - k if out_pad is None else out_pad
        return k - 1, k - 1 + out_pad
    total = s + k - 2 if out_pad is None else k + k % 2 - 2 + out_pad
    left = min(total // 2 + total % 2, k - 1)
    return left, total - left


def pool(kind: str) -> Handler:
    def handler(r: KerasReader, layer, ins, outs) -> None:
        k = list(layer.pool_size)
        s = list(layer.strides) if layer.strides is not None else k
        r.kernel.window(kind, ins[0], outs[0], k, s, _word(layer.padding),
                        dims=dims(r, layer, len(k)))
    return handler


def global_pool(r: KerasReader, layer, ins, outs) -> None:
    nsp = r.kernel.state.nd
    sp = dims(r, layer, nsp) or list(range(2, 2 + nsp))
    r.kernel.reduce("globalpool", ins[0], outs[0], sp, keep=bool(layer.keepdims))


def flatten(r: KerasReader, layer, ins, outs) -> None:
    """Every feature is kept apart, but no position survives as an axis: what reads the
    flattened vector (a Dense) reads everything there, so it is global."""
    node, layout = r.kernel.state.get(ins[0])
    shape = ins[0].shape or (2,) * len(layout)
    if any(a is not None and shape[d] != 1 for d, a in enumerate(layout)):
        node = r.kernel.state.add("flatten", O.GlobalPool(), [node])
    r.kernel.state.bind(outs[0], node, (None,) * len(outs[0].shape or (1, 1)))


def padding(r: KerasReader, layer, ins, outs, sign: int = 1) -> None:
    """ZeroPadding and Cropping 1-3D: (before, after) per spatial dim."""
    amounts = layer.padding if sign > 0 else layer.cropping
    nsp = len(amounts) if isinstance(amounts[0], (list, tuple)) else 1
    if nsp == 1 and not isinstance(amounts[0], (list, tuple)):
        amounts = [amounts]
    sp = dims(r, layer, nsp) or list(range(2, 2 + nsp))
    pads = {d: (sign * int(a[0]), sign * int(a[1])) for d, a in zip(sp, amounts)}
    r.kernel.pad(ins[0], outs[0], pads, "constant")


def cropping(r: KerasReader, layer, ins, outs) -> None:
    padding(r, layer, ins, outs, sign=-1)


def upsampling(r: KerasReader, layer, ins, outs) -> None:
    """UpSampling 1-3D: nearest repeats each position; bilinear is a half-pixel resize."""
    size = layer.size if isinstance(layer.size, (list, tuple)) else [layer.size]
    mode = getattr(layer, "interpolation", "nearest")
    if mode not in ("nearest", "bilinear"):
        raise Unknown(f"{type(layer).__name__} with {mode} interpolation")
    _resample(r, layer, ins[0], outs[0], len(size), "nearest" if mode == "nearest"
              else "bilinear")


def resizing(r: KerasReader, layer, ins, outs) -> None:
    """Resizing: half-pixel sampling (nearest rounds half-pixel coordinates down, as
    TensorFlow and jax.image do); antialias, area and lanczos are not followed, nor a
    crop or pad to another aspect ratio."""
    modes = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}
    if layer.interpolation not in modes or getattr(layer, "antialias", False):
        what = "antialias" if getattr(layer, "antialias", False) else layer.interpolation
        raise Unknown(f"Resizing with {what}")
    n_in = r.kernel.state.sizes(ins[0].shape, r.kernel.state.layout(ins[0]))
    n_out = (layer.height, layer.width)
    ratio_change = n_in is not None and n_in[0] * n_out[1] != n_in[1] * n_out[0]
    if ratio_change and (layer.crop_to_aspect_ratio or
                         getattr(layer, "pad_to_aspect_ratio", False)):
        raise Unknown("Resizing to another aspect ratio with a crop or pad")
    _resample(r, layer, ins[0], outs[0], 2, modes[layer.interpolation])


def _resample(r: KerasReader, layer, x: T, out: T, nsp: int, mode: str) -> None:
    node, layout, _ = r.kernel.window_order(x, nsp, type(layer).__name__,
                                            dims(r, layer, nsp))
    size = r.kernel.state.sizes(out.shape, layout)
    if size is None:
        raise Unknown(f"{type(layer).__name__} to an unknown size")
    r.kernel.state.emit("upsample", O.Upsample(size=list(size), mode=mode), node, layout, out)


# --------------------------------------------------------------------------- merges

def merge(kind: str) -> Handler:
    def handler(r: KerasReader, layer, ins, outs) -> None:
        if len(ins) == 1:
            r.kernel.pointwise(kind, ins[0], outs) if ins[0].shape == outs[0].shape \
                else r.kernel.expand(ins[0], outs[0])
        else:
            r.kernel.merge(kind, ins, outs[0])
    return handler


def concatenate(r: KerasReader, layer, ins, outs) -> None:
    axis = getattr(layer, "axis", -1)
    r.kernel.concat("concat", ins, outs[0], int(axis))


# --------------------------------------------------------------------------- pointwise, shapes

def pointwise(kind: str) -> Handler:
    def handler(r: KerasReader, layer, ins, outs) -> None:
        r.kernel.pointwise(kind, ins[0], outs)
    return handler


def dense(r: KerasReader, layer, ins, outs) -> None:
    """Dense contracts the last dim: channels (pointwise) or, channels_first, a
    spatial axis (global)."""
    r.kernel.matmul("dense", ins[0], None, outs[0])


def _axes(axis: Any) -> list[int]:
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]


def normalization(kind: str) -> Handler:
    """Norms whose statistics run over ``axis`` (LayerNormalization over channels is
    pointwise; over a spatial axis it is global); GroupNormalization's statistics run
    over every position."""
    def handler(r: KerasReader, layer, ins, outs) -> None:
        rank = len(r.kernel.state.layout(ins[0]))
        if kind == "groupnorm":
            stats = list(range(1, rank))
        else:
            stats = [a % rank for a in _axes(layer.axis)]
        r.kernel.normalize(kind, ins[0], outs[0], stats)
    return handler


def softmax(r: KerasReader, layer, ins, outs) -> None:
    r.kernel.along("softmax", ins[0], outs[0], _axes(getattr(layer, "axis", -1)))


def reshape(r: KerasReader, layer, ins, outs) -> None:
    r.kernel.view(ins[0], outs[0])


def permute(r: KerasReader, layer, ins, outs) -> None:
    r.kernel.permute(ins[0], outs[0], [0] + [int(d) for d in layer.dims])


def attention(r: KerasReader, layer, ins, outs) -> None:
    r.kernel.mix("attention", ins, outs[0])


def _custom_scale(r: KerasReader, layer, ins, outs) -> None:
    """InceptionResNetV2's CustomScaleLayer: inputs[0] + inputs[1] * scale."""
    merge("add")(r, layer, ins, outs)


# --------------------------------------------------------------------------- the table

POINTWISE = (
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU",
    "Rescaling", "Normalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "ActivityRegularization", "Identity", "LayerScale", "StochasticDepth")

LAYERS: dict[str, Handler] = {
    **{name: pointwise(name.lower()) for name in POINTWISE},
    **{f"Conv{n}D": conv for n in (1, 2, 3)},
    **{f"DepthwiseConv{n}D": conv for n in (1, 2)},
    **{f"SeparableConv{n}D": conv for n in (1, 2)},
    **{f"Conv{n}DTranspose": conv_transpose for n in (1, 2, 3)},
    **{f"MaxPooling{n}D": pool("maxpool") for n in (1, 2, 3)},
    **{f"AveragePooling{n}D": pool("avgpool") for n in (1, 2, 3)},
    **{f"Global{k}Pooling{n}D": global_pool for k in ("Average", "Max") for n in (1, 2, 3)},
    **{f"ZeroPadding{n}D": padding for n in (1, 2, 3)},
    **{f"Cropping{n}D": cropping for n in (1, 2, 3)},
    **{f"UpSampling{n}D": upsampling for n in (1, 2, 3)},
    "Flatten": flatten, "Resizing": resizing, "Dense": dense, "Reshape": reshape,
    "Permute": permute, "Concatenate": concatenate, "Softmax": softmax,
    "LayerNormalization": normalization("layernorm"),
    "GroupNormalization": normalization("groupnorm"),
    "UnitNormalization": normalization("unitnorm"),
    "MultiHeadAttention": attention, "Attention": attention,
    "AdditiveAttention": attention, "GroupedQueryAttention": attention,
    **{name: merge(name.lower()) for name in ("Add", "Subtract", "Multiply", "Average",
                                              "Maximum", "Minimum")},
    "CustomScaleLayer": _custom_scale,
}

# keras.ops calls recorded in a functional graph (``x + y``, ``x * gate``)
OPS_ELEMENTWISE = (
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power",
    "Abs", "Absolute", "Negative", "Exp", "Log", "Sqrt", "Square", "Reciprocal", "Tanh",
    "Sigmoid", "Relu", "Relu6", "Gelu", "Silu", "Swish", "HardSigmoid", "HardSwish",
    "HardSilu", "Softplus", "LeakyRelu", "Elu", "Selu", "Clip", "Cast", "Where")


def _ops_merge(r: KerasReader, op, ins, outs) -> None:
    merge(type(op).__name__.lower())(r, op, ins, outs)


def _ops_reduce(r: KerasReader, op, ins, outs) -> None:
    axis = getattr(op, "axis", None)
    r.kernel.reduce(type(op).__name__.lower(), ins[0], outs[0],
                    None if axis is None else _axes(axis), bool(getattr(op, "keepdims", False)))


def _ops_transpose(r: KerasReader, op, ins, outs) -> None:
    axes = op.axes if op.axes is not None else list(range(len(ins[0].shape or ())))[::-1]
    r.kernel.permute(ins[0], outs[0], list(axes))


OPS: dict[str, Handler] = {
    **{name: _ops_merge for name in OPS_ELEMENTWISE},
    "Mean": _ops_reduce, "Sum": _ops_reduce, "Max": _ops_reduce, "Min": _ops_reduce,
    "Transpose": _ops_transpose, "Reshape": reshape,
    "Softmax": softmax,
}

OPS_MODULES = ("keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.math",
               "keras.src.ops.core")


def handler_for(layer: Any) -> tuple[str, Handler | None]:
    """The handler of a layer or an op by the first known Keras class of its type,
    provided the type does not override that class's ``call``."""
    for cls in type(layer).__mro__:
        module = cls.__module__
        if not module.startswith("keras."):
            continue
        table = OPS if module in OPS_MODULES else LAYERS
        found = table.get(cls.__name__)
        if found is not None:
            if getattr(type(layer), "call", None) is not getattr(cls, "call", None):
                return type(layer).__name__, None
            return cls.__name__, found
    return type(layer).__name__, None
