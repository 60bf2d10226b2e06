"""torch.export archives (``.pt2``): the saved program's graph read as data (see
:mod:`rfield.frontends.pt2_program`); there is no Python module to run, so ``verify``
and ``erf`` are refused, as for ONNX files."""

from __future__ import annotations

from ..core.graph import Graph
from .record import Framework, Size, Target


def read(t: Target, input_size: Size, options: dict) -> Graph:
    from ..frontends.pt2_graph import graph_from_pt2

    return graph_from_pt2(t.value, input_size, **options)


def op_tables() -> dict[str, list[str]]:
    from ..frontends.torch_ops import HANDLERS

    return {"pt2 aten operators (aten.conv2d.default read as the torch function conv2d)":
            sorted(HANDLERS)}


PT2 = Framework(
    name="pt2", read=read, op_tables=op_tables, suffixes=(".pt2",),
    cannot_run="a .pt2 archive is read as data, its weights never loaded (measure the "
               "module it was exported from)")
