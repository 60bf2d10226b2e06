"""Anchors of several maps along one dim: a detector's ``cat([p3.flatten(2),
p4.flatten(2), p5.flatten(2)], 2)`` (YOLO's heads: 80 x 80 + 40 x 40 + 20 x 20 =
8400 anchors).

No one node holds such a tensor: each anchor reads its own level's position. The
tensor is kept as its *levels*, one member per map (its node and parts, the flat
grid in ``dim``), and an operator on it is followed level by level
(:mod:`.kernel_levelwise`): each member is handed to the operator as a tensor of its
own, the dim of 8400 cut to the level's count in every tensor of the call, and the
results are levels again where each keeps its level's positions in that dim
untouched. Anything else (a reduction over the anchors, a cut inside them, levels
of other counts) is not followed and is reported by name.

These are pure helpers; :mod:`.kernel_state` keeps the levels of each tensor.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

from ..core.graph import Digits
from . import kernel_parts as P

#: What an operator that cannot be followed level by level is told.
ON_LEVELS = "on anchors of several maps"


@dataclass(frozen=True)
class Levels:
    """Members ``(node, dims)`` one after another along ``dim``, each holding its
    node's whole grid, flattened, in that dim and no position anywhere else."""

    dim: int
    members: tuple[tuple[str, P.Dims], ...]

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(prod(c for _, _, c in dims[self.dim]) for _, dims in self.members)

    @property
    def nodes(self) -> list[str]:
        return [node for node, _ in self.members]

    def offsets(self) -> list[tuple[int, int]]:
        """Where each member lies along ``dim``: (start, stop)."""
        out, at = [], 0
        for n in self.counts:
            out.append((at, at + n))
            at += n
        return out


def flat_grid(dims: P.Dims, dim: int, grid: Sequence[int]) -> bool:
    """Whether ``dims`` hold a node's whole grid in ``dim`` alone (a member)."""
    parts = dims[dim]
    return (bool(parts) and all(p[0] is not None for p in parts)
            and prod(c for _, _, c in parts) == prod(grid)
            and not any(P.spatial(d) for i, d in enumerate(dims) if i != dim))


def cut_shape(shape: Sequence[Any] | None, total: int, count: int,
              at: int | None = None) -> tuple | None:
    """``shape`` with its dim of ``total`` anchors (``at``, or the one dim of that
    size) cut to ``count``; unchanged where it has none. Raises ValueError where
    several dims could be it."""
    if shape is None:
        return None
    if at is None:
        found = [d for d, n in enumerate(shape) if n == total]
        if len(found) > 1:
            raise ValueError("several dims of the anchors' count")
        if not found:
            return tuple(shape)
        at = found[0]
    return tuple(count if d == at else n for d, n in enumerate(shape))


def key_of(level: int, key: Hashable) -> tuple:
    """The key a member's copy of tensor ``key`` has while one level is followed."""
    return ("level", level, key)


def flat(value: Any) -> Iterable[Any]:
    """Every item inside ``value``'s lists, tuples and dicts."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from flat(v)
    else:
        yield value


def substitute(value: Any, swap: dict[int, Any]) -> Any:
    """``value`` with each item inside its lists and tuples that ``swap`` holds (by
    ``id``) replaced."""
    if isinstance(value, list):
        return [substitute(v, swap) for v in value]
    if type(value) is tuple:
        return tuple(substitute(v, swap) for v in value)
    return swap.get(id(value), value)


def pieces(levels: Levels) -> list[tuple[str, str, tuple]]:
    """Per map: its name's suffix (``[start:stop]``), its node, and the layout the
    measurement finds its units in (its digits after the anchors before it)."""
    return [(f"[{a}:{b}]", node, tuple(Digits(tuple(parts), a) if d == levels.dim else None
                                       for d, parts in enumerate(dims)))
            for (node, dims), (a, b) in zip(levels.members, levels.offsets())]
