"""Layer specs: a file, a one-line string, a dict or a list, or ``example:NAME``.
They need no framework to be read; ``verify`` and ``erf`` build them in torch (one
channel, weights of ones: see :mod:`rfield.empirical.spec_to_torch`)."""

from __future__ import annotations

import os
from typing import Any

from ..core.analysis import Analysis
from ..core.graph import Graph
from .pytorch import erf_of_net, measure_net
from .record import ErfAsk, Framework, Size, Target


def looks_like_spec(text: str) -> bool:
    """A string that is a spec, not a name to build: no ``prefix:``, an example, a
    spec file's suffix, an operator's parentheses before any colon, or a file."""
    from ..spec.parse import looks_like_spec_path

    prefix, sep, _ = text.partition(":")
    return not sep or text.startswith("example:") or looks_like_spec_path(text) \
        or "(" in prefix or os.path.exists(text)


def read(t: Target, input_size: Size, _options: dict) -> Graph:
    from ..spec.parse import load_spec

    return load_spec(t.value, input_size)


class SpecRunner:
    """A spec built in torch for each graph it is measured on."""

    def __init__(self, t: Target, input_size: Size, options: dict, _init: bool) -> None:
        self.t = t
        self.graph = t.value if t.kind == "graph" else read(t, input_size, options)
        # graph id -> (graph, its torch net, node -> module path); the graph is held so
        # that its id is not reused by another
        self._built: dict[int, tuple[Graph, Any, dict]] = {}

    def graph_at(self, size: Size, nodes: list[str] | None = None) -> Graph:
        if size is None:
            return self.graph
        from ..spec.parse import load_spec

        return load_spec(self.t.value, size) if self.t.kind != "graph" else \
            _resized(self.graph, size)

    def _net(self, graph: Graph) -> tuple[Any, dict]:
        if id(graph) not in self._built:
            from ..empirical.spec_to_torch import build

            self._built[id(graph)] = (graph, *build(graph))
        _, net, paths = self._built[id(graph)]
        return net, paths

    def paths(self, graph: Graph) -> dict[str, str | None]:
        return dict(self._net(graph)[1])

    def measure(self, graph: Graph, modules: list[str], units: dict, layouts: dict,
                device: str) -> dict:
        return measure_net(self._net(graph)[0], 1, graph, modules, units, layouts, device)

    def erf(self, a: Analysis, node: str, module: str, ask: ErfAsk) -> Any:
        return erf_of_net(self._net(a.graph)[0], 1, a, node, module, ask)


def _resized(graph: Graph, size: Size) -> Graph:
    from ..errors import RfieldError

    raise RfieldError(f"a Graph object is measured at its own size "
                      f"{'x'.join(map(str, graph.input_size))}, not {size}: pass its spec")


def op_tables() -> dict[str, list[str]]:
    from ..spec.registry import OPS

    return {"spec": [f"{n}({', '.join(OPS[n][1])})" if OPS[n][1] else n for n in sorted(OPS)]}


SPEC = Framework(name="spec", read=read, op_tables=op_tables, runner=SpecRunner,
                 chooses_device=True)
