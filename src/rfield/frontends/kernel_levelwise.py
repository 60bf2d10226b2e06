"""Operators followed map by map on anchors of several maps (see
:mod:`.kernel_levels`): the kernel hands every operator whose tensors hold such
anchors to :meth:`Levelwise.run`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..core.graph import INPUT
from . import kernel_levels as L
from .kernel_state import State, T, Unknown

#: Those that, reading across the anchors, read all of them (and so every map whole).
ACROSS = ("along", "mix", "attention", "einsum", "matmul", "reduce")


class _Across(Unknown):
    """An operator followed map by map read across the anchors."""


class Levelwise:
    """Runs an operator once per map and keeps its outputs as anchors of the maps."""

    def __init__(self, state: State) -> None:
        self.state = state

    def wrap(self, method: Callable[..., None]) -> Callable[..., None]:
        """``method``, run by :meth:`run` where a tensor it is handed holds anchors."""
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> None:
            if self.state.levels and any(isinstance(v, T) and v.key in self.state.levels
                                         for v in L.flat((args, kwargs))):
                return self.run(method, args, kwargs)
            return method(*args, **kwargs)
        return call

    def run(self, method: Callable[..., None], args: tuple, kwargs: dict) -> None:
        """``method`` run once per map of the anchors its tensors hold: where every
        node it adds is pointwise (or reads everything already) and each output keeps
        the map's positions in one dim, the outputs are anchors of those maps; where
        it reads across them as :data:`ACROSS` do, every map whole; else nothing is
        kept and the operator is not followed."""
        state, graph = self.state, self.state.graph
        every = [v for v in L.flat((args, kwargs)) if isinstance(v, T)]
        ts = list({t.key: t for t in reversed(every)}.values())[::-1]  # one per tensor
        held = {t.key: state.levels[t.key] for t in ts if t.key in state.levels}
        first = next(iter(held.values()))
        counts, total = first.counts, sum(first.counts)
        fresh = [t for t in ts if not state.has(t)]  # outputs, or constants
        made: dict = {t.key: [] for t in fresh}
        known = list(graph.nodes)
        temp: list = []
        outs: list[T] = []  # the fresh tensors the operator bound: its outputs
        try:
            if any(lv.counts != counts for lv in held.values()):
                raise Unknown(L.ON_LEVELS)
            for i, n in enumerate(counts):
                swap: dict[int, T] = {}
                for t in ts:
                    lv = held.get(t.key)
                    if lv is None and state.has(t):  # a tensor beside the anchors
                        if L.cut_shape(t.shape, total, n) != (t.shape and tuple(t.shape)):
                            # paired with the anchors: followed only where it reads
                            # everything already (attention weights over them)
                            everything = state.reads_everything(state.peek(t)[0])
                            raise (_Across if everything else Unknown)(L.ON_LEVELS)
                        continue
                    new = T(L.key_of(i, t.key), L.cut_shape(t.shape, total, n,
                                                            lv.dim if lv else None))
                    if lv is not None:
                        state.bind_parts(new, *lv.members[i])
                    swap.update({id(v): new for v in every if v.key == t.key})
                    temp.append(new.key)
                method(*L.substitute(args, swap), **{k: L.substitute(v, swap)
                                                      for k, v in kwargs.items()})
                for t in fresh:
                    entry = state.entries.get(L.key_of(i, t.key))
                    if entry is not None:
                        outs.append(t)
                        made[t.key].append(self._member(t, entry, first, i, total))
            # each anchor reads its own position only, or everything already
            if any(not graph.nodes[n].pointwise and not state.reads_everything(n)
                   for n in graph.nodes if n not in known):
                raise _Across(L.ON_LEVELS)  # something read across anchors
        except (Unknown, ValueError) as exc:
            for name in [n for n in graph.nodes if n not in set(known)]:
                del graph.nodes[name]
            if isinstance(exc, _Across) and method.__name__ in ACROSS:
                # a softmax over the anchors, attention among them: each output
                # reads every anchor, and so all the maps whole
                return self._across(ts, outs or fresh[-1:], held)  # out comes last
            raise Unknown(L.ON_LEVELS) from None
        finally:
            for key in temp:
                state.entries.pop(key, None)
                state.levels.pop(key, None)
        for t in fresh:
            if made[t.key]:
                at = L.cut_shape(t.shape, total, -1).index(-1)  # type: ignore[union-attr]
                state.bind_levels(t, L.Levels(at, tuple(made[t.key])))

    def _across(self, ts: list[T], fresh: list[T], held: dict) -> None:
        """Outputs of an operator that reads across all anchors: positionless, each
        reading every map whole and whatever the other inputs read."""
        nodes = [n for lv in held.values() for n in lv.nodes]
        for t in ts:
            if t.key not in held and self.state.has(t):
                nodes.append(self.state.peek(t)[0])
                nodes += [n for n in [self.state.tokens_node(t)] if n is not None]
        node = self.state.union("anchors", [n for n in nodes if n != INPUT])
        for t in fresh:
            self.state.bind(t, node, (None,) * (t.rank or 0))

    def _member(self, t: T, entry: tuple, levels: L.Levels, i: int, total: int) -> tuple:
        """One map's part of output ``t``: its node and parts, checked to hold that
        map's positions as the input did, in the dim of ``t`` that has the anchors."""
        node, dims, _, tokens = entry
        shape = L.cut_shape(t.shape, total, -1)
        if tokens is not None or shape is None:
            raise Unknown(L.ON_LEVELS)
        if -1 not in shape:
            raise _Across(L.ON_LEVELS)  # the anchors reduced or contracted
        at = shape.index(-1)
        grid = self.state.graph.size_of(node)
        want = levels.members[i][1][levels.dim]
        if not L.flat_grid(dims, at, grid) or tuple(dims[at]) != tuple(want):
            raise Unknown(L.ON_LEVELS)
        return node, dims

