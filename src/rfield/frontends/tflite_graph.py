"""TensorFlow Lite front-end: a ``.tflite`` file's main subgraph read into a
:class:`Graph` (the file as data: :mod:`.tflite_flat`).

TFLite tensors are NHWC by the format's definition (NWC, NDHWC for 1-D and 3-D
inputs): the input's spatial dims are those between batch and channels. Shapes are
the ones the file records, fixed when the model was converted, so a file is read at
its own input size. Quantized models read as float ones: quantize, dequantize and the
int8 arithmetic change values, never which positions are read. Each operator is one
call of the shared kernel through :data:`HANDLERS`; node names are the output
tensors' names (a fused operator's first name: the layer whose output it is).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.graph import INPUT, Graph
from ..errors import RfieldError, TargetError, shown
from .kernel import Kernel, T, Unknown
from .tflite_flat import Model, Operator, read_model
from .tflite_fold import fold
from .tflite_ops import HANDLERS


class TfliteReader:
    """Reads one model: its image input, then each operator in order."""

    def __init__(self, model: Model, input_size, strict: bool,
                 input_name: str | None = None) -> None:
        self.m, self.path = model, model.path
        first = self._choose_input(input_name)
        t = model.tensors[first]
        nsp = len(t.shape) - 2
        size = tuple(t.shape[1:1 + nsp])
        if any(v < 0 for v in t.signature[1:1 + nsp]):
            raise TargetError(f"{self.path}: input {t.name!r} has dynamic spatial dims "
                              f"{list(t.signature)}; rfield reads .tflite files converted "
                              "at a fixed size")
        if input_size is not None and tuple(input_size) != size:
            raise TargetError(
                f"{self.path}: its shapes were fixed at {' x '.join(map(str, size))} when it "
                f"was converted; it is read at that size (got --input "
                f"{','.join(map(str, input_size))})")
        self.op: Operator | None = None
        self.index = -1
        self.shapes: dict[int, tuple[int, ...]] = {}  # computed where the file's are not
        self.consts: dict[int, Any] = {}  # folded shape arithmetic
        self.kernel = Kernel(size, strict, "the .tflite file", self._naming, self._where)
        self.kernel.state.bind(self.t(first), INPUT, (None,) + tuple(range(nsp)) + (None,))
        self.readers = self._consumers()
        self.done: set[int] = set()  # operators read as part of an earlier one
        self.aliases: dict[str, str] = {}
        for i, op in enumerate(model.operators):
            if i not in self.done:
                self.read_op(i, op)
        if not self.kernel.state.graph.nodes:
            raise TargetError(f"{self.path}: no operator of the model depends on its input")
        self.graph = self.kernel.state.finish(source="tflite", input_channels=t.shape[-1],
                                              aliases=self.aliases)

    def _choose_input(self, name: str | None) -> int:
        images = [i for i in self.m.inputs if 3 <= len(self.m.tensors[i].shape) <= 5]
        if name is not None:
            named = [i for i in self.m.inputs if self.m.tensors[i].name == name]
            if not named:
                have = ", ".join(repr(self.m.tensors[i].name) for i in self.m.inputs)
                raise TargetError(f"{self.path}: no input named {shown(name)} (inputs: {have})")
            images = named
        if not images:
            raise TargetError(f"{self.path}: no input of rank 3 to 5 (N, spatial..., C)")
        if len(images) > 1:
            have = ", ".join(repr(self.m.tensors[i].name) for i in images)
            raise TargetError(f"{self.path}: several image inputs ({have}); name one with "
                              "--input-name")
        return images[0]

    def _consumers(self) -> dict[int, list[int]]:
        readers: dict[int, list[int]] = {}
        for i, op in enumerate(self.m.operators):
            for x in op.inputs:
                readers.setdefault(x, []).append(i)
        return readers

    # ------------------------------------------------------------------ helpers

    def _name(self) -> str:
        op = self.op
        if op is None or not op.outputs:
            return "tflite"
        name = self.m.tensors[op.outputs[0]].name
        return next((p for p in name.split(";") if p), name) or f"{op.code}_{self.index}"

    def _naming(self, kind: str) -> tuple[str, str | None]:
        return self._name(), None

    def _where(self) -> str:
        code = self.op.code if self.op else "input"
        return f"{self.path}, operator {self.index} ({code}, {self._name()!r})"

    def t(self, index: int) -> T:
        """Tensor ``index`` with its shape: the file's where its signature is static
        past the batch dim, else the one computed here, else unknown."""
        t = self.m.tensors[index]
        shape = self.shapes.get(index)
        if shape is None and all(v >= 0 for v in t.signature[1:]):
            shape = t.shape
        return T(index, shape)

    def value(self, index: int):
        """An integer tensor's values: a constant of the file or folded; else None."""
        if index in self.consts:
            return self.consts[index]
        return self.m.constant(index)

    def tracked(self, index: int) -> bool:
        return index >= 0 and self.kernel.state.has(T(index))

    def ints(self, index: int, what: str) -> list[int]:
        values = self.value(index)
        if values is None:
            raise Unknown(f"{what} with computed values")
        return [int(v) for v in values.flatten()]

    def read_op(self, i: int, op: Operator) -> None:
        self.op, self.index = op, i
        live = [self.t(x) for x in op.inputs if self.tracked(x)]
        if not live:  # constants and shapes only
            return self.fold(op)
        handler = HANDLERS.get(op.code)
        try:
            if handler is None:
                raise Unknown(op.code)
            handler(self, op)
        except Unknown as exc:
            self.kernel.state.unknown(str(exc), live, [self.t(o) for o in op.outputs],
                                      op.code)
        except RfieldError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError,
                OverflowError) as exc:
            raise TargetError(f"{self._where()} is malformed: {type(exc).__name__}: "
                              f"{shown(str(exc), 80)}") from None
        self.alias(op)

    def fold(self, op: Operator) -> None:
        """Keep ``op``'s output value where it can be computed (see :mod:`.tflite_fold`)."""
        if op.code == "SHAPE":
            shape = self.t(op.inputs[0]).shape
            values = None if shape is None else np.asarray(shape, np.int64)
        else:
            ins = [self.value(x) for x in op.inputs if x >= 0]
            values = None if any(v is None for v in ins) else fold(op, ins)
        if values is not None and len(op.outputs) == 1:
            self.consts[op.outputs[0]] = values

    def alias(self, op: Operator) -> None:
        """Each output tensor's names (a fused operator's, joined by ';') are aliases of
        the node that made it, and each scope of its first name (``model/block_1``) of
        the last node made inside that scope, as for ONNX files' module paths."""
        for o in op.outputs:
            if not self.kernel.state.entry(o):
                continue
            names = [p for p in self.m.tensors[o].name.split(";") if p]
            parts = names[0].split("/") if names else []
            for suffix, node, _ in self.kernel.state.pieces(self.t(o)):
                if node == INPUT:
                    continue
                for name in names:
                    self.aliases.setdefault(name + suffix, node)
                for i in range(1, len(parts)):
                    self.aliases["/".join(parts[:i]) + suffix] = node


def graph_from_tflite(path, input_size=None, strict: bool = False,
                      input_name: str | None = None, **_ignored: Any) -> Graph:
    """Read a .tflite file (its main subgraph; no weights) into a Graph."""
    model = read_model(os.fspath(path))
    try:
        return TfliteReader(model, input_size, strict, input_name).graph
    finally:
        model.flat.data.close()
