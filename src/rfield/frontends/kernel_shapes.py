"""The kernel's shape operators: concatenation, stacking, splitting, permutes and
views, which move dims around but read no new positions (see :mod:`.kernel`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ..core import ops as O
from ..core import rules as R
from ..core.graph import INPUT
from . import kernel_levels as L
from . import kernel_parts as P
from . import kernel_tokens as K
from .kernel_state import State, T, Unknown, has_space, match_dims
from .kernel_windows import Parts

Merge = Callable[[str, Sequence[T], T], None]
Pick = int | tuple  # an index, or a slice as (start, stop, step)


class Shapes:
    """Dims moved, merged or split; a concat of mixed and spatial inputs is a merge
    (the elementwise ``merge`` the kernel hands over)."""

    def __init__(self, state: State, parts: Parts, merge: Merge) -> None:
        self.state, self.parts, self.merge = state, parts, merge

    def concat(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        """``ins`` may name constants (tensors without an entry, key None): along the
        token dim of a grid they are extra tokens; anywhere else they change no field."""
        if any(self.state.has(t) and self.state.parts_of(t) is not None for t in ins):
            held = [self.state.held(t)[1] for t in ins if self.state.has(t)]
            if any(P.spatial(d[dim % len(d)]) for d in held if len(d)):
                return self._beside(kind, ins, out, dim)
            # tensors holding the same positions joined along a dim holding none
            # (rotary embeddings' halves): each output reads its own position in each,
            # as in an elementwise merge
            return self.merge(kind, [t for t in ins if self.state.has(t)], out)
        ins = [t for t in ins if self.state.has(t)]
        layouts = [self.state.layout(t) for t in ins]
        if any(lay[dim % len(lay)] is not None for lay in layouts):
            return self._rolled(kind, ins, out, dim)
        if len({has_space(lay) for lay in layouts}) > 1:  # some positions mixed upstream
            return self.merge(kind, ins, out)
        layout = layouts[0]
        nodes = list(dict.fromkeys(self.state.get(t)[0] for t in ins))
        op = O.Merge("concat") if len(nodes) > 1 else O.Pointwise("concat")
        self.state.bind(out, self.state.add(kind, op, nodes), layout)

    def join_levels(self, kind: str, ins: Sequence[T], out: T, dim: int) -> bool:
        """Several maps' flattened positions one after another along ``dim`` (a
        detector's anchors, :mod:`.kernel_levels`): True where ``ins`` are such maps
        or anchors along that dim, and then ``out`` holds them all."""
        if len(ins) < 2 or out.shape is None or not all(self.state.has(t) for t in ins):
            return False
        at = dim % len(out.shape)
        members: list = []
        for t in ins:
            levels = self.state.levels_of(t)
            if levels is not None:
                if levels.dim != at:
                    return False
                members += levels.members
                continue
            if self.state.parts_of(t) is None:  # a plain map: a roll, or not followed
                return False
            node, dims, tokens = self.state.held(t)
            if tokens is not None or len(dims) != len(out.shape) or \
                    not L.flat_grid(dims, at, self.state.graph.size_of(node)):
                return False
            members.append((node, dims))
        self.state.bind_levels(out, L.Levels(at, tuple(members)))
        return True

    def _beside(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        """Class, distillation or register tokens put before or after the patches of
        one grid (DINOv2 puts registers between its class token and the patches)."""
        grids = [t for t in ins if self.state.has(t) and P.has_space(self.state.held(t)[1])]
        if len(grids) != 1 or out.shape is None or any(t.shape is None for t in ins):
            raise Unknown(f"{kind} of tokens or windows")  # anchors of several maps
        node, dims, tokens = self.state.held(grids[0])
        dim %= len(dims)
        if any(P.spatial(parts) for d, parts in enumerate(dims) if d != dim) \
                or not P.spatial(dims[dim]) or (tokens is not None and tokens.dim != dim):
            raise Unknown(f"{kind} of tokens or windows")
        at = list(ins).index(grids[0])
        counts = [t.shape[dim] for t in ins]  # type: ignore[index]
        if None in counts:
            raise Unknown(f"{kind} of tokens of unknown count")
        before = int(sum(counts[:at])) + (tokens.before if tokens else 0)
        after = int(sum(counts[at + 1:])) + (tokens.after if tokens else 0)
        new = K.Tokens(dim, before, after)
        if new.size(dims[dim]) != out.shape[dim]:
            raise Unknown(f"{kind} of tokens or windows")
        if before == after == 0:  # only empty pieces beside the grid (x[:, :0])
            self.state.bind_parts(out, self.state.add(kind, O.Pointwise(kind), [node]), dims)
            return
        reads = [tokens.node if tokens else None]
        for t in ins:
            if t is not grids[0] and self.state.has(t):
                source = self.state.peek(t)[0]
                if source == INPUT:
                    raise Unknown(f"{kind} of tokens or windows")
                reads.append(self.state.tokens_node(t) or source)
        grid = self.state.add(kind, O.Pointwise(kind), [node])
        new = replace(new, node=self.state.reading_all(reads, grid))
        self.state.bind_parts(out, grid, dims, new)

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
        if any(self.state.parts_of(t) is not None for t in ins):
            return self._stack_parts(ins, out, dim)
        layout = list(self.state.layout(ins[0]))
        layout.insert(dim % (len(layout) + 1), None)
        nodes = list(dict.fromkeys(self.state.get(t)[0] for t in ins))
        op = O.Merge("stack") if len(nodes) > 1 else O.Pointwise("stack")
        self.state.bind(out, self.state.add("stack", op, nodes), tuple(layout))

    def _stack_parts(self, ins: Sequence[T], out: T, dim: int) -> None:
        """Tensors holding positions alike (rotary embeddings' halves) stacked."""
        rank = self.state.rank(ins[0])
        found, dims, tokens = self.parts.aligned(ins, rank, "stack")
        if any(d is None for _, d in found):
            raise Unknown("stack of positionless tensors and tokens or windows")
        nodes = list(dict.fromkeys(n for n, _ in found))
        node = self.state.add("stack", O.Merge("stack") if len(nodes) > 1
                              else O.Pointwise("stack"), nodes)
        at = dim % (rank + 1)
        new = tuple(dims[:at]) + (((None, 0, len(ins)),),) + tuple(dims[at:])
        if tokens is not None:
            reads = self.state.reading_all([self.state.tokens_node(t) for t in ins], node)
            tokens = replace(tokens, dim=tokens.dim + int(tokens.dim >= at), node=reads)
        self.state.bind_parts(out, node, P.tidy(new), tokens)

    def split(self, kind: str, x: T, outs: Sequence[T], dim: int, drop: bool = False) -> None:
        """Pieces along a dim: along one holding no position each piece holds what
        ``x`` does; along a plain spatial dim or the token dim each is a slice there.
        ``drop`` removes the dim (unbind)."""
        node, dims, tokens = self.state.held(x)
        dim %= len(dims)
        sizes = [] if drop else [int(o.shape[dim]) for o in outs if o.shape is not None]
        cuts = [(sum(sizes[:i]), sum(sizes[:i + 1])) for i in range(len(outs))] \
            if len(sizes) == len(outs) and not drop else None
        if tokens is not None and tokens.dim == dim:
            if cuts is None:
                raise Unknown(f"{kind} {K.ON_TOKENS}")
            for o, (a, b) in zip(outs, cuts):  # the class token, the grid
                self.select(x, o, list(range(len(dims))), [dim], {dim: (a, b, 1)})
            return
        if P.spatial(dims[dim]):
            if cuts is None or self.state.parts_of(x) is not None:
                raise Unknown(f"{kind} along a spatial dim")
            layout = self.state.get(x)[1]
            axis, nd = layout[dim], self.state.nd
            for o, (a, b) in zip(outs, cuts):
                start = [0] * nd
                stop: list[int | None] = [None] * nd
                start[axis], stop[axis] = a, b
                self.state.emit(kind, O.Slice(start, stop, [1] * nd), node, layout, o)
            return
        if drop and tokens is not None and tokens.dim > dim:
            tokens = K.shifted(tokens, -1)
        for o in outs:
            if drop:
                new = dims[:dim] + dims[dim + 1:]
            else:
                new = P.blank(dims, [dim], o.shape) if o.shape is not None else dims
            self.state.bind_parts(o, node, new, tokens)

    def select(self, x: T, out: T, source: Sequence[int | None], cut: Sequence[int],
               picks: dict[int, Pick] | None = None) -> None:
        """Indexing: output dim i is input dim ``source[i]`` (None: a new dim); the dims
        in ``cut`` are sliced and those in no ``source`` indexed away: neither may hold
        positions (qkv[0], a head's slice), but for the token dim, where ``picks``
        (per dim its index or (start, stop, step)) says what is kept: the class
        token, the grid without it, or all."""
        node, layout = self.state.peek(x)
        have = self.state.dims_of(x, tokens=True)
        tokens = self.state.tokens_of(x)
        gone = [d for d in range(len(layout)) if d not in source]
        if have is None or out.shape is None:
            if any(layout[d] is not None for d in list(cut) + gone):
                raise Unknown("indexing a spatial dim")
            self.state.bind(out, node, tuple(None if d is None else layout[d] for d in source))
            return
        if tokens is not None and tokens.dim in list(cut) + gone:
            at = tokens.dim
            tokens = self._pick_tokens(x, out, tokens, (picks or {}).get(at))
            if tokens is False:
                return
            cut = [d for d in cut if d != at]  # the grid is kept whole there
        if any(P.spatial(have[d]) for d in list(cut) + gone):
            raise Unknown("indexing a spatial dim")
        new = tuple(() if d is None else (((None, 0, int(out.shape[i])),) if d in cut
                                          else have[d]) for i, d in enumerate(source))
        if tokens is not None:
            tokens = tokens.moved(list(source).index(tokens.dim))
        self.state.bind_parts(out, node, P.tidy(new), tokens)

    def _pick_tokens(self, x: T, out: T, tokens: K.Tokens, pick: Pick | None):
        """The tokens left by a cut of the token dim (None: the grid alone), or False
        where only extra tokens are left: ``out`` is then bound, positionless, or
        left without an entry (a constant) while they have read nothing."""
        parts = self.state.held(x)[1][tokens.dim]
        if pick is None:
            raise Unknown(f"indexing {K.ON_TOKENS}")
        if isinstance(pick, int):
            i = pick % tokens.size(parts)
            pick = (i, i + 1, 1)
        kept = K.cut(tokens, parts, *pick)
        if kept is None:
            raise Unknown("indexing a spatial dim")
        if kept[0]:
            return kept[1]
        if tokens.node is None:  # a class token that has met no patch: still a constant
            return False
        token = self.state.add("token", O.GlobalPool(), [tokens.node])  # one unit
        self.state.bind(out, token, (None,) * len(out.shape or ()))
        return False

    def permute(self, x: T, out: T, perm: Sequence[int]) -> None:
        node, dims, tokens = self.state.held(x)
        self.state.bind_parts(out, node, P.permute(dims, perm), K.permuted(tokens, perm))

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
