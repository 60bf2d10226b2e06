"""What front-ends share: following spatial axes through views, and broadcasting.

A *layout* says, for each dimension of a tensor, which spatial axis of the
network input it holds (or None for batch, channels and anything mixed).
"""

from __future__ import annotations

from ..core import ops as O
from ..core import rules as R


def match_dims(in_shape, out_shape, layout):
    """Layout of a view when every spatial dim survives whole, else None."""
    # walk both shapes grouping dims with equal products
    groups_in, groups_out = [], []
    i = j = 0
    while i < len(in_shape) or j < len(out_shape):
        gi, gj = [i] if i < len(in_shape) else [], [j] if j < len(out_shape) else []
        pi = in_shape[i] if i < len(in_shape) else 1
        pj = out_shape[j] if j < len(out_shape) else 1
        i += 1 if gi else 0
        j += 1 if gj else 0
        while pi != pj:
            if pi < pj and i < len(in_shape):
                pi *= in_shape[i]
                gi.append(i)
                i += 1
            elif j < len(out_shape):
                pj *= out_shape[j]
                gj.append(j)
                j += 1
            else:
                return None
        groups_in.append(gi)
        groups_out.append(gj)
    new = [None] * len(out_shape)
    for gi, gj in zip(groups_in, groups_out):
        spatial = [d for d in gi if layout[d] is not None and in_shape[d] > 1]
        if not spatial:
            continue
        big_out = [d for d in gj if out_shape[d] > 1]
        if len(spatial) == 1 and len(big_out) == 1 and \
                in_shape[spatial[0]] == out_shape[big_out[0]] and \
                all(in_shape[d] == 1 for d in gi if d != spatial[0]):
            new[big_out[0]] = layout[spatial[0]]
        else:
            return None
    # keep size-1 spatial dims that map one-to-one
    for gi, gj in zip(groups_in, groups_out):
        if len(gi) == 1 and len(gj) == 1 and layout[gi[0]] is not None and new[gj[0]] is None:
            new[gj[0]] = layout[gi[0]]
    return tuple(new)



class Broadcast(O.Op):
    """A size-1 axis repeated to a larger size: every unit reads the one unit there."""

    kind = "broadcast"

    def __init__(self, size) -> None:
        self.size = tuple(size)

    def bind(self, sizes):
        (n_in,) = sizes
        rules = [R.Identity(n, m) if n == m else R.Global(n, m)
                 for n, m in zip(n_in, self.size)]
        return self.size, rules


def global_union(add, kind: str, nodes) -> str:
    """A node that reads everything its inputs read: each input read whole (a global
    pool), then their union. ``add(kind, op, inputs)`` adds a node and returns its name."""
    nodes = list(dict.fromkeys(nodes))
    pooled = [add(kind, O.GlobalPool(), [n]) for n in nodes]
    return pooled[0] if len(pooled) == 1 else add(kind, O.Merge("add"), pooled)


def positionless(layouts) -> bool:
    """True when no input holds a spatial axis any more.

    Such a tensor either has one position per axis, or positions that were already
    mixed upstream (a global node was made there). An operator on it, known or not,
    cannot move data across positions: it changes no receptive field, and is not
    worth a warning.
    """
    return all(a is None for layout in layouts for a in layout)
