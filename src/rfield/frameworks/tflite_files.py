"""TensorFlow Lite files (``.tflite``): the flatbuffer read as data (see
:mod:`rfield.frontends.tflite_flat`), at the input size it was converted at. There is
no Python module to run, so ``verify`` and ``erf`` are refused, as for ONNX files.
Node names are the tensor names the converter wrote (``model/block_1_expand/...``),
which ``--depth`` groups by."""

from __future__ import annotations

from ..core.graph import Graph
from .record import Framework, Size, Target


def read(t: Target, input_size: Size, options: dict) -> Graph:
    from ..frontends.tflite_graph import graph_from_tflite

    return graph_from_tflite(t.value, input_size, **options)


def op_tables() -> dict[str, list[str]]:
    from ..frontends.tflite_ops import HANDLERS

    return {"tflite builtin operators": sorted(HANDLERS)}


TFLITE = Framework(
    name="tflite", read=read, op_tables=op_tables, sep="/", suffixes=(".tflite",),
    node_paths=True,
    cannot_run="a .tflite file is read as data, its weights never loaded (measure the "
               "model it was converted from)")
