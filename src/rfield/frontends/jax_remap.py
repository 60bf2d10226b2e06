"""Index rules read off the constants of a JAX program.

``jax.image.resize`` is no primitive: it compiles to a product with a weight
matrix built from iota inside the jaxpr (linear, cubic, with or without
antialias) or to a gather with constant indices (nearest). The reader evaluates
those constants; here they become rules. Which input indices each output index
reads is taken from the constant itself (the non-zero weights, the gathered
indices), then matched against the exact rules rfield knows (a slice, or a
:class:`~rfield.core.rules.Resample` of some mode): a match is exact on every
unit and periodic beyond the grid; no match is an unknown operator, never a
guess.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..core import rules as R

Rows = list[tuple[int, ...]]  # per output index, the input indices it reads

#: a weight below this share of the largest is a rounding leftover of an exact 0
#: (float32 sample positions), not a read
TOLERANCE = 1e-6


def rows_of_matrix(weights: np.ndarray, in_dim: int) -> Rows:
    """The reads of a 2-D weight matrix whose ``in_dim`` is contracted with the input."""
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if in_dim == 1:
        w = w.T
    top = float(w.max()) if w.size else 0.0
    read = w > TOLERANCE * top
    return [tuple(int(i) for i in np.flatnonzero(read[:, o])) for o in range(w.shape[1])]


def _candidates(n: int, m: int) -> list[tuple]:
    """Resample specs a resize of n to m may be, most common first."""
    s = Fraction(n, m)
    half = s / 2 - Fraction(1, 2)
    shrink = s if s > 1 else Fraction(0)
    specs: list[tuple] = [("resample", s, s / 2, "floor", False, Fraction(0)),
                          ("resample", s, Fraction(0), "floor", False, Fraction(0))]
    for kind in ("linear", "cubic"):
        for alias in dict.fromkeys((Fraction(0), shrink)):
            for clamp in (False, True):
                specs.append(("resample", s, half, kind, clamp, alias))
    if m > 1:
        specs.append(("resample", Fraction(n - 1, m - 1), Fraction(0), "linear", False,
                      Fraction(0)))
    return specs


def _reads_of(rule: R.AxisRule, n: int, m: int) -> Rows:
    o = np.arange(m)
    found: list[set[int]] = [set() for _ in range(m)]
    for idx, present in rule.taps(o):
        for unit, (i, p) in enumerate(zip(idx.tolist(), present.tolist())):
            if p and 0 <= i < n:
                found[unit].add(i)
    return [tuple(sorted(f)) for f in found]


def _slice(rows: Rows, n: int) -> tuple | None:
    if not rows or any(len(r) != 1 for r in rows):
        return None
    idx = [r[0] for r in rows]
    step = idx[1] - idx[0] if len(idx) > 1 else 1
    if step < 1 or idx != list(range(idx[0], idx[0] + step * len(idx), step)):
        return None
    return ("slice", idx[0], step)


def match(n: int, m: int, rows: Rows) -> tuple | None:
    """The spec of :class:`~rfield.core.ops.Remap` whose reads are ``rows``, or None."""
    if len(rows) != m:
        return None
    found = _slice(rows, n)
    if found is not None:
        return found
    for spec in _candidates(n, m):
        if _reads_of(R.Resample(n, m, *spec[1:]), n, m) == rows:
            return spec
    return None
