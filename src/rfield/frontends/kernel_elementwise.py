"""The kernel's elementwise operators: one input (activations, casts) or several
with broadcasting (sums, products, gates); see :mod:`.kernel`."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import ops as O
from ..core.graph import INPUT
from . import kernel_parts as P
from . import kernel_tokens as K
from .kernel_state import Layout, State, T, Unknown, has_space
from .kernel_windows import Parts


class Elementwise:
    """Every output position reads the same position of each input; a size-1 dim
    broadcast against a larger one reads everything there."""

    def __init__(self, state: State, parts: Parts) -> None:
        self.state, self.parts = state, parts

    def pointwise(self, kind: str, x: T, outs: Sequence[T]) -> None:
        for o in outs:
            if o.shape is not None and x.shape is not None and tuple(o.shape) != tuple(x.shape):
                raise Unknown(kind)
        node, dims, tokens = self.state.held(x)
        for o in outs:
            self.state.bind_parts(o, self.state.add(kind, O.Pointwise(kind), [node]), dims,
                                  tokens)

    def merge(self, kind: str, ins: Sequence[T], out: T) -> None:
        """Elementwise operators of several tensors, with broadcasting."""
        if any(self.state.parts_of(t) is not None for t in ins):
            return self.parts.merge(kind, ins, out)
        out_rank = out.rank if out.rank is not None else max(self.state.rank(t) for t in ins)
        spatial = [self.state.layout(t) for t in ins
                   if has_space(self.state.layout(t)) and self.state.rank(t) == out_rank]
        inputs: list[str] = []
        out_layout = None
        for src in ins:
            node, layout = self.state.get(src)
            if spatial and not has_space(layout):
                # positions mixed upstream (attention): global, broadcast onto the grid
                size = self.state.sizes(out.shape, spatial[0])
                if size is not None:
                    inputs.append(self.state.add("broadcast", O.Broadcast(size),
                                           [self.state.as_global(node)]))
                    continue
            extra = out_rank - self.state.rank(src)
            layout = (None,) * extra + tuple(layout)
            node = self._broadcast(node, src, layout, out, extra)
            if out_layout is None or (extra == 0 and self.state.sizes(src.shape, layout)):
                out_layout = layout
            inputs.append(node)
        assert out_layout is not None  # some input holds the spatial axes
        target = self.state.sizes(out.shape, out_layout)
        inputs = list(dict.fromkeys(self._fill(n, target) for n in inputs))
        op = O.Merge(kind) if len(inputs) > 1 else O.Pointwise(kind)
        self.state.bind(out, self.state.add(kind, op, inputs), out_layout)

    def _broadcast(self, node: str, src: T, layout: Layout, out: T, extra: int) -> str:
        """A size-1 spatial dim broadcast against a larger one reads everything there."""
        if src.shape is None or out.shape is None:
            return node
        grow = any(ax is not None and d >= extra and src.shape[d - extra] == 1
                   and (out.shape[d] or 0) > 1 for d, ax in enumerate(layout))
        size = self.state.sizes(out.shape, layout)
        if not grow or size is None:
            return node
        return self.state.add("broadcast", O.Broadcast(size), [node])

    def _fill(self, node: str, target: tuple[int, ...] | None) -> str:
        """A node of size 1 along an axis its tensor no longer holds (one row picked,
        the dim then dropped or stacked) broadcast there, as its tensor is."""
        size = self.state.graph.size_of(node)
        if target is None or size == target or any(
                s not in (1, t) for s, t in zip(size, target)):
            return node
        return self.state.add("broadcast", O.Broadcast(target), [node])

    def expand(self, x: T, out: T) -> None:
        if self.state.parts_of(x) is not None:
            return self.parts.expand(x, out)
        node, layout = self.state.get(x)
        extra = (out.rank or 0) - self.state.rank(x)
        layout = (None,) * extra + tuple(layout)
        self.state.bind(out, self._broadcast(node, x, layout, out, extra), layout)


    def write(self, target: T, value: T, out: T,
              cut: dict[int, tuple[int, int, int]]) -> None:
        """``target[index] = value`` where ``index`` cuts the dims ``cut`` (per dim its
        start, stop, step), none of which holds a position (keypoint channels rescaled
        in place) but for a token dim cut to its grid (MViTv2's relative positions
        added to the patches' attention, not the class token's): each element written
        reads the value at its own position, so ``out`` reads both. ``target`` may be
        a constant (no entry)."""
        held = [self.state.held(t) for t in (target, value) if self.state.has(t)]
        tokens = self.state.tokens_of(target) if self.state.has(target) else None
        if (self.state.has(value) and self.state.tokens_of(value) is not None) or \
                out.shape is None or any(len(dims) != len(out.shape) for _, dims, _ in held):
            raise Unknown("__setitem__")
        if tokens is not None and tokens.dim in cut:
            parts = self.state.held(target)[1][tokens.dim]
            if K.cut(tokens, parts, *cut[tokens.dim]) != (True, None):
                raise Unknown("__setitem__ into a spatial dim")  # the grid written whole
        spatial: dict[int, tuple] = {}
        for _, dims, _ in held:
            for d, parts in enumerate(dims):
                if P.spatial(parts):
                    whole = tokens is not None and d == tokens.dim
                    if (d in cut and not whole) or \
                            spatial.setdefault(d, tuple(parts)) != tuple(parts):
                        raise Unknown("__setitem__ into a spatial dim")
        nodes = list(dict.fromkeys(node for node, _, _ in held))
        if len({self.state.graph.size_of(n) for n in nodes if n != INPUT}) > 1:
            raise Unknown("__setitem__ of maps of different sizes")
        op = O.Merge("setitem") if len(nodes) > 1 else O.Pointwise("setitem")
        node = self.state.add("setitem", op, nodes)
        dims = tuple(spatial.get(d, ((None, 0, int(n)),) if n and n > 1 else ())
                     for d, n in enumerate(out.shape))
        self.state.bind_parts(out, node, P.tidy(dims), tokens)
