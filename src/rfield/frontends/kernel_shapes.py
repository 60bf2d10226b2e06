"""The kernel's shape operators: concatenation, stacking, splitting, permutes and
views, which move dims around but read no new positions (see :mod:`.kernel`)."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import ops as O
from ..core import rules as R
from ..core.graph import INPUT
from . import kernel_parts as P
from .kernel_state import State, T, Unknown, has_space, match_dims


class Shapes(State):
    """Dims moved, merged or split; a concat of mixed and spatial inputs is a merge."""

    def merge(self, kind: str, ins: Sequence[T], out: T) -> None:
        raise NotImplementedError  # the kernel's elementwise merge

    def parts_view(self, x: T, out: T) -> None:
        raise NotImplementedError  # kernel_windows

    def parts_split(self, x: T, outs: Sequence[T], dim: int, drop: bool) -> None:
        raise NotImplementedError  # kernel_windows

    def concat(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        if any(self.parts_of(t) is not None for t in ins):
            # a class token before the patches, anchors of several maps one after another
            raise Unknown(f"{kind} of tokens or windows")
        layouts = [self.layout(t) for t in ins]
        if any(lay[dim % len(lay)] is not None for lay in layouts):
            return self._rolled(kind, ins, out, dim)
        if len({has_space(lay) for lay in layouts}) > 1:  # some positions mixed upstream
            return self.merge(kind, ins, out)
        layout = layouts[0]
        nodes = list(dict.fromkeys(self.get(t)[0] for t in ins))
        op = O.Merge("concat") if len(nodes) > 1 else O.Pointwise("concat")
        self.bind(out, self.add(kind, op, nodes), layout)

    def _rolled(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        """A concat along a spatial dim of slices of one map that put its end before its
        start: a roll (how ONNX exporters and Keras write ``roll``); else not followed."""
        layout = self.layout(ins[0])
        axis = layout[dim % len(layout)]
        parents, pieces = set(), []
        for t in ins:
            node = self.graph.nodes.get(self.get(t)[0])
            if node is None or not isinstance(node.op, O.Slice) or self.layout(t) != layout:
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
        shifts = [0] * self.nd
        shifts[axis] = -first
        self.emit("roll", O.Roll(shifts), parents.pop(), layout, out)

    def stack(self, ins: Sequence[T], out: T, dim: int) -> None:
        layout = list(self.layout(ins[0]))
        layout.insert(dim % (len(layout) + 1), None)
        nodes = list(dict.fromkeys(self.get(t)[0] for t in ins))
        op = O.Merge("stack") if len(nodes) > 1 else O.Pointwise("stack")
        self.bind(out, self.add("stack", op, nodes), tuple(layout))

    def split(self, kind: str, x: T, outs: Sequence[T], dim: int, drop: bool = False) -> None:
        """Pieces along a non-spatial dim; ``drop`` removes the dim (unbind)."""
        if self.parts_of(x) is not None:
            return self.parts_split(x, outs, dim, drop)
        node, layout = self.get(x)
        dim %= len(layout)
        if layout[dim] is not None:
            raise Unknown(f"{kind} along a spatial dim")
        new = tuple(v for i, v in enumerate(layout) if i != dim) if drop else layout
        for o in outs:
            self.bind(o, node, new)

    def permute(self, x: T, out: T, perm: Sequence[int]) -> None:
        dims = self.parts_of(x)
        if dims is not None:
            return self.bind_parts(out, self.peek(x)[0], P.permute(dims, perm))
        node, layout = self.get(x)
        # a tensor with no shape may carry a layout of the wrong rank; it holds no
        # spatial axis (its positions were mixed upstream), so extra dims are None
        self.bind(out, node, tuple(layout[p % len(layout)] if p < len(layout) else None
                                   for p in perm))

    def view(self, x: T, out: T) -> None:
        """Views that keep every spatial dim whole (channel shuffles, flatten of 1x1)
        keep a plain layout; views that merge or split positions (tokens, window
        partitions) give the tensor parts (:mod:`.kernel_parts`)."""
        if x.shape is None or out.shape is None or None in x.shape or None in out.shape:
            raise Unknown("view with unknown shapes")
        if self.parts_of(x) is not None:
            return self.parts_view(x, out)
        node, layout = self.get(x)
        if not has_space(layout):
            return self._regrid(node, out)
        new = match_dims(x.shape, out.shape, layout)
        if new is not None:
            self.bind(out, node, new)
            return
        dims = [d for d, v in enumerate(layout) if v is not None]
        if len(dims) == self.nd and any(x.shape[d] > 1 for d in dims):
            # positions merged or split (tokens, window partitions): the parts say where
            return self.parts_view(x, out)
        self.bind(out, node, (None,) * len(out.shape))  # nothing spatial left to lose

    def _regrid(self, node: str, out: T) -> None:
        """A positionless tensor (tokens) viewed with a grid the network has had in
        consecutive dims (196 tokens as 14 x 14): global, broadcast onto that grid.
        Where the grid could sit in several places (64 channels on a 64 x 64 map), it
        is not guessed: the tensor stays positionless, and whatever reads it with a
        known layout (a convolution, a merge with a map) puts it on its grid."""
        shape = tuple(out.shape or ())
        places = [d for d in range(len(shape) - self.nd + 1)
                  if shape[d:d + self.nd] in self.grids
                  and all(v > 1 for v in shape[d:d + self.nd])]
        if len(places) != 1:
            return self.bind(out, node, (None,) * len(shape))
        d = places[0]
        layout = (None,) * d + tuple(range(self.nd)) + (None,) * (len(shape) - d - self.nd)
        grid = self.add("broadcast", O.Broadcast(shape[d:d + self.nd]),
                        [self.as_global(node) if node != INPUT else node])
        self.bind(out, grid, layout)
