"""A TensorFlow Lite file (``.tflite``) read as data: a small reader of the flatbuffer
tables rfield needs (Model, SubGraph, Tensor, Operator, OperatorCode, Buffer and the
operators' option tables), over a memory map of the file.

A ``.tflite`` file is untrusted input: every offset is checked against the file
before it is followed, counts and the file size are capped, and nothing in the file
is executed. Weights are never read; of the buffers only the small integer constants
an operator's meaning depends on (paddings, axes, slice bounds, permutations) are.
Field numbers are those of TensorFlow's ``schema.fbs``; the tests check them against
TensorFlow's generated reader.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import TargetError
from ..safeio import check_regular

#: a .tflite file (flatbuffers address 2 GiB; larger models keep their weights after
#: the flatbuffer, which is never read)
MAX_BYTES = 8 << 30
MAX_TENSORS = 1_000_000
MAX_OPERATORS = 1_000_000
MAX_RANK = 16
#: an integer constant read for its values (paddings, axes, shapes)
MAX_CONSTANT = 1 << 16

#: TensorFlow Lite's BuiltinOperator enum, in order (schema.fbs)
BUILTINS = tuple("""
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS
NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE
TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD
REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV
REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU
SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE
RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D
IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE
RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
""".split())

_CONV = {"padding": (0, "<b"), "stride_w": (1, "<i"), "stride_h": (2, "<i"),
         "dilation_w_factor": (4, "<i"), "dilation_h_factor": (5, "<i")}
_POOL = {"padding": (0, "<b"), "stride_w": (1, "<i"), "stride_h": (2, "<i"),
         "filter_width": (3, "<i"), "filter_height": (4, "<i")}
#: per operator, the option fields rfield reads: (field number, format) in its table
OPTIONS: dict[str, dict[str, tuple[int, str]]] = {
    "CONV_2D": _CONV,
    "DEPTHWISE_CONV_2D": {**_CONV, "depth_multiplier": (3, "<i"),
                          "dilation_w_factor": (5, "<i"), "dilation_h_factor": (6, "<i")},
    "TRANSPOSE_CONV": {"padding": (0, "<b"), "stride_w": (1, "<i"), "stride_h": (2, "<i")},
    "AVERAGE_POOL_2D": _POOL, "MAX_POOL_2D": _POOL,
    "RESIZE_BILINEAR": {"align_corners": (2, "<b"), "half_pixel_centers": (3, "<b")},
    "RESIZE_NEAREST_NEIGHBOR": {"align_corners": (0, "<b"), "half_pixel_centers": (1, "<b")},
    "CONCATENATION": {"axis": (0, "<i")},
    "MIRROR_PAD": {"mode": (0, "<b")},
    "PACK": {"axis": (1, "<i")},
    **{op: {"keep_dims": (0, "<b")} for op in (
        "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL")},
    "STRIDED_SLICE": {"begin_mask": (0, "<i"), "end_mask": (1, "<i"),
                      "ellipsis_mask": (2, "<i"), "new_axis_mask": (3, "<i"),
                      "shrink_axis_mask": (4, "<i"), "offset": (5, "<b")},
    "BATCH_MATMUL": {"adj_x": (0, "<b"), "adj_y": (1, "<b")},
    "DEPTH_TO_SPACE": {"block_size": (0, "<i")}, "SPACE_TO_DEPTH": {"block_size": (0, "<i")},
}
#: defaults other than 0 (schema.fbs)
DEFAULTS = {"dilation_w_factor": 1, "dilation_h_factor": 1, "depth_multiplier": 1}

#: TensorType values whose constants are read as integers
INT_TYPES = {2: "<i4", 4: "<i8", 7: "<i2", 9: "<i1", 3: "<u1"}


class Flat:
    """The file's bytes, every read bounds-checked (a bad offset is one error line)."""

    def __init__(self, data, path: str) -> None:
        self.data, self.path, self.size = data, path, len(data)

    def bad(self, what: str) -> TargetError:
        return TargetError(f"{self.path}: not a TensorFlow Lite flatbuffer ({what})")

    def read(self, fmt: str, pos: int):
        if pos < 0 or pos + struct.calcsize(fmt) > self.size:
            raise self.bad(f"an offset points outside the file ({pos})")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def table(self, pos: int) -> Table:
        vtable = pos - self.read("<i", pos)
        vsize = self.read("<H", vtable)
        if vsize < 4 or vsize % 2 or vtable + vsize > self.size:
            raise self.bad(f"a table's vtable is malformed at {vtable}")
        return Table(self, pos, vtable, vsize)


