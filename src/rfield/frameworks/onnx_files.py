"""ONNX files: read as untrusted data (see :mod:`rfield.frontends.onnx_model`); they
hold no Python to run, so ``verify`` and ``erf`` are refused. Exporters name nodes
by module path (``/layer1/layer1.0/conv1/Conv``), which ``--depth`` groups by."""

from __future__ import annotations

from ..core.graph import Graph
from .record import Framework, Size, Target


def read(t: Target, input_size: Size, options: dict) -> Graph:
    from ..frontends.onnx_graph import graph_from_onnx

    return graph_from_onnx(t.value, input_size, **options)


def op_tables() -> dict[str, list[str]]:
    from ..frontends.onnx_fold import FOLD
    from ..frontends.onnx_graph import HANDLERS

    return {"onnx": [name + ("" if len(versions) == 1 else
                             " (opset " + ", ".join(str(v) for v in sorted(versions)) + ")")
                     for name, versions in sorted(HANDLERS.items())],
            "onnx shape arithmetic, folded to constants": sorted(FOLD)}


def add_op(name: str, handler: object, _module: bool) -> None:
    """An operator of every opset: ``handler(reader, node, attributes)``."""
    from ..frontends.onnx_graph import HANDLERS

    HANDLERS.setdefault(name, {})[1] = handler  # type: ignore[assignment]


ONNX = Framework(
    name="onnx", read=read, op_tables=op_tables, sep="/", suffixes=(".onnx",),
    node_paths=True, add_op=add_op,
    cannot_run="an ONNX file has no runnable weights here (run it on the model it came from)")
