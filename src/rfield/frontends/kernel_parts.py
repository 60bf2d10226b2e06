"""Positions split across dims or merged with others: window partitions and tokens.

A plain layout says which tensor dim holds which input axis, whole. A view can
also split an axis into digits (Swin's window partition: 56 = 8 windows x 7) or
merge axes into one dim (196 tokens = 14 x 14, or windows x batch). Such a
tensor keeps, per dim, its *parts*, major first: ``(axis, stride, count)``, the
dim's index contributing ``stride * k`` (k < count) to the position along
``axis``; ``axis`` None is a factor of batch, heads or channels (stride 0).
The positions are the graph node's; the parts only say where each is held.

These are pure functions; :mod:`.kernel_state` keeps the parts of each tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..core.graph import Digits

Part = tuple  # (input axis or None, stride along it, count)
Dims = tuple  # per tensor dim, a tuple of its parts, major first


def from_layout(layout: Sequence, shape: Sequence | None, grid: Sequence[int]) -> Dims:
    """The parts of a plain layout: a spatial dim holds its axis whole (the count the
    grid has there, 1 included); another dim is a factor of its size (nothing where
    the size is not known)."""
    def one(d: int, a) -> tuple:
        if a is not None:
            return ((a, 1, int(grid[a])),)
        n = shape[d] if shape is not None and d < len(shape) else None
        return ((None, 0, int(n)),) if n is not None and n > 1 else ()
    return tuple(one(d, a) for d, a in enumerate(layout))


def tidy(dims: Dims) -> Dims:
    """Parts of count 1 dropped (but a whole axis of size 1 alone in its dim);
    neighbours that are one run of an axis joined."""
    out = []
    for parts in dims:
        run: list[Part] = []
        for p in parts:
            if p[2] == 1 and not (len(parts) == 1 and p[0] is not None and p[1] == 1):
                continue
            if run:
                a, s, c = run[-1]
                if p[0] is None and a is None:
                    run[-1] = (None, 0, c * p[2])
                    continue
                if p[0] == a and a is not None and s == p[1] * p[2]:
                    run[-1] = (a, p[1], c * p[2])
                    continue
            run.append(p)
        out.append(tuple(run))
    return tuple(out)


def reshape(dims: Dims, shape: Sequence[int]) -> Dims | None:
    """The parts after a view to ``shape``, or None where a dim boundary cuts a part
    unevenly (then the view is not followed)."""
    flat = [p for parts in dims for p in parts if p[2] > 1]
    out: list[tuple] = []
    i = 0
    for size in shape:
        size = int(size)
        taken: list[Part] = []
        need = size
        while need > 1:
            if i >= len(flat):
                return None
            a, s, c = flat[i]
            if need % c == 0:
                taken.append((a, s, c))
                need //= c
                i += 1
            elif c % need == 0:  # the dim ends inside this part: its high digits here
                low = c // need
                taken.append((a, s * low, need))
                flat[i] = (a, s, low)
                need = 1
            else:
                return None
        out.append(tuple(taken))
    if i != len(flat):
        return None
    return tidy(tuple(out))


def permute(dims: Dims, perm: Sequence[int]) -> Dims:
    """Dims reordered; an index past the rank (dims of the wrong rank for a tensor
    with no shape, whose positions were mixed upstream) holds nothing."""
    n = len(dims)
    return tuple(dims[p % n] if -n <= p < n else () for p in perm)


def spatial(parts: Sequence[Part]) -> list[Part]:
    return [p for p in parts if p[0] is not None]


def has_space(dims: Dims) -> bool:
    return any(spatial(parts) for parts in dims)


def blank(dims: Dims, which: Iterable[int], shape: Sequence[int]) -> Dims:
    """``dims`` with the dims ``which`` holding no position any more (contracted,
    or mixed and relabelled): a channel-like part of their size."""
    hit = {w % len(dims) for w in which}
    return tidy(tuple(((None, 0, int(shape[d])),) if d in hit else parts
                      for d, parts in enumerate(dims)))


def digits(parts: Sequence[Part], nd: int) -> list[tuple]:
    """Per input axis, the (stride, count) digits ``parts`` hold, lowest first."""
    per: list[list] = [[] for _ in range(nd)]
    for a, s, c in spatial(parts):
        per[a].append((s, c))
    return [tuple(sorted(d)) for d in per]


def held(dims: Dims, nd: int) -> list[tuple]:
    """Per input axis, the digits the tensor holds (over all its dims)."""
    return digits([p for parts in dims for p in parts], nd)


def tiles(ds: Sequence[tuple[int, int]], low: int, n: int) -> bool:
    """Whether digits ``ds`` (sorted) are exactly the positions ``low * k`` below n."""
    stride = low
    for s, c in ds:
        if s != stride:
            return False
        stride = s * c
    return stride == n


def to_layout(dims: Dims, grid: Sequence[int]) -> tuple | None:
    """The plain layout of ``dims`` (per dim the input axis it holds whole, or None),
    or None where a dim holds part of an axis, or more than one."""
    layout: list = []
    for parts in dims:
        sp = spatial(parts)
        if not sp:
            layout.append(None)
            continue
        a, s, c = sp[0]
        if len(parts) != 1 or s != 1 or c != grid[a] or a in layout:
            return None
        layout.append(a)
    return tuple(layout)


def scaled(dims: Dims, factors: Sequence[int]) -> Dims:
    """Strides divided per axis: the positions of a grid decimated by ``factors``."""
    return tuple(tuple((a, s // factors[a], c) if a is not None else (a, s, c) for a, s, c in parts)
                 for parts in dims)


def overlap(parts: Sequence[Part], other: Sequence[Part]) -> bool:
    """Whether two dims hold some digit of an axis in common."""
    return any(a == b and s < t * d and t < s * c
               for a, s, c in spatial(parts) for b, t, d in spatial(other))


def units(dims: Dims, grid: Sequence[int], tokens: tuple[int, int] | None) -> tuple | None:
    """A layout the measurement can find units in for a tensor that is not plain: per
    dim None or :class:`~rfield.core.graph.Digits` (its parts, after the extra tokens
    before them: ``tokens`` is (their dim, their count before the grid)); None where
    a dim mixes positions with batch or heads, or the tensor holds no whole grid."""
    if not has_space(dims) or not dims or spatial(dims[0]):
        return None
    out: list = []
    for d, parts in enumerate(dims):
        if not spatial(parts):
            out.append(None)
        elif len(spatial(parts)) != len(parts):
            return None
        else:
            out.append(Digits(tuple(parts), tokens[1] if tokens and tokens[0] == d else 0))
    found = [e for e in out if e is not None]
    if any(math.prod(e.extent(a) for e in found) != n for a, n in enumerate(grid)):
        return None
    return tuple(out)


def high_digits(held: Sequence[tuple], grid: Sequence[int]) -> list[tuple] | None:
    """Where the digits contracted away are the highest of some axes (every patch at
    one offset: the offset's digits are held, from stride 1 up), per axis the
    (stride, count) digits contracted; else None. The sum at offset ``o`` reads every
    position with the same offset: the node mixing those digits, read at ``o``, reads
    exactly that, as it does at any position with offset ``o``."""
    out: list[tuple] = []
    for ds, n in zip(held, grid):
        top = ds[-1][0] * ds[-1][1] if ds else 1
        if not ds or not tiles(ds, 1, top) or n % top:
            return None
        out.append(((top, n // top),) if top < n else ())
    return out if any(out) else None


def invariant(mixed: Sequence[Sequence[tuple]], dims: Dims, other: Dims) -> bool:
    """Whether a tensor holding ``dims`` of a node that mixes the digits ``mixed`` (per
    axis) may be read as holding ``other``: where they differ, its dim holds no
    position and ``other``'s holds digits the node mixes (MobileViTv2's context,
    summed over every patch at one offset, broadcast back over the patches): every
    unit it would read there reads the same."""
    if len(dims) != len(other):
        return False
    for mine, theirs in zip(tidy(dims), tidy(other)):
        if spatial(mine) == spatial(theirs):
            continue
        if spatial(mine) or any((s, c) not in mixed[a] for a, s, c in spatial(theirs)):
            return False
    return True


def blocks(dims: Dims, window_dims: Sequence[int], kernel: Sequence[int],
           nd: int) -> list[int] | None:
    """Per axis the factor a window as wide as its stride decimates it by, where each
    windowed dim's minor part is the lowest digits of an axis (stride 1) in whole
    windows (a 4 x 4 window's rows, or NextViT's tokens pooled along a flattened
    row), and every other digit of that axis steps by a multiple of them (blocks
    never straddle a split); else None."""
    factors = [1] * nd
    for d, k in zip(window_dims, kernel):
        if int(k) == 1:
            continue
        if not dims[d]:
            return None
        a, s, c = dims[d][-1]
        if a is None or s != 1 or c % int(k) or factors[a] != 1:
            return None
        factors[a] = int(k)
    others = [p for d, parts in enumerate(dims) for i, p in enumerate(parts)
              if not (d in window_dims and i == len(parts) - 1)]
    if any(p[0] is not None and p[1] % factors[p[0]] for p in others):
        return None
    return factors


def decimated(dims: Dims, window_dims: Sequence[int], factors: Sequence[int]) -> Dims:
    """The parts after :func:`blocks`: the windowed minor digits fewer, the others'
    strides divided (positions of the decimated grid)."""
    def one(d: int, i: int, part: Part) -> Part:
        a, s, c = part
        if a is None:
            return part
        if d in window_dims and i == len(dims[d]) - 1:
            return (a, 1, c // factors[a])
        return (a, s // factors[a], c)
    return tuple(tuple(one(d, i, p) for i, p in enumerate(parts))
                 for d, parts in enumerate(dims))