class Table:
    """One flatbuffer table: its fields by number, absent ones at their defaults."""

    def __init__(self, flat: Flat, pos: int, vtable: int, vsize: int) -> None:
        self.flat, self.pos, self.vtable, self.vsize = flat, pos, vtable, vsize

    def _at(self, slot: int) -> int | None:
        off = 4 + 2 * slot
        if off + 2 > self.vsize:
            return None
        rel = self.flat.read("<H", self.vtable + off)
        return self.pos + rel if rel else None

    def scalar(self, slot: int, fmt: str, default: int = 0) -> int:
        at = self._at(slot)
        return default if at is None else int(self.flat.read(fmt, at))

    def _target(self, slot: int) -> int | None:
        at = self._at(slot)
        return None if at is None else at + self.flat.read("<I", at)

    def table(self, slot: int) -> Table | None:
        at = self._target(slot)
        return None if at is None else self.flat.table(at)

    def _vector(self, slot: int, item: int, cap: int) -> tuple[int, int]:
        at = self._target(slot)
        if at is None:
            return 0, 0
        n = self.flat.read("<I", at)
        if n > cap or at + 4 + n * item > self.flat.size:
            raise self.flat.bad(f"a vector of {n} items at {at} runs past the file or a cap")
        return at + 4, n

    def ints(self, slot: int, cap: int = MAX_RANK) -> list[int]:
        start, n = self._vector(slot, 4, cap)
        return [self.flat.read("<i", start + 4 * i) for i in range(n)]

    def tables(self, slot: int, cap: int) -> list[Table]:
        start, n = self._vector(slot, 4, cap)
        return [self.flat.table(p + self.flat.read("<I", p))
                for p in (start + 4 * i for i in range(n))]

    def string(self, slot: int) -> str:
        start, n = self._vector(slot, 1, 1 << 16)
        return bytes(self.flat.data[start:start + n]).decode("utf-8", "replace")

    def byte_span(self, slot: int, cap: int) -> tuple[int, int]:
        """Where a [ubyte] field's bytes are: (start, length)."""
        return self._vector(slot, 1, cap)


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    signature: tuple[int, ...]  # -1 where a dim is dynamic
    dtype: int
    buffer: int


@dataclass(frozen=True)
class Operator:
    """One operator: its builtin name (``CUSTOM:<code>`` for custom ones), tensor
    indices (-1 for an absent optional input) and its options table, if any."""

    code: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Table | None
    options_type: int

    def option(self, name: str) -> int:
        """An option field by its schema name (``stride_w``), its default if absent."""
        slot, fmt = OPTIONS[self.code][name]
        default = DEFAULTS.get(name, 0)
        return default if self.options is None else self.options.scalar(slot, fmt, default)


@dataclass(frozen=True)
class Model:
    """The main subgraph of a .tflite file: tensors, operators in order, the graph's
    input and output tensors, and how many subgraphs the file holds."""

    path: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    subgraphs: int
    flat: Flat
    buffers: list[Table]

    def constant(self, index: int):
        """The values of an integer constant tensor (a numpy array), or None when the
        tensor is computed or not an integer constant."""
        if not 0 <= index < len(self.tensors):
            return None
        t = self.tensors[index]
        fmt = INT_TYPES.get(t.dtype)
        if fmt is None or not 0 < t.buffer < len(self.buffers):
            return None
        buffer = self.buffers[t.buffer]
        start, n = buffer.byte_span(0, MAX_CONSTANT)
        if n == 0:
            offset, size = buffer.scalar(1, "<Q"), buffer.scalar(2, "<Q")
            if offset <= 1 or size > MAX_CONSTANT or offset + size > self.flat.size:
                return None
            start, n = offset, size
        count = int(np.prod(t.shape)) if t.shape else 1
        item = np.dtype(fmt).itemsize
        if count * item != n:
            raise self.flat.bad(f"tensor {t.name!r} holds {n} bytes, not {count} values")
        values = np.frombuffer(bytes(self.flat.data[start:start + n]), fmt)
        return values.reshape(t.shape).astype(np.int64)


def _tensor(t: Table) -> Tensor:
    shape = tuple(t.ints(0))
    signature = tuple(t.ints(7)) or shape
    return Tensor(t.string(3), shape, signature, t.scalar(1, "<b"), t.scalar(2, "<I"))


def _code_name(c: Table) -> str:
    code = max(c.scalar(0, "<b"), c.scalar(3, "<i"))
    if 0 <= code < len(BUILTINS) and BUILTINS[code] == "CUSTOM":
        return "CUSTOM:" + c.string(1)
    return BUILTINS[code] if 0 <= code < len(BUILTINS) else f"BUILTIN_{code}"


def read_model(path: str) -> Model:
    """The file's main subgraph, read through a memory map (``model.flat.data``;
    close it when done: the tables point into it)."""
    size = check_regular(path, "TensorFlow Lite file", MAX_BYTES)
    if size < 8:
        raise TargetError(f"{path}: not a TensorFlow Lite flatbuffer ({size} bytes)")
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    flat = Flat(data, path)
    if bytes(data[4:8]) != b"TFL3":
        raise flat.bad("no TFL3 identifier")
    root = flat.table(flat.read("<I", 0))
    codes = [_code_name(c) for c in root.tables(1, 1 << 16)]
    subgraphs = root.tables(2, 1 << 16)
    if not subgraphs:
        raise flat.bad("no subgraph")
    g = subgraphs[0]
    tensors = [_tensor(t) for t in g.tables(0, MAX_TENSORS)]
    n = len(tensors)

    def indices(ix: list[int], optional: bool) -> tuple[int, ...]:
        for i in ix:
            if not (0 <= i < n or (optional and i == -1)):
                raise flat.bad(f"tensor index {i} of {n}")
        return tuple(ix)

    operators = []
    for op in g.tables(3, MAX_OPERATORS):
        code = op.scalar(0, "<I")
        if code >= len(codes):
            raise flat.bad(f"operator code {code} of {len(codes)}")
        operators.append(Operator(codes[code], indices(op.ints(1, 1 << 16), True),
                                  indices(op.ints(2, 1 << 16), False), op.table(4),
                                  op.scalar(3, "<B")))
    return Model(path, tensors, operators, list(indices(g.ints(1, 1 << 16), False)),
                 list(indices(g.ints(2, 1 << 16), False)), len(subgraphs), flat,
                 root.tables(4, MAX_TENSORS + 1))
