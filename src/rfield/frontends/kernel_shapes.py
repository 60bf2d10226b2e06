"""The kernel's shape operators: concatenation, stacking, splitting, permutes and
views, which move dims around but read no new positions (see :mod:`.kernel`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..core import ops as O
from ..core import rules as R
from ..core.graph import INPUT
from . import kernel_parts as P
from .kernel_state import State, T, Unknown, has_space, match_dims
from .kernel_windows import Parts

Merge = Callable[[str, Sequence[T], T], None]


class Shapes:
    """Dims moved, merged or split; a concat of mixed and spatial inputs is a merge
    (the elementwise ``merge`` the kernel hands over)."""

    def __init__(self, state: State, parts: Parts, merge: Merge) -> None:
        self.state, self.parts, self.merge = state, parts, merge

    def concat(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        if any(self.state.parts_of(t) is not None for t in ins):
            # a class token before the patches, anchors of several maps one after another
            raise Unknown(f"{kind} of tokens or windows")
        layouts = [self.state.layout(t) for t in ins]
        if any(lay[dim % len(lay)] is not None for lay in layouts):
            return self._rolled(kind, ins, out, dim)
        if len({has_space(lay) for lay in layouts}) > 1:  # some positions mixed upstream
            return self.merge(kind, ins, out)
        layout = layouts[0]
        nodes = list(dict.fromkeys(self.state.get(t)[0] for t in ins))
        op = O.Merge("concat") if len(nodes) > 1 else O.Pointwise("concat")
        self.state.bind(out, self.state.add(kind, op, nodes), layout)

    def _rolled(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        """A concat along a spatial dim of slices of one map that put its end before its
        start: a roll (how ONNX exporters and Keras write ``roll``); else not followed."""
        layout = self.state.layout(ins[0])
        axis = layout[dim % len(layout)]
        parents, pieces = set(), []
        for t in ins:
            node = self.state.graph.nodes.get(self.state.get(t)[0])
            if node is None or not isinstance(node.op, O.Slice) or self.state.layout(t) != layout:
                raise Unknown(f"{kind} along a spatial dim")
            rule = node.rules[axis]
            whole = all(isinstance(r, R.Window) and r.n_in == r.n_out and r.pad_before == 0
                        for a, r in enumerate(node.rules) if a != axis)
            if not isinstance(rule, R.Window) or rule.stride != 1 or not whole:
                raise Unknown(f"{kind} along a spatial dim")
            parents.add(node.inputs[0])
            pieces.append((-rule.pad_before, rule.n_out, rule.n_in))
        n = pieces[0][2]
        first, at = pieces[0][0], pieces[0][0]
        for start, length, _ in pieces:
            if start != at % n:
                raise Unknown(f"{kind} along a spatial dim")
            at = start + length
        if len(parents) != 1 or at % n != first or sum(p[1] for p in pieces) != n:
            raise Unknown(f"{kind} along a spatial dim")
        shifts = [0] * self.state.nd
        shifts[axis] = -first
        self.state.emit("roll", O.Roll(shifts), parents.pop(), layout, out)

    def stack(self, ins: Sequence[T], out: T, dim: int) -> None:
        layout = list(self.state.layout(ins[0]))
        layout.insert(dim % (len(layout) + 1), None)
        nodes = list(dict.fromkeys(self.state.get(t)[0] for t in ins))
        op = O.Merge("stack") if len(nodes) > 1 else O.Pointwise("stack")
        self.state.bind(out, self.state.add("stack", op, nodes), tuple(layout))

    def split(self, kind: str, x: T, outs: Sequence[T], dim: int, drop: bool = False) -> None:
        """Pieces along a non-spatial dim; ``drop`` removes the dim (unbind)."""
        if self.state.parts_of(x) is not None:
            return self.parts.split(x, outs, dim, drop)
        node, layout = self.state.get(x)
        dim %= len(layout)
        if layout[dim] is not None:
            raise Unknown(f"{kind} along a spatial dim")
        new = tuple(v for i, v in enumerate(layout) if i != dim) if drop else layout
        for o in outs:
            self.state.bind(o, node, new)

    def permute(self, x: T, out: T, perm: Sequence[int]) -> None:
        node, dims = self.state.held(x)
        self.state.bind_parts(out, node, P.permute(dims, perm))

    def view(self, x: T, out: T) -> None:
        """Views that keep every spatial dim whole (channel shuffles, flatten of 1x1)
        keep a plain layout; views that merge or split positions (tokens, window
        partitions) give the tensor parts (:mod:`.kernel_parts`)."""
        if x.shape is None or out.shape is None or None in x.shape or None in out.shape:
            raise Unknown("view with unknown shapes")
        if self.state.parts_of(x) is not None:
            return self.parts.view(x, out)
        node, layout = self.state.get(x)
        if not has_space(layout):
            return self._regrid(node, out)
        new = match_dims(x.shape, out.shape, layout)
        if new is not None:
            self.state.bind(out, node, new)
            return
        dims = [d for d, v in enumerate(layout) if v is not None]
        if len(dims) == self.state.nd and any(x.shape[d] > 1 for d in dims):
            # positions merged or split (tokens, window partitions): the parts say where
            return self.parts.view(x, out)
        self.state.bind(out, node, (None,) * len(out.shape))  # nothing spatial left to lose

    def _regrid(self, node: str, out: T) -> None:
        """A positionless tensor (tokens) viewed with a grid the network has had in
        consecutive dims (196 tokens as 14 x 14): global, broadcast onto that grid.
        Where the grid could sit in several places (64 channels on a 64 x 64 map), it
        is not guessed: the tensor stays positionless, and whatever reads it with a
        known layout (a convolution, a merge with a map) puts it on its grid."""
        shape = tuple(out.shape or ())
        places = [d for d in range(len(shape) - self.state.nd + 1)
                  if shape[d:d + self.state.nd] in self.state.grids
                  and all(v > 1 for v in shape[d:d + self.state.nd])]
        if len(places) != 1:
            return self.state.bind(out, node, (None,) * len(shape))
        d, nd = places[0], self.state.nd
        layout = (None,) * d + tuple(range(nd)) + (None,) * (len(shape) - d - nd)
        grid = self.state.add("broadcast", O.Broadcast(shape[d:d + nd]),
                              [self.state.as_global(node) if node != INPUT else node])
        self.state.bind(out, grid, layout)
