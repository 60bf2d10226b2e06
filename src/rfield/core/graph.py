"""The one graph type: named nodes, each an op over earlier nodes.

Every front-end (layer specs, PyTorch, ONNX) builds a :class:`Graph`; every
analysis and report reads one. Nodes are kept in the order they were added,
which is a topological order because an input must exist before it is used.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import RfieldError, ShapeError, SpecError, shown
from . import rules as R
from .ops import Op, Size, check_int

INPUT = "input"

#: Limits no real network reaches, checked before any work: positions per axis of
#: any tensor, positions of one tensor, and layers of one network.
MAX_SIDE = 1 << 22
MAX_POSITIONS = 1 << 28
MAX_LAYERS = 2_000_000


def check_size_limits(size: Size, what: str) -> None:
    if any(v > MAX_SIDE for v in size):
        raise ShapeError(f"{what} {shown(list(size))} is beyond the limit of {MAX_SIDE} "
                         "positions per axis")
    total = 1
    for v in size:
        total *= v
    if total > MAX_POSITIONS:
        raise ShapeError(f"{what} {shown(list(size))} is beyond the limit of {MAX_POSITIONS} "
                         "positions")


@dataclass(slots=True)
class Node:
    name: str
    op: Op
    inputs: tuple[str, ...]
    module: str | None = None  # the user's module path, for grouping in reports
    where: str | None = None  # where it was defined (file:line), for messages
    size: Size = ()
    rules: list[R.AxisRule] = field(default_factory=list)
    pointwise: bool = False  # every axis reads index o at o
    global_: bool = False  # some axis reads the whole input

    @property
    def kind(self) -> str:
        return self.op.kind


@contextmanager
def gc_paused():
    """No cyclic garbage collection inside: building or analysing a large network makes
    millions of small objects and frees none, and the collector would only rescan them
    (a third of the time on long chains)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _frozen(value: Mapping | None) -> Mapping:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Digits:
    """A layout entry for a tensor dim that holds positions split or merged (a ViT's
    tokens: 196 = 14 x 14, after ``before`` class or register tokens): its parts,
    major first, each ``(axis, stride, count)``, the dim's index adding ``stride * k``
    along ``axis`` for its k-th value. With it a unit is found in the tensor."""

    parts: tuple
    before: int = 0

    def index(self, unit: tuple[int, ...]) -> int:
        """Where ``unit`` (a position per input axis on the layer's grid) is in this dim."""
        at = 0
        for axis, stride, count in self.parts:
            at = at * count + (unit[axis] // stride) % count
        return self.before + at

    def extent(self, axis: int) -> int:
        """How many positions along ``axis`` this dim holds (1: none)."""
        n = 1
        for a, _, count in self.parts:
            n *= count if a == axis else 1
        return n


@dataclass(frozen=True)
class Provenance:
    """Where a graph came from, as the front-end that made it knows: set once.

    ``aliases`` maps the user's names (module paths, ONNX tensor names) to the node
    that makes them; ``alias_layouts`` says which tensor dim holds which input axis
    at a module's output (None: batch, channels); ``captured_on`` is where a torch
    model ran ("meta", or "cpu" when meta failed).
    """

    source: str = "spec"  # the name of a framework record (rfield.frameworks)
    unknown_ops: Mapping[str, int] = field(default_factory=dict)
    input_channels: int | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    alias_layouts: Mapping[str, tuple] = field(default_factory=dict)
    module_types: Mapping[str, str] = field(default_factory=dict)
    captured_on: str | None = None
    size_note: str | None = None  # where a default input size came from
    outputs: Mapping[str, str] = field(default_factory=dict)  # what a model returns -> node
    input_layout: tuple | None = None  # the input's dims as alias_layouts has them

    def __post_init__(self) -> None:
        for name in ("unknown_ops", "aliases", "alias_layouts", "module_types", "outputs"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))


def check_input_size(size: object) -> Size:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size,)
    if not isinstance(size, (list, tuple)) or not 1 <= len(size) <= 3:
        raise SpecError(f"input size must be 1 to 3 whole numbers, got {shown(size)}")
    checked = tuple(check_int(v, "input size", 1) for v in size)
    check_size_limits(checked, "input size")
    return checked


