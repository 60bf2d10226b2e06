"""What a framework is to rfield: one record each (see :mod:`rfield.frameworks`).

A record says how a target of its framework is recognised (by the object's class,
importing nothing, or by the name's suffix or prefix), how it is read into a graph at
a size (a zoo model's native size where none is given), how its module paths are
joined, its operator tables, and how it is run for ``verify`` and ``erf`` (a
:class:`Runner`), or why it cannot be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.graph import Graph

Size = tuple[int, ...] | None


@dataclass(frozen=True)
class Target:
    """A resolved target. ``framework`` is a record's name (a Graph's is its source's;
    "" for a factory still to be called); ``kind`` says more where a framework has
    several sources (torchvision, timm, hf, module; ``graph``, ``factory``); ``value``
    is what the user gave."""

    kind: str
    value: Any
    framework: str = ""

    @property
    def label(self) -> str:
        return self.value if isinstance(self.value, str) else type(self.value).__name__


@dataclass(frozen=True)
class ErfAsk:
    """What ``rfield erf`` asks of a runner."""

    samples: int = 16
    seed: int = 0
    images: str | None = None
    weights: str | None = None
    device: str = "cpu"
    progress: bool = False


class Runner(Protocol):
    """A model as ``verify`` and ``erf`` run it: its graph at any size, which module
    each node is the output of, the measured boxes of units, and the ERF."""

    graph: Graph

    def graph_at(self, size: Size, nodes: list[str] | None = None) -> Graph: ...

    def paths(self, graph: Graph) -> dict[str, str | None]: ...

    def measure(self, graph: Graph, modules: list[str], units: dict, layouts: dict,
                device: str) -> dict: ...

    def erf(self, a: Any, node: str, module: str, ask: ErfAsk) -> Any: ...


def _never(_obj: object) -> bool:
    return False


def _everything(_name: str) -> bool:
    return True


@dataclass(frozen=True)
class Framework:
    """One framework: see the module's docstring. ``sep`` joins module paths in node
    names (``layer4.0`` in torch, ``stage/conv`` in Keras and JAX); ``hookable`` says
    whether a module path's output can be measured; ``node_paths`` is set where node
    names carry module paths themselves (ONNX exporters' ``/layer1/conv1/Conv``)."""

    name: str
    read: Callable[[Target, Size, dict], Graph]
    op_tables: Callable[[], dict[str, list[str]]]
    sep: str = "."
    owns_object: Callable[[object], bool] = _never
    suffixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    runner: Callable[[Target, Size, dict, bool], Runner] | None = None
    cannot_run: str = ""
    hookable: Callable[[str], bool] = _everything
    node_paths: bool = False
    chooses_device: bool = False
    several_images: bool = False  # reads ``inputs=N`` (one image passed to N inputs)
    #: (name, handler, module) -> None: a user's handler put in the front-end's table
    add_op: Callable[[str, Callable, bool], None] | None = None


def module_paths(graph: Graph) -> dict[str, str | None]:
    """node -> the module whose output it is (the shortest path; "" for the model's
    own output), or None where no module ends at it (it cannot be hooked)."""
    owner: dict[str, str] = {}
    for path, node in graph.aliases.items():
        if node not in owner or len(path) < len(owner[node]):
            owner[node] = path
    out = graph.provenance.outputs.get("output")
    return {n: owner.get(n, "" if n == out else None) for n in graph.nodes}
