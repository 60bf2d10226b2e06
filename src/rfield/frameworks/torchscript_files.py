"""TorchScript archives (``.pt``/``.pth`` from ``torch.jit.save``): the module's graphs
walked by rfield on meta tensors (see :mod:`rfield.frontends.torchscript_graph`); a
plain ``torch.save`` checkpoint is refused, never unpickled. ``verify`` is refused:
the archive is read, not run."""

from __future__ import annotations

from ..core.graph import Graph
from .record import Framework, Size, Target


def read(t: Target, input_size: Size, options: dict) -> Graph:
    from ..frontends.torchscript_graph import graph_from_torchscript

    return graph_from_torchscript(t.value, input_size, **options)


def op_tables() -> dict[str, list[str]]:
    from ..frontends.torch_ops import HANDLERS

    return {"torchscript aten operators (aten::conv2d read as the torch function conv2d; "
            "torch.nn.functional calls as torch's own)": sorted(HANDLERS)}


TORCHSCRIPT = Framework(
    name="torchscript", read=read, op_tables=op_tables, suffixes=(".pt", ".pth"),
    cannot_run="a TorchScript archive is read, not run (measure the module it was saved "
               "from)")
