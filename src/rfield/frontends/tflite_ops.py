"""The TensorFlow Lite operator table: builtin operator name -> handler.

A handler takes the reader and the operator (its tensors, its option fields by schema
name) and makes kernel calls; shapes are the file's (NHWC), constants its buffers' or
folded from them (:mod:`.tflite_fold`). Operators not in :data:`HANDLERS` are unknown:
taken to read the whole input there, and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..core import ops as O
from .kernel import T, Unknown
from .tflite_flat import Operator

if TYPE_CHECKING:
    from .tflite_graph import TfliteReader

#: Padding enum of the option tables
SAME, VALID = 0, 1

# Each takes (reader, operator) and makes kernel calls.

Handler = Callable[["TfliteReader", Operator], None]


def _io(r: TfliteReader, op: Operator, data: int = 0) -> tuple[T, T]:
    return r.t(op.inputs[data]), r.t(op.outputs[0])


def _shape(x: T) -> tuple[int, ...]:
    """A tensor's shape (where neither the file nor rfield knows it, the operator is
    not followed)."""
    if x.shape is None:
        raise Unknown("a tensor whose shape is computed at run time")
    return tuple(x.shape)


def _padding(op: Operator) -> str:
    word = {SAME: "same", VALID: "valid"}.get(op.option("padding"))
    if word is None:
        raise Unknown(f"{op.code} with padding {op.option('padding')}")
    return word


def _spatial(x: T) -> list[int]:
    return list(range(1, len(_shape(x)) - 1))


def _hw(op: Operator, before: str, after: str = "") -> list[int]:
    """An option per spatial dim in tensor order: height, width."""
    return [op.option(before + a + after) for a in ("h", "w")]


def conv(r: TfliteReader, op: Operator) -> None:
    """CONV_2D, DEPTHWISE_CONV_2D: weights (O or 1, H, W, I); TF's SAME pads the extra
    position after."""
    x, out = _io(r, op)
    k = list(r.m.tensors[op.inputs[1]].shape[1:3])
    r.kernel.window("conv", x, out, k, _hw(op, "stride_"), _padding(op),
                    _hw(op, "dilation_", "_factor"), dims=_spatial(x))


def transpose_conv(r: TfliteReader, op: Operator) -> None:
    """TRANSPOSE_CONV (output shape, weights (O, H, W, I), input): output o reads input
    i where o = i * stride - pad + tap, pad from TFLite's padding rule on the output
    size; the full transposed output is cut to the recorded output size."""
    x, out = _io(r, op, data=2)
    k = list(r.m.tensors[op.inputs[1]].shape[1:3])
    strides = _hw(op, "stride_")
    word = _padding(op)
    pads, extra = [], []
    for n_in, n_out, kk, s in zip(_shape(x)[1:3], _shape(out)[1:3], k, strides):
        conv_out = -(-n_out // s) if word == "same" else (n_out - kk + s) // s
        before = max((conv_out - 1) * s + kk - n_out, 0) // 2 if word == "same" else 0
        after = (n_in - 1) * s + kk - before - n_out
        pads.append([before, max(after, 0)])
        extra.append(max(-after, 0))
    r.kernel.window("convtranspose", x, out, k, strides, pads, 1, output_padding=extra,
                    dims=[1, 2])


def pool(kind: str) -> Handler:
    def handler(r: TfliteReader, op: Operator) -> None:
        x, out = _io(r, op)
        r.kernel.window(kind, x, out, [op.option("filter_height"), op.option("filter_width")],
                        _hw(op, "stride_"), _padding(op), dims=[1, 2])
    return handler


def pad(r: TfliteReader, op: Operator) -> None:
    """PAD, PADV2 (a constant value), MIRROR_PAD (REFLECT; SYMMETRIC is not followed):
    paddings (rank, 2) per dim."""
    x, out = _io(r, op)
    amounts = r.ints(op.inputs[1], op.code)
    mode = "constant"
    if op.code == "MIRROR_PAD":
        if op.option("mode") != 0:
            raise Unknown("MIRROR_PAD(SYMMETRIC)")
        mode = "reflect"
    pads = {d: (amounts[2 * d], amounts[2 * d + 1]) for d in range(len(amounts) // 2)}
    r.kernel.pad(x, out, pads, mode)


def resize(r: TfliteReader, op: Operator) -> None:
    """RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR to the recorded output size, under
    their align_corners and half_pixel_centers flags (TFLite's reference kernels:
    nearest with half pixels takes floor((o + 1/2) * in / out), which is half_pixel
    rounded half up; with align_corners it rounds half away from zero)."""
    x, out = _io(r, op)
    node, layout, _ = r.kernel.window_order(x, r.kernel.state.nd, op.code, dims=_spatial(x))
    bilinear = op.code == "RESIZE_BILINEAR"
    corners, half = bool(op.option("align_corners")), bool(op.option("half_pixel_centers"))
    ctm = "align_corners" if corners else "half_pixel" if half else "asymmetric"
    nearest = "round_prefer_ceil" if corners or half else "floor"
    size = r.kernel.state.sizes(_shape(out), layout)
    op_ = O.Resize(size, [None] * r.kernel.state.nd, "linear" if bilinear else "nearest",
                   ctm, nearest)
    r.kernel.state.emit("resize", op_, node, layout, out)


def space_to_batch(r: TfliteReader, op: Operator) -> None:
    """SPACE_TO_BATCH_ND, a stride-1 VALID convolution, BATCH_TO_SPACE_ND: how the
    converter writes a dilated convolution (the block is the dilation). Read as that
    convolution: pad, dilate the kernel by the block, crop. Any other use of
    SPACE_TO_BATCH_ND moves positions into the batch, which is not followed."""
    x = r.t(op.inputs[0])
    i = r.index
    block, paddings = r.ints(op.inputs[1], op.code), r.ints(op.inputs[2], op.code)
    convs = r.readers.get(op.outputs[0], [])
    c = r.m.operators[convs[0]] if len(convs) == 1 else None
    if c is None or c.code not in ("CONV_2D", "DEPTHWISE_CONV_2D") or \
            c.inputs[0] != op.outputs[0] or _padding(c) != "valid" or \
            _hw(c, "stride_") != [1, 1] or _hw(c, "dilation_", "_factor") != [1, 1] or \
            len(block) != 2:
        raise Unknown("SPACE_TO_BATCH_ND (positions moved to the batch)")
    backs = r.readers.get(c.outputs[0], [])
    b = r.m.operators[backs[0]] if len(backs) == 1 else None
    if b is None or b.code != "BATCH_TO_SPACE_ND" or r.ints(b.inputs[1], b.code) != block:
        raise Unknown("SPACE_TO_BATCH_ND (positions moved to the batch)")
    crops = r.ints(b.inputs[2], b.code)
    k = list(r.m.tensors[c.inputs[1]].shape[1:3])
    shape = list(_shape(x))
    for d in (1, 2):
        shape[d] += paddings[2 * d - 2] + paddings[2 * d - 1]
    grown = T(("padded", i), tuple(shape))
    r.kernel.pad(x, grown, {d: (paddings[2 * d - 2], paddings[2 * d - 1]) for d in (1, 2)},
                 "constant")
    shape = [1] + [shape[d] - (k[d - 1] - 1) * block[d - 1] for d in (1, 2)] + \
        [r.m.tensors[c.outputs[0]].shape[-1]]
    dilated = T(("dilated", i), tuple(shape))
    r.op, r.index = c, convs[0]
    r.kernel.window("conv", grown, dilated, k, 1, "valid", block, dims=[1, 2])
    r.op, r.index = b, backs[0]
    r.kernel.pad(dilated, r.t(b.outputs[0]),
                 {d: (-crops[2 * d - 2], -crops[2 * d - 1]) for d in (1, 2)}, "constant")
    r.done.update((convs[0], backs[0]))
    r.alias(b)  # the phases (SPACE_TO_BATCH_ND's output) only the convolution reads


def concat(r: TfliteReader, op: Operator) -> None:
    r.kernel.concat("concat", [r.t(x) for x in op.inputs if x >= 0], r.t(op.outputs[0]),
                    op.option("axis"))


def merge(r: TfliteReader, op: Operator) -> None:
    ins = [r.t(x) for x in op.inputs if r.tracked(x)]
    r.kernel.merge(op.code.lower(), ins, r.t(op.outputs[0]))


def pointwise(r: TfliteReader, op: Operator) -> None:
    x = next(r.t(i) for i in op.inputs if r.tracked(i))
    r.kernel.pointwise(op.code.lower(), x, [r.t(o) for o in op.outputs])


def over_channels(r: TfliteReader, op: Operator) -> None:
    """SOFTMAX, LOG_SOFTMAX, L2_NORMALIZATION, LOCAL_RESPONSE_NORMALIZATION: over the
    last dim (channels, in NHWC)."""
    x, out = _io(r, op)
    r.kernel.along(op.code.lower(), x, out, [-1])


def reduce(r: TfliteReader, op: Operator) -> None:
    """MEAN, SUM, REDUCE_*: axes as the second input, keep_dims as the option."""
    x, out = _io(r, op)
    r.kernel.reduce(op.code.lower(), x, out, r.ints(op.inputs[1], op.code),
                    bool(op.option("keep_dims")))


def arg_reduce(r: TfliteReader, op: Operator) -> None:
    x, out = _io(r, op)
    r.kernel.reduce(op.code.lower(), x, out, r.ints(op.inputs[1], op.code), False)


def view(r: TfliteReader, op: Operator) -> None:
    """RESHAPE, SQUEEZE, EXPAND_DIMS: to the recorded output shape, or for a RESHAPE
    whose output the file leaves dynamic, to its folded target (-1 inferred)."""
    x, out = _io(r, op)
    if out.shape is None and op.code == "RESHAPE" and len(op.inputs) > 1:
        target = r.ints(op.inputs[1], "RESHAPE")
        known = int(np.prod([v for v in target if v != -1]))
        total = int(np.prod(_shape(x)))
        if target.count(-1) > 1 or known <= 0 or total % known:
            raise Unknown("RESHAPE to a target that does not fit")
        r.shapes[op.outputs[0]] = tuple(total // known if v == -1 else v for v in target)
        out = r.t(op.outputs[0])
    r.kernel.view(x, out)


def transpose(r: TfliteReader, op: Operator) -> None:
    x, out = _io(r, op)
    r.kernel.permute(x, out, r.ints(op.inputs[1], op.code))


def strided_slice(r: TfliteReader, op: Operator) -> None:
    """STRIDED_SLICE with constant begin, end and strides and begin/end masks; a
    shrunk axis is a slice of one then a view."""
    x, out = _io(r, op)
    if op.option("ellipsis_mask") or op.option("new_axis_mask") or op.option("offset"):
        raise Unknown("STRIDED_SLICE with ellipsis, new axes or offsets")
    begin, end, step = (r.ints(op.inputs[j], op.code) for j in (1, 2, 3))
    rank = len(_shape(x))
    begin_mask, end_mask = op.option("begin_mask"), op.option("end_mask")
    shrink = op.option("shrink_axis_mask")
    cuts = {}
    for d in range(len(begin)):
        n = _shape(x)[d]
        b = None if begin_mask >> d & 1 else begin[d]
        e = None if end_mask >> d & 1 else end[d]
        if shrink >> d & 1:
            b = b % n if b is not None else 0
            e, step[d] = b + 1, 1
        start, stop, st = slice(b, e, step[d]).indices(n)
        if st < 0:
            raise Unknown("STRIDED_SLICE with a negative stride")
        cuts[d % rank] = (start, max(stop, start), st)
    _slice(r, x, out, cuts, shrink)


def slice_(r: TfliteReader, op: Operator) -> None:
    """SLICE: constant begin and size (-1: to the end)."""
    x, out = _io(r, op)
    begin, size = r.ints(op.inputs[1], op.code), r.ints(op.inputs[2], op.code)
    cuts = {d: (b, _shape(x)[d] if s < 0 else b + s, 1) for d, (b, s) in enumerate(zip(begin,
                                                                                    size))}
    _slice(r, x, out, cuts, 0)


def _slice(r: TfliteReader, x: T, out: T, cuts: dict, shrink: int) -> None:
    if not shrink:
        r.kernel.slice("slice", x, out, cuts)
        return
    kept = tuple(-(-(cuts[d][1] - cuts[d][0]) // cuts[d][2]) if d in cuts else n
                 for d, n in enumerate(_shape(x)))
    cut = T(("sliced", r.index), kept)
    r.kernel.slice("slice", x, cut, cuts)
    r.kernel.view(cut, out)


def split(r: TfliteReader, op: Operator) -> None:
    """SPLIT (axis, data) and SPLIT_V (data, sizes, axis)."""
    data, axis = (1, 0) if op.code == "SPLIT" else (0, 2)
    (dim,) = r.ints(op.inputs[axis], op.code)
    r.kernel.split(op.code, r.t(op.inputs[data]), [r.t(o) for o in op.outputs], dim)


def pack(r: TfliteReader, op: Operator) -> None:
    r.kernel.stack([r.t(x) for x in op.inputs], r.t(op.outputs[0]), op.option("axis"))


def fully_connected(r: TfliteReader, op: Operator) -> None:
    """FULLY_CONNECTED: weights (units, features) over the last dim; without
    keep_num_dims the other dims are first flattened into rows."""
    x, out = _io(r, op)
    if r.tracked(op.inputs[1]):
        raise Unknown("FULLY_CONNECTED with computed weights")
    if len(_shape(x)) != len(_shape(out)):
        rows = T(("rows", r.index), (int(np.prod(_shape(x)[:-1])), _shape(x)[-1]))
        r.kernel.view(x, rows)
        x = rows
    r.kernel.matmul("fully_connected", x, None, out)


def batch_matmul(r: TfliteReader, op: Operator) -> None:
    if op.option("adj_x") or op.option("adj_y"):
        raise Unknown("BATCH_MATMUL with adjoint operands")
    a, b = (r.t(x) if r.tracked(x) else None for x in op.inputs[:2])
    r.kernel.matmul("batch_matmul", a, b, r.t(op.outputs[0]))


def blocks(kind: Callable[[int], O.Op]) -> Handler:
    """DEPTH_TO_SPACE, SPACE_TO_DEPTH: channels <-> the 2 spatial dims (which channel
    goes where differs from torch's pixel shuffle, which positions do not)."""
    def handler(r: TfliteReader, op: Operator) -> None:
        x, out = _io(r, op)
        node, layout = r.kernel.state.get(x)
        if tuple(layout[1:3]) != (0, 1) or r.kernel.state.nd != 2:
            raise Unknown(op.code)
        r.kernel.state.emit(op.code.lower(), kind(op.option("block_size")), node, layout, out)
    return handler


def tile(r: TfliteReader, op: Operator) -> None:
    """TILE that repeats only dims of size 1 is a broadcast; other tilings are not
    followed. Repeating a size-1 dim j then merging dims j - 1 and j (EXPAND_DIMS,
    TILE, RESHAPE: how UpSampling2D's nearest repeat is written) is nearest upsampling
    along the axis dim j - 1 holds: output o reads input o // r."""
    x, out = _io(r, op)
    shape, multiples = _shape(x), r.ints(op.inputs[1], op.code)
    if any(m != 1 and n != 1 for m, n in zip(multiples, shape)):
        raise Unknown("TILE of a dim larger than 1")
    tiled = [j for j, m in enumerate(multiples) if m != 1]
    plain = r.kernel.state.parts_of(x) is None
    merged = _merge_after(r, op, tiled[0], multiples[tiled[0]]) \
        if len(tiled) == 1 and plain else None
    if merged is None:
        return r.kernel.expand(x, out)
    reshape, j, times = merged
    node, layout = r.kernel.state.get(x)
    result = r.t(reshape.outputs[0])
    kept = layout[:j] + layout[j + 1:]
    axis = layout[j - 1]
    r.op, r.index = reshape, r.m.operators.index(reshape)
    if axis is None:
        r.kernel.state.bind(result, node, kept)
    else:
        scale = [float(times) if a == axis else 1.0 for a in range(r.kernel.state.nd)]
        r.kernel.state.emit("upsample", O.Upsample(scale=scale, mode="nearest"), node, kept,
                            result)
    r.alias(reshape)


def _merge_after(r: TfliteReader, op: Operator, j: int, times: int):
    """The RESHAPE (its operator, j, the repeat) that alone reads the TILE's output and
    merges dims j - 1 and j of it; None if there is none."""
    readers = r.readers.get(op.outputs[0], [])
    if j < 1 or len(readers) != 1 or r.m.operators[readers[0]].code != "RESHAPE":
        return None
    reshape = r.m.operators[readers[0]]
    shape = list(_shape(r.t(op.inputs[0])))
    want = tuple(shape[:j - 1] + [shape[j - 1] * times] + shape[j + 1:])
    if r.t(reshape.outputs[0]).shape not in (None, want):
        return None
    r.shapes[reshape.outputs[0]] = want
    r.done.add(readers[0])
    return reshape, j, times


def values_unread(r: TfliteReader, op: Operator) -> None:
    """SHAPE, RANK, ZEROS_LIKE: the result does not depend on the tensor's values."""
    r.fold(op)


HANDLERS: dict[str, Handler] = {
    "CONV_2D": conv, "DEPTHWISE_CONV_2D": conv,
    "TRANSPOSE_CONV": transpose_conv,
    "AVERAGE_POOL_2D": pool("avgpool"), "MAX_POOL_2D": pool("maxpool"),
    "PAD": pad, "PADV2": pad, "MIRROR_PAD": pad,
    "RESIZE_BILINEAR": resize, "RESIZE_NEAREST_NEIGHBOR": resize,
    "SPACE_TO_BATCH_ND": space_to_batch,
    "CONCATENATION": concat, "PACK": pack, "SPLIT": split, "SPLIT_V": split,
    "TILE": tile, "RESHAPE": view, "SQUEEZE": view, "EXPAND_DIMS": view, "TRANSPOSE": transpose,
    "STRIDED_SLICE": strided_slice, "SLICE": slice_,
    "MEAN": reduce, "SUM": reduce, "REDUCE_MAX": reduce, "REDUCE_MIN": reduce,
    "REDUCE_PROD": reduce, "REDUCE_ANY": reduce, "REDUCE_ALL": reduce,
    "ARG_MAX": arg_reduce, "ARG_MIN": arg_reduce,
    "FULLY_CONNECTED": fully_connected, "BATCH_MATMUL": batch_matmul,
    "SOFTMAX": over_channels, "LOG_SOFTMAX": over_channels,
    "L2_NORMALIZATION": over_channels, "LOCAL_RESPONSE_NORMALIZATION": over_channels,
    "DEPTH_TO_SPACE": blocks(O.PixelShuffle), "SPACE_TO_DEPTH": blocks(O.PixelUnshuffle),
    "SHAPE": values_unread, "RANK": values_unread, "ZEROS_LIKE": values_unread,
    # elementwise over several inputs, with broadcasting
    **{name: merge for name in (
        "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW",
        "FLOOR_DIV", "FLOOR_MOD", "ADD_N", "LESS", "GREATER", "GREATER_EQUAL", "LESS_EQUAL",
        "EQUAL", "NOT_EQUAL", "LOGICAL_AND", "LOGICAL_OR", "SELECT", "SELECT_V2", "ATAN2")},
    # index o reads index o: activations, casts, (de)quantization
    **{name: pointwise for name in (
        "QUANTIZE", "DEQUANTIZE", "FAKE_QUANT", "RELU", "RELU6", "RELU_N1_TO_1",
        "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "PRELU", "ELU", "GELU",
        "ABS", "NEG", "EXP", "LOG", "SQRT", "RSQRT", "SQUARE", "CAST", "FLOOR", "CEIL",
        "ROUND", "SIN", "COS", "SIGN", "LOGICAL_NOT")},
}