class Graph:
    """Nodes over one input tensor. ``add`` checks names and binds sizes at once."""

    def __init__(self, input_size) -> None:
        self.input_size: Size = check_input_size(input_size)
        self.nodes: dict[str, Node] = {}
        self._provenance: Provenance | None = None
        # (op, input sizes) -> what binding gives: an op used again on the same sizes
        # (a chain of one layer kind) binds once, and its nodes share rules
        self._bound: dict[tuple, tuple] = {}

    @property
    def provenance(self) -> Provenance:
        return self._provenance or Provenance()

    def set_provenance(self, provenance: Provenance) -> None:
        """Set once, by the front-end that made the graph, when it is complete."""
        if self._provenance is not None:
            raise RfieldError("a graph's provenance is set once")
        self._provenance = provenance

    # what front-ends record, read through the provenance
    unknown_ops = property(lambda self: self.provenance.unknown_ops)
    aliases = property(lambda self: self.provenance.aliases)
    input_channels = property(lambda self: self.provenance.input_channels)
    alias_layouts = property(lambda self: self.provenance.alias_layouts)
    module_types = property(lambda self: self.provenance.module_types)
    captured_on = property(lambda self: self.provenance.captured_on)

    @property
    def ndim(self) -> int:
        return len(self.input_size)

    def size_of(self, name: str) -> Size:
        return self.input_size if name == INPUT else self.nodes[name].size

    def add(self, name: str, op: Op, inputs=None, module: str | None = None,
            where: str | None = None) -> Node:
        """Append a node; ``inputs`` defaults to the last node (or the input)."""
        label = f"{where + ': ' if where else ''}layer '{name}'"
        if not isinstance(name, str) or not name:
            raise SpecError(f"{where + ': ' if where else ''}a layer name must be a non-empty "
                            f"string, got {name!r}")
        if name in self.nodes or name == INPUT:
            raise SpecError(f"{label}: the name is used twice")
        if inputs is None:
            inputs = (next(reversed(self.nodes)) if self.nodes else INPUT,)
        elif isinstance(inputs, str):
            inputs = (inputs,)
        inputs = tuple(inputs)
        if not inputs:
            raise SpecError(f"{label}: 'inputs' is empty")
        for src in inputs:
            if src != INPUT and src not in self.nodes:
                raise SpecError(f"{label}: input '{src}' is not a layer defined before it")
        if op.arity is not None and len(inputs) != op.arity:
            raise SpecError(f"{label}: '{op.kind}' takes {op.arity} input(s), "
                            f"got {len(inputs)}")
        sizes = [self.size_of(src) for src in inputs]
        if len(self.nodes) >= MAX_LAYERS:
            raise SpecError(f"{label}: more than {MAX_LAYERS} layers")
        key = (id(op), tuple(sizes))
        bound = self._bound.get(key)
        if bound is None:  # the entry holds the op, so its id is not reused
            bound = self._bind(op, sizes, label) + (op,)
            self._bound[key] = bound
        size, rules, pointwise, global_, _ = bound
        node = Node(name, op, inputs, module, where, size, rules, pointwise, global_)
        self.nodes[name] = node
        return node

    @staticmethod
    def _bind(op: Op, sizes: list[Size], label: str) -> tuple:
        try:
            size, rules = op.bind(sizes)
            check_size_limits(size, "output size")
        except (ShapeError, SpecError) as exc:
            raise type(exc)(f"{label} ({op.kind}): {exc}") from None
        for a in range(1, len(rules)):  # equal axes share one rule (and so their maps)
            if rules[a] == rules[a - 1]:
                rules[a] = rules[a - 1]
        return (size, rules, all(r.is_identity for r in rules),
                any(r.is_global for r in rules))

    def clear(self) -> None:
        """No nodes again (a front-end that starts its capture over)."""
        self.nodes.clear()
        self._bound.clear()

    def last(self) -> str:
        if not self.nodes:
            raise SpecError("the network has no layers")
        return next(reversed(self.nodes))

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {INPUT: []}
        for name in self.nodes:
            out[name] = []
        for node in self.nodes.values():
            for src in node.inputs:
                out[src].append(node.name)
        return out
