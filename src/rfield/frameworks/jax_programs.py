"""JAX: a Flax linen module (alone or with its variables), an NNX module, or a
function of an image that a factory returns (``framework="jax"`` for a function
passed directly). Node names are module paths joined by ``/`` (``layer1/0/conv1``)."""

from __future__ import annotations

from typing import Any

from ..core.analysis import Analysis
from ..core.graph import Graph
from ..errors import TargetError
from .record import ErfAsk, Framework, Size, Target, module_paths


def _owns(obj: object) -> bool:
    from ..models.jax_programs import is_jax_target  # imports no JAX

    return is_jax_target(obj)


def read(t: Target, input_size: Size, options: dict) -> Graph:
    from ..frontends.jax_graph import graph_from_jax
    from ..models.jax_programs import input_shape, program

    if input_size is None:
        raise TargetError(f"{t.label}: a JAX program needs an input size: give "
                          "input_size=(224, 224)")
    layout = options.get("layout") or "nhwc"
    channels = int(options.get("channels") or 3)
    prog = program(t.value, input_shape(input_size, channels, layout), options.get("variables"))
    with prog.scopes():
        return graph_from_jax(prog.fn, input_size, prog.extra, channels, layout,
                              strict=bool(options.get("strict")))


class JaxRunner:
    """A JAX program with the variables it is given (random ones for linen)."""

    def __init__(self, t: Target, input_size: Size, options: dict, _init: bool) -> None:
        self.t, self.model, self.options = t, t.value, options
        self.graph = read(t, input_size, options)

    def graph_at(self, size: Size, nodes: list[str] | None = None) -> Graph:
        return self.graph if size is None else read(self.t, size, self.options)

    paths = staticmethod(module_paths)

    def measure(self, graph: Graph, modules: list[str], units: dict, layouts: dict,
                device: str) -> dict:
        from ..empirical.jax_gradient import measure_target

        return measure_target(self.model, graph, modules, units, layouts, self.options)

    def erf(self, a: Analysis, node: str, module: str, ask: ErfAsk) -> Any:
        from ..empirical.jax_gradient import target_erf

        return target_erf(self.model, self.options, a, node, module, ask)


def op_tables() -> dict[str, list[str]]:
    from ..frontends.jax_graph import CALLS
    from ..frontends.jax_ops import HANDLERS

    return {"jax primitives": sorted(HANDLERS), "jax calls, read through": sorted(CALLS)}


def add_op(name: str, handler: Any, _module: bool) -> None:
    """A primitive: ``handler(reader, eqn, outputs)``."""
    from ..frontends.jax_ops import HANDLERS

    HANDLERS[name] = handler


JAX = Framework(name="jax", read=read, op_tables=op_tables, sep="/", owns_object=_owns,
                runner=JaxRunner, add_op=add_op)
