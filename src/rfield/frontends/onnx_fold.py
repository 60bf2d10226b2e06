"""Folding the input-independent parts of an ONNX graph to constants.

Exporters compute slice bounds, resize sizes and reshape targets from the
input's shape at run time (``Shape -> Gather -> Div -> Concat``). The network
input's shape is fixed once rfield reads it at a size, so these subgraphs are
constants: folding them lets ``x.chunk(2, dim=1)`` read as the channel split it
is, and a Resize back to a computed size read as a resize. Only small integer
and float arrays are made (a ``ConstantOfShape`` of a huge shape is not), and
anything this module does not know stays unknown: a handler that needs it
then reports its operator as unknown rather than guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: no folded array has more elements than this
MAX_ELEMENTS = 1 << 16

# ONNX TensorProto data types -> numpy
DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
          7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
          13: np.uint64}


def _int_div(x, y):
    if np.issubdtype(np.result_type(x, y), np.integer):
        return (np.trunc(np.asarray(x, np.float64) / y)).astype(np.result_type(x, y))
    return x / y


def _axes(a: dict, xs: list, i: int):
    if a.get("axes") is not None:
        return [int(v) for v in a["axes"]]
    if len(xs) > i and xs[i] is not None:
        return [int(v) for v in np.asarray(xs[i]).flatten()]
    return None


def _unsqueeze(a, xs):
    x, axes = xs[0], _axes(a, xs, 1)
    rank = x.ndim + len(axes)
    for ax in sorted(v % rank for v in axes):
        x = np.expand_dims(x, ax)
    return x


def _squeeze(a, xs):
    axes = _axes(a, xs, 1)
    return np.squeeze(xs[0], axis=None if axes is None else tuple(axes))


def _slice(a, xs):
    x = xs[0]
    if "starts" in a:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = xs[1].tolist(), xs[2].tolist()
        axes = xs[3].tolist() if len(xs) > 3 and xs[3] is not None else list(range(len(starts)))
        steps = xs[4].tolist() if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[ax] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _reshape(a, xs):
    shape = [int(v) for v in xs[1]]
    if not a.get("allowzero", 0):
        shape = [xs[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return xs[0].reshape(shape)


def _constant_of_shape(a, xs):
    shape = [int(v) for v in xs[0]]
    if int(np.prod(shape)) > MAX_ELEMENTS:
        raise ValueError("too large to fold")
    value = a.get("value")  # a TensorProto of one value, written in the node itself
    if value is not None and not hasattr(value, "item"):
        if len(value.external_data):
            raise ValueError("stored in an external file, which rfield never reads")
        from onnx import numpy_helper

        value = numpy_helper.to_array(value)
    return np.full(shape, np.asarray(value).item() if value is not None else 0.0)


def _range(a, xs):
    start, limit, delta = (np.asarray(v).item() for v in xs[:3])
    if delta == 0 or abs((limit - start) / delta) > MAX_ELEMENTS:
        raise ValueError("too large to fold")
    return np.arange(start, limit, delta)


def _expand(a, xs):
    shape = np.broadcast_shapes(xs[0].shape, tuple(int(v) for v in xs[1]))
    if int(np.prod(shape)) > MAX_ELEMENTS:
        raise ValueError("too large to fold")
    return np.broadcast_to(xs[0], shape).copy()


Fold = Callable[[dict, list], Any]

# operator -> how its output is computed from constant inputs
FOLD: dict[str, Fold] = {
    "Identity": lambda a, xs: xs[0],
    "Cast": lambda a, xs: xs[0].astype(DTYPES[int(a["to"])]),
    "Gather": lambda a, xs: np.take(xs[0], xs[1].astype(np.int64), axis=a.get("axis", 0)),
    "Concat": lambda a, xs: np.concatenate([np.atleast_1d(x) for x in xs], axis=a["axis"]),
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Slice": _slice, "Reshape": _reshape,
    "ConstantOfShape": _constant_of_shape, "Range": _range, "Expand": _expand,
    "Add": lambda a, xs: xs[0] + xs[1], "Sub": lambda a, xs: xs[0] - xs[1],
    "Mul": lambda a, xs: xs[0] * xs[1], "Div": lambda a, xs: _int_div(xs[0], xs[1]),
    "Max": lambda a, xs: np.maximum.reduce(xs), "Min": lambda a, xs: np.minimum.reduce(xs),
    "Neg": lambda a, xs: -xs[0], "Abs": lambda a, xs: np.abs(xs[0]),
    "Floor": lambda a, xs: np.floor(xs[0]), "Ceil": lambda a, xs: np.ceil(xs[0]),
    "Sqrt": lambda a, xs: np.sqrt(xs[0]),
    "Equal": lambda a, xs: xs[0] == xs[1], "Less": lambda a, xs: xs[0] < xs[1],
    "Greater": lambda a, xs: xs[0] > xs[1], "Not": lambda a, xs: ~xs[0],
    "Where": lambda a, xs: np.where(xs[0], xs[1], xs[2]),
    "ReduceProd": lambda a, xs: np.prod(xs[0], keepdims=bool(a.get("keepdims", 1))),
}


def fold(op_type: str, attrs: dict, inputs: list) -> Any:
    """The output of a node whose inputs are known constants (None where an optional
    input is absent), or None when it cannot be folded."""
    f = FOLD.get(op_type)
    if f is None or any(x is not None and np.asarray(x).size > MAX_ELEMENTS for x in inputs):
        return None
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(f(attrs, [None if x is None else np.asarray(x) for x in inputs]))
    except Exception:  # anything odd in a hostile file: not folded, never a traceback
        return None
    return out if out.size <= MAX_ELEMENTS else None
