"""Class and register tokens beside a grid: ``cat([cls, patches], dim=1)``.

A ViT's token dim holds K positionless tokens (a class token, DeiT's distillation
token, DINOv2's registers) and then the h x w patches. The patches are parts of
that dim as for any flattened grid (:mod:`.kernel_parts`); the extra tokens are
counted apart, ``before`` and ``after`` the grid along the dim, with the node
they read: None while they are constants (a class token before any attention),
else a node that reads everything (they meet every patch in attention).

These are pure functions; :mod:`.kernel_state` keeps the tokens of each tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import prod

from . import kernel_parts as P


@dataclass(frozen=True)
class Tokens:
    """``before`` + ``after`` positionless tokens beside the grid along ``dim``."""

    dim: int
    before: int
    after: int
    node: str | None = None  # what they read; None: nothing (constants)

    def size(self, parts: Sequence[P.Part]) -> int:
        """The dim's length: the tokens and the grid's positions."""
        return self.before + prod(c for _, _, c in parts) + self.after

    def moved(self, dim: int) -> Tokens:
        return replace(self, dim=dim)


#: What an operator that does not follow tokens beside a grid is told.
ON_TOKENS = "on class or register tokens beside a grid"


def permuted(tokens: Tokens | None, perm: Sequence[int]) -> Tokens | None:
    if tokens is None:
        return None
    n = len(perm)
    return tokens.moved([p % n for p in perm].index(tokens.dim))


def shifted(tokens: Tokens | None, by: int) -> Tokens | None:
    """Tokens after ``by`` dims are added in front (negative: removed)."""
    return None if tokens is None else tokens.moved(tokens.dim + by)


def reshape(dims: P.Dims, tokens: Tokens, shape: Sequence[int]
            ) -> tuple[P.Dims, Tokens] | None:
    """A view that keeps the token dim whole (its length in one dim of ``shape``,
    the dims on each side reshaped among themselves), or None."""
    d = tokens.dim
    n = tokens.size(dims[d])
    lead = prod(prod(c for _, _, c in parts) for parts in dims[:d])
    for j, size in enumerate(shape):
        if size == n and prod(shape[:j]) == lead:
            left = P.reshape(dims[:d], shape[:j]) if j else ()
            right = P.reshape(dims[d + 1:], shape[j + 1:])
            if left is None or right is None:
                return None
            return tuple(left) + (dims[d],) + tuple(right), tokens.moved(j)
    return None


def cut(tokens: Tokens, parts: Sequence[P.Part], start: int, stop: int,
        step: int) -> tuple[bool, Tokens | None] | None:
    """A slice ``start:stop:step`` of the token dim: (whether the grid is kept, the
    tokens kept), or None where it cuts into the grid."""
    n = tokens.size(parts)
    grid = (tokens.before, n - tokens.after)
    start, stop, _ = slice(start, stop, step).indices(n)
    if stop <= grid[0] or start >= grid[1]:  # extra tokens only
        return (False, None) if step == 1 else None
    if step != 1 or start > grid[0] or stop < grid[1]:
        return None
    before, after = tokens.before - start, stop - grid[1]
    if before == after == 0:
        return True, None
    return True, replace(tokens, before=before, after=after)


def padded(dims: P.Dims, tokens: Tokens | None, pads: dict[int, tuple[int, int]],
           mode: str, shape: Sequence[int]) -> tuple[P.Dims, Tokens | None] | None:
    """The parts and tokens after a pad (per dim (before, after)) of a tensor that is
    not plain, or None where it is not followed. Padding dims holding no position
    (EfficientViT's ones appended to its values) changes no field; constants before
    or after the grid of a token dim (CoaT's empty class-token slot) are extra
    tokens that read nothing."""
    new = list(dims)
    for d, (before, after) in pads.items():
        if (before, after) == (0, 0):
            continue
        if not P.spatial(dims[d]):
            new[d] = ((None, 0, int(shape[d])),) if shape[d] > 1 else ()
            continue
        whole = len(P.spatial(dims[d])) == len(dims[d]) and not any(
            P.spatial(parts) for i, parts in enumerate(dims) if i != d)
        if mode != "constant" or before < 0 or after < 0 or not whole or (
                tokens is not None and tokens.dim != d):
            return None
        tokens = Tokens(d, before, after) if tokens is None else replace(
            tokens, before=tokens.before + before, after=tokens.after + after)
    return P.tidy(tuple(new)), tokens
