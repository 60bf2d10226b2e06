"""The kernel's operators on tensors whose axes are split or merged (see
:mod:`.kernel_parts`): window partitions, tokens, attention inside windows.

Attention or a softmax over a dim that holds some digits of an axis reads every
value of those digits: a :class:`~rfield.core.ops.WindowMix` node (Swin's
windows, MaxViT's grid). A product with weights over such a dim contracts the
digits away: where they were the lowest (a patch merge), the positions left are
those of a window of that size and stride; where they were all of them (token
mixing), the result is global. Anything else raises :class:`Unknown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..core import ops as O
from ..core.graph import INPUT
from . import kernel_parts as P
from . import kernel_tokens as K
from .kernel_state import ON_PARTS, State, T, Unknown, one_by_one, tiled


def _key(dims: P.Dims, tokens: K.Tokens | None) -> tuple:
    """What tensors holding positions alike agree on: their spatial parts (dims holding
    no position may differ: a size-1 dim broadcast) and their extra tokens."""
    return (tuple(parts if P.spatial(parts) else None for parts in P.tidy(dims)),
            tokens and replace(tokens, node=None))


class Parts:
    """Operators on tensors that are not plain; the kernel's operator of the same
    kind hands its inputs here when one has split or merged axes."""

    def __init__(self, state: State) -> None:
        self.state = state

    # ------------------------------------------------------------------ helpers

    def mixed(self, kind: str, node: str, parts: Sequence[tuple]) -> str:
        """A node reading every value of the digits ``parts`` hold."""
        digits = P.digits(parts, self.state.nd)
        if not any(digits):
            return node
        grid = self.state.graph.size_of(node)
        if all(P.tiles(d, 1, n) for d, n in zip(digits, grid)):
            return self.state.add(kind, O.GlobalMix(), [node])
        if any(d and not _valid(d) for d in digits):
            raise Unknown(f"{kind} over digits that do not tile an axis")
        return self.state.add(kind, O.WindowMix(digits), [node])

    def settle(self, kind: str, node: str, dims: P.Dims, out: T,
               tokens: K.Tokens | None = None, loose: Sequence[str | None] = (),
               read: bool = False) -> None:
        """Bind ``out``, whose dims may hold only some digits of an axis (the rest
        contracted): the lowest missing are a window of their size and stride, all
        missing make it global. ``loose``: what extra tokens summed over read, joined
        in; ``tokens``: those left beside the grid of ``out``, which with ``read``
        have read every position summed over (and then read everything)."""
        grid = self.state.graph.size_of(node)
        held = P.held(dims, self.state.nd)
        also: list[str] = [n for n in dict.fromkeys(loose) if n is not None]
        if not any(held):  # every position contracted
            node = self.state.union(kind, [node, *also]) if also else \
                self.state.add(kind, O.GlobalPool(), [node])
            self.state.bind(out, node, (None,) * len(dims))
            return
        if self.state.reads_everything(node) and not also and tokens is None:
            # every unit reads everything already (MAnet's map after a global softmax):
            # whichever digits are left, each output reads everything
            return self.state.bind_parts(out, node, dims)
        high = P.high_digits(held, grid)
        if high is not None:  # all patches at one offset (MobileViTv2's context)
            node = self.state.add(kind, O.WindowMix(high), [node])
            if also or tokens is not None:
                raise Unknown(f"{kind} over some digits of an axis")
            self.state.bind_parts(out, node, dims)
            return
        factors = []
        for ds, n in zip(held, grid):
            low = ds[0][0] if ds else n
            if not ds or not P.tiles(ds, low, n):
                raise Unknown(f"{kind} over some digits of an axis")
            factors.append(low)
        if any(f > 1 for f in factors):
            node = self.state.add(kind, O.Conv(factors, factors, 0, 1), [node])
            dims = P.scaled(dims, factors)
        if also and not self.state.reads_everything(node):  # then it reads them already
            node = self.joined(kind, [(node, False)] + [(n, True) for n in also])
        if tokens is not None and (read or also):
            if not self.state.reads_everything(node):
                raise Unknown(f"{kind} over windows {K.ON_TOKENS}")
            tokens = replace(tokens, node=node)
        self.state.bind_parts(out, node, dims, tokens)

    def on_grid(self, node: str, grid: tuple[int, ...], positionless: bool) -> str:
        """``node`` on ``grid``: a positionless tensor's is global there; maps of
        another size are not followed."""
        if self.state.graph.size_of(node) == grid:
            return node
        if not positionless:
            raise Unknown("a product of maps of different sizes")
        source = self.state.as_global(node) if node != INPUT else node
        return self.state.add("broadcast", O.Broadcast(grid), [source])

    def aligned(self, ts: Sequence[T], rank: int, kind: str
                ) -> tuple[list, P.Dims, K.Tokens | None]:
        """Each input's node and parts, to ``rank`` dims; the parts (and the extra
        tokens beside them, the node they read left to the caller) they agree on."""
        found: list = []
        ref: tuple | None = None  # the parts agreed on, their key, the node holding them
        for t in ts:
            dims = self.state.dims_of(t, tokens=True)
            node = self.state.peek(t)[0]
            if dims is not None:
                extra = rank - len(dims)
                dims = ((),) * extra + tuple(dims)
                key = _key(dims, K.shifted(self.state.tokens_of(t), extra))
                if ref is None or key == ref[1]:
                    ref = ref or (dims, key, node)
                elif self._invariant(node, dims, ref[0]):  # read as ref holds them
                    dims = ref[0]
                elif self._invariant(ref[2], ref[0], dims):  # ref read as this holds
                    found = [(n, dims if d is not None else None) for n, d in found]
                    ref = (dims, key, node)
                elif self.state.reads_everything(node):  # where it holds them: moot
                    dims = None
                elif all(self.state.reads_everything(n) for n, d in found if d is not None):
                    found = [(n, None) for n, _ in found]  # so do those before: this leads
                    ref = (dims, key, node)
                else:
                    raise Unknown(f"{kind} of tensors holding positions differently")
            found.append((node, dims))
        assert ref is not None
        return found, ref[0], ref[1][1]

    def _invariant(self, node: str, dims: P.Dims, other: P.Dims) -> bool:
        """Whether ``dims`` of ``node`` (mixing digits) may be read as ``other``."""
        op = self.state.graph.nodes[node].op if node != INPUT else None
        return isinstance(op, O.WindowMix) and P.invariant(op.mixed, dims, other)

    # ------------------------------------------------------------------ operators

    def window(self, kind: str, x: T, out: T, kernel: Sequence[int], params: tuple,
               dims: Sequence[int] | None) -> None:
        """A window over ``dims`` (default the trailing ones) on split positions, the
        channel dims holding none: 1 x 1 with stride 1 reads each position alone (a
        window's projection); as wide as its stride over the lowest digits of axes in
        whole blocks (SAM2's Hiera pooling queries per window), the same blocks."""
        node, held, tokens = self.state.held(x)
        rank = len(held)
        window_dims = range(rank - len(kernel), rank) if dims is None else [d % rank for d in dims]
        channel_dims = [d for d in range(1, rank) if d not in window_dims]
        if out.rank not in (None, rank) or any(P.spatial(held[d]) for d in channel_dims):
            raise Unknown(f"{kind} {ON_PARTS}")
        if one_by_one(kernel, params[0], params[1], params[4]):
            node = self.state.add(kind, O.Pointwise(kind), [node])
        else:
            factors = P.blocks(held, window_dims, kernel, self.state.nd) \
                if tiled(kernel, params) else None
            if factors is None:
                raise Unknown(ON_PARTS)  # named by the adapter's operator
            op = {"maxpool": O.MaxPool, "avgpool": O.AvgPool}.get(kind, O.Conv)
            node = self.state.add(kind, op(factors, factors, 0, 1), [node])
            held = P.decimated(held, window_dims, factors)
        if out.shape is not None:  # the channels as many as the output has
            held = tuple(((None, 0, int(out.shape[d])),) if d in channel_dims and
                         out.shape[d] > 1 else () if d in channel_dims else parts
                         for d, parts in enumerate(held))
        self.state.bind_parts(out, node, held, tokens)

    def merge(self, kind: str, ins: Sequence[T], out: T) -> None:
        rank = out.rank if out.rank is not None else max(self.state.rank(t) for t in ins)
        found, dims, tokens = self.aligned(ins, rank, kind)
        if out.shape is not None:  # the positionless dims as broadcasting leaves them
            dims = P.tidy(tuple(parts if P.spatial(parts) else ((None, 0, int(n)),)
                                for parts, n in zip(dims, out.shape)))
        grid = next(self.state.graph.size_of(n) for n, d in found if d is not None)
        nodes = list(dict.fromkeys(self.on_grid(n, grid, d is None) for n, d in found))
        op = O.Merge(kind) if len(nodes) > 1 else O.Pointwise(kind)
        node = self.state.add(kind, op, nodes)
        if tokens is not None:  # they meet whatever positionless inputs read
            reads = [self.state.tokens_node(t) for t in ins] + \
                [n for n, d in found if d is None and n != INPUT]
            tokens = replace(tokens, node=self.state.reading_all(reads, node))
        self.state.bind_parts(out, node, dims, tokens)

    def view(self, x: T, out: T) -> None:
        node, dims, tokens = self.state.held(x)
        if out.shape is None or not P.has_space(dims):
            raise Unknown("view that splits positions unevenly")
        if tokens is not None:
            kept = K.reshape(dims, tokens, out.shape)
            if kept is None:
                raise Unknown(f"view that cuts the token dim {K.ON_TOKENS}")
            return self.state.bind_parts(out, node, *kept)
        new = P.reshape(dims, out.shape)
        if new is None and self.state.reads_everything(node):  # where they go is moot
            return self.state.bind(out, node, (None,) * len(out.shape))
        if new is None:
            raise Unknown("view that splits positions unevenly")
        self.state.bind_parts(out, node, new)

    def along(self, kind: str, x: T, out: T, dims: Sequence[int] | None) -> None:
        """Softmax or a norm over ``dims`` (None: all): reads every digit held there."""
        source, have, tokens = self.state.held(x)
        which = range(len(have)) if dims is None else [d % len(have) for d in dims]
        node = self.mixed(kind, source, [p for d in which for p in have[d]])
        if tokens is not None and tokens.dim in which:  # tokens and grid read each other
            if tokens.node is not None and not self.state.reads_everything(node):
                node = self.joined(kind, [(node, False), (tokens.node, True)])
            if not self.state.reads_everything(node):
                raise Unknown(f"{kind} over windows {K.ON_TOKENS}")
            tokens = replace(tokens, node=node)
        if node == source:
            node = self.state.add(kind, O.Pointwise(kind), [node])
        self.state.bind_parts(out, node, have, tokens)

    def reduce(self, kind: str, x: T, out: T, dims: Sequence[int], keep: bool) -> None:
        """A product with weights, or a reduction, over ``dims``."""
        node, have, tokens = self.state.held(x)
        assert out.shape is not None
        which = {d % len(have) for d in dims}
        if keep:
            new = P.blank(have, which, out.shape)
        else:
            new = tuple(p for d, p in enumerate(have) if d not in which)
        if tokens is not None and tokens.dim in which:  # tokens and grid summed together
            return self.settle(kind, node, new, out, loose=[tokens.node])
        if tokens is not None and not keep:
            tokens = K.shifted(tokens, -sum(d < tokens.dim for d in which))
        self.settle(kind, node, new, out, tokens)

    def expand(self, x: T, out: T) -> None:
        """Size-1 dims repeated: they hold no position."""
        node, have, tokens = self.state.held(x)
        if out.shape is None:
            raise Unknown(f"expand to an unknown shape {ON_PARTS}")
        extra = len(out.shape) - len(have)
        have = ((),) * extra + tuple(have)
        new = tuple(parts or ((None, 0, int(n)),) for parts, n in zip(have, out.shape))
        self.state.bind_parts(out, node, P.tidy(new), K.shifted(tokens, extra))

    def pad(self, x: T, out: T, pads: dict[int, tuple[int, int]], mode: str) -> None:
        """A pad of a tensor that is not plain (:func:`.kernel_tokens.padded`)."""
        node, dims, tokens = self.state.held(x)
        if out.shape is None:
            raise Unknown(f"pad to an unknown shape {ON_PARTS}")
        padded = K.padded(dims, tokens, pads, mode, out.shape)
        if padded is None:
            raise Unknown(f"pad {ON_PARTS}")
        self.state.bind_parts(out, self.state.add("pad", O.Pointwise("pad"), [node]), *padded)

    def joined(self, kind: str, nodes: Sequence[tuple[str, bool]]) -> str:
        """One node reading what each of ``nodes`` reads, on the grid of the ones with
        positions; (node, positionless) pairs. Keys and values read whole (a global
        node) join any grid: attention over a smaller map (Twins, PVT)."""
        loose = [n for n, free in nodes if free or self.state.is_global(n)]
        grids = {self.state.graph.size_of(n) for n, free in nodes if n not in loose}
        if not grids:  # every side read whole (channel attention: k^T @ v)
            return self.state.union(kind, [n for n, _ in nodes])
        if len(grids) != 1:
            raise Unknown(f"{kind} of maps of different sizes")
        grid = grids.pop()
        unique = list(dict.fromkeys(self.on_grid(n, grid, n in loose) for n, _ in nodes))
        if len(unique) == 1:
            return self.state.add(kind, O.Pointwise(kind), unique)
        return self.state.add(kind, O.Merge(kind, aligned=False), unique)


def _valid(digits: Sequence[tuple[int, int]]) -> bool:
    """Digits strictly increasing in stride, none overlapping the next."""
    return all(s * c <= s2 for (s, c), (s2, _) in zip(digits, digits[1:]))
