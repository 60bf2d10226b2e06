"""Shape arithmetic of a .tflite file, folded to constants: what the converter writes
where a model's batch is dynamic (``SHAPE``, ``STRIDED_SLICE``, ``CONCATENATION`` of
the pieces, then ``RESHAPE`` to the result). The file records a placeholder shape for
such a reshape's output; its target, folded here at batch 1, is the real one.

Only integer operators on values rfield knows are folded (the file's own constants,
shapes it trusts, earlier folds); anything else leaves the value unknown.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .tflite_flat import Operator

#: the largest folded value (a shape vector is a few numbers)
MAX_VALUES = 1 << 12

Values = list[np.ndarray]


def _strided_slice(op: Operator, v: Values) -> np.ndarray | None:
    x, begin, end, step = v
    if x.ndim != 1 or op.option("ellipsis_mask") or op.option("new_axis_mask"):
        return None
    b = None if op.option("begin_mask") & 1 else int(begin[0])
    e = None if op.option("end_mask") & 1 else int(end[0])
    if op.option("shrink_axis_mask") & 1:
        return np.asarray(x[int(begin[0])])
    return x[slice(b, e, int(step[0]))]


def _binary(f: Callable) -> Callable[[Operator, Values], np.ndarray]:
    return lambda op, v: f(v[0], v[1])


FOLDS: dict[str, Callable[[Operator, Values], np.ndarray | None]] = {
    "STRIDED_SLICE": _strided_slice,
    "CONCATENATION": lambda op, v: np.concatenate([np.atleast_1d(a) for a in v],
                                                  axis=op.option("axis")),
    "PACK": lambda op, v: np.stack(v, axis=op.option("axis")),
    "ADD": _binary(np.add), "SUB": _binary(np.subtract), "MUL": _binary(np.multiply),
    "FLOOR_DIV": _binary(np.floor_divide), "MAXIMUM": _binary(np.maximum),
    "MINIMUM": _binary(np.minimum), "CAST": lambda op, v: v[0],
    "RESHAPE": lambda op, v: v[0].reshape(-1), "SQUEEZE": lambda op, v: np.squeeze(v[0]),
    "EXPAND_DIMS": lambda op, v: np.expand_dims(v[0], int(v[1])),
}


def fold(op: Operator, values: Values) -> np.ndarray | None:
    """The value of ``op``'s output from its inputs' values, or None."""
    f = FOLDS.get(op.code)
    if f is None or any(v.size > MAX_VALUES for v in values):
        return None
    try:
        out = f(op, values)
    except (ValueError, IndexError, TypeError, ZeroDivisionError, FloatingPointError):
        return None  # malformed: what reads it finds no value and says so
    return None if out is None or out.size > MAX_VALUES else np.asarray(out, np.int64)
