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

from ..core import ops as O
from ..core.graph import INPUT
from . import kernel_parts as P
from .kernel_state import ON_PARTS, State, T, Unknown


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

    def settle(self, kind: str, node: str, dims: P.Dims, out: T) -> None:
        """Bind ``out``, whose dims may hold only some digits of an axis (the rest
        contracted): the lowest missing are a window of their size and stride, all
        missing make it global."""
        grid = self.state.graph.size_of(node)
        held = P.held(dims, self.state.nd)
        if not any(held):  # every position contracted
            self.state.bind(out, self.state.add(kind, O.GlobalPool(), [node]), (None,) * len(dims))
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
        self.state.bind_parts(out, node, dims)

    def on_grid(self, node: str, grid: tuple[int, ...], positionless: bool) -> str:
        """``node`` on ``grid``: a positionless tensor's is global there; maps of
        another size are not followed."""
        if self.state.graph.size_of(node) == grid:
            return node
        if not positionless:
            raise Unknown("a product of maps of different sizes")
        source = self.state.as_global(node) if node != INPUT else node
        return self.state.add("broadcast", O.Broadcast(grid), [source])

    def aligned(self, ts: Sequence[T], rank: int, kind: str) -> tuple[list, P.Dims]:
        """Each input's node and parts, to ``rank`` dims; the parts they agree on."""
        found: list = []
        ref: P.Dims | None = None
        for t in ts:
            dims = self.state.dims_of(t)
            if dims is not None:
                dims = ((),) * (rank - len(dims)) + tuple(dims)
                if ref is not None and P.tidy(dims) != P.tidy(ref):
                    raise Unknown(f"{kind} of tensors holding positions differently")
                ref = dims
            found.append((self.state.peek(t)[0], dims))
        assert ref is not None
        return found, ref

    # ------------------------------------------------------------------ operators

    def merge(self, kind: str, ins: Sequence[T], out: T) -> None:
        rank = out.rank if out.rank is not None else max(self.state.rank(t) for t in ins)
        found, dims = self.aligned(ins, rank, kind)
        grid = next(self.state.graph.size_of(n) for n, d in found if d is not None)
        nodes = list(dict.fromkeys(self.on_grid(n, grid, d is None) for n, d in found))
        op = O.Merge(kind) if len(nodes) > 1 else O.Pointwise(kind)
        self.state.bind_parts(out, self.state.add(kind, op, nodes), dims)

    def view(self, x: T, out: T) -> None:
        dims = self.state.dims_of(x)
        new = None if dims is None or out.shape is None else P.reshape(dims, out.shape)
        if new is None:
            raise Unknown("view that splits positions unevenly")
        self.state.bind_parts(out, self.state.peek(x)[0], new)

    def along(self, kind: str, x: T, out: T, dims: Sequence[int] | None) -> None:
        """Softmax or a norm over ``dims`` (None: all): reads every digit held there."""
        have = self.state.dims_of(x)
        assert have is not None
        which = range(len(have)) if dims is None else [d % len(have) for d in dims]
        parts = [p for d in which for p in have[d]]
        node = self.mixed(kind, self.state.peek(x)[0], parts)
        if node == self.state.peek(x)[0]:
            node = self.state.add(kind, O.Pointwise(kind), [node])
        self.state.bind_parts(out, node, have)

    def reduce(self, kind: str, x: T, out: T, dims: Sequence[int], keep: bool) -> None:
        """A product with weights, or a reduction, over ``dims``."""
        have = self.state.dims_of(x)
        assert have is not None and out.shape is not None
        which = {d % len(have) for d in dims}
        if keep:
            new = P.blank(have, which, out.shape)
        else:
            new = tuple(p for d, p in enumerate(have) if d not in which)
        self.settle(kind, self.state.peek(x)[0], new, out)

    def expand(self, x: T, out: T) -> None:
        """Size-1 dims repeated: they hold no position."""
        have = self.state.dims_of(x)
        assert have is not None
        if out.shape is None:
            raise Unknown(f"expand to an unknown shape {ON_PARTS}")
        have = ((),) * (len(out.shape) - len(have)) + tuple(have)
        new = tuple(parts or ((None, 0, int(n)),) for parts, n in zip(have, out.shape))
        self.state.bind_parts(out, self.state.peek(x)[0], P.tidy(new))

    def split(self, x: T, outs: Sequence[T], dim: int, drop: bool) -> None:
        have = self.state.dims_of(x)
        assert have is not None
        dim %= len(have)
        if P.spatial(have[dim]):
            raise Unknown("split of a dim holding positions")
        for o in outs:
            if drop:
                new = have[:dim] + have[dim + 1:]
            else:
                new = P.blank(have, [dim], o.shape) if o.shape is not None else have
            self.state.bind_parts(o, self.state.peek(x)[0], new)

    def select(self, x: T, out: T, source: Sequence[int | None], cut: Sequence[int]) -> None:
        """Indexing: output dim i is input dim ``source[i]`` (None: a new dim); the dims
        in ``cut`` are sliced and those in no ``source`` indexed away: neither may hold
        positions (qkv[0], a head's slice)."""
        node, layout = self.state.peek(x)
        have = self.state.dims_of(x)
        gone = [d for d in range(len(layout)) if d not in source]
        if have is None or out.shape is None:
            if any(layout[d] is not None for d in list(cut) + gone):
                raise Unknown("indexing a spatial dim")
            self.state.bind(out, node, tuple(None if d is None else layout[d] for d in source))
            return
        if any(P.spatial(have[d]) for d in list(cut) + gone):
            raise Unknown("indexing a spatial dim")
        new = tuple(() if d is None else (((None, 0, int(out.shape[i])),) if d in cut
                                          else have[d]) for i, d in enumerate(source))
        self.state.bind_parts(out, node, P.tidy(new))

    def product(self, kind: str, a: T, b: T, out: T) -> None:
        """``a @ b`` of two input-dependent tensors (attention scores, then values)."""
        rank = out.rank if out.rank is not None else max(self.state.rank(a), self.state.rank(b))
        if rank < 2:
            raise Unknown(f"{kind} of vectors")
        batch = "abcdefgh"[:rank - 2]
        ra, rb = self.state.rank(a), self.state.rank(b)
        self.contract(kind, [(a, (batch + "ij")[-ra:]), (b, (batch + "jk")[-rb:])],
                      out, batch + "ik")

    def einsum(self, kind: str, equation: str, operands: Sequence[T | None], out: T) -> None:
        """An einsum read by its letters (``operands``: None for a constant one); an
        equation with an ellipsis or no output letters reads every position."""
        eq = equation.replace(" ", "")
        ins = eq.split("->")[0].split(",")
        tracked = [t for t in operands if t is not None]
        if "->" not in eq or "." in eq or len(ins) != len(operands):
            return self.state.mix(kind, tracked, out)
        self.contract(kind, [(t, lets) for t, lets in zip(operands, ins) if t is not None],
                      out, eq.split("->")[1])

    def contract(self, kind: str, operands: Sequence[tuple[T, str]], out: T,
                 letters: str) -> None:
        """A product of input-dependent tensors written as einsum letters: each output
        reads, in every operand, every digit held along a summed letter; a free letter
        holding positions in two operands (scores q @ k^T) is read whole in the later."""
        found: list[tuple[str, P.Dims | None, str]] = []
        for t, lets in operands:
            dims = self.state.dims_of(t)
            if dims is not None and len(dims) != len(lets):
                raise Unknown(f"{kind} with broadcast dims")
            found.append((self.state.peek(t)[0], dims, lets))
        if all(d is None for _, d, _ in found):
            raise Unknown(f"{kind} of positionless tensors")
        held: dict[str, tuple] = {}  # output letter -> the parts it holds
        nodes: list[tuple[str, bool]] = []
        for node, dims, lets in found:
            if dims is None:
                nodes.append((node, True))
                continue
            read: list = []
            for letter, parts in zip(lets, dims):
                if not P.spatial(parts):
                    continue
                if letter not in letters:
                    read += parts  # summed over
                elif letter in held:
                    if held[letter] != parts:
                        raise Unknown(f"{kind} of tensors holding positions differently")
                elif any(P.overlap(parts, other) for other in held.values()):
                    read += parts  # positions a first operand holds already (k of q @ k^T)
                else:
                    held[letter] = parts
            nodes.append((self.mixed(kind, node, read), False))
        shape = out.shape or (1,) * len(letters)
        dims = tuple(held.get(x) or ((None, 0, int(n)),) for x, n in zip(letters, shape))
        self.settle(kind, self.joined(kind, nodes), P.tidy(dims), out)

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

    def attention(self, q: T, k: T, v: T, out: T) -> None:
        """softmax(q @ k^T) @ v: each output reads its query and every key and value
        of its window (the digits the keys' and values' token dim holds)."""
        dq, dk, dv = (self.state.dims_of(t) for t in (q, k, v))
        if dq is None or dk is None or dv is None or out.shape is None:
            raise Unknown("attention of positionless tensors")
        rank = len(out.shape)
        dq, dk, dv = (((),) * (rank - len(d)) + tuple(d) for d in (dq, dk, dv))
        if not (dq[:-2] == dk[:-2] == dv[:-2]) or dk[-2] != dv[-2]:
            raise Unknown("attention of tensors holding positions differently")
        nodes = [(self.state.peek(q)[0], False)] + [
            (self.mixed("attention", self.state.peek(t)[0], d[-2]), False)
            for t, d in ((k, dk), (v, dv))]
        node = self.joined("attention", nodes)
        dims = dq[:-1] + (((None, 0, int(out.shape[-1])),),)
        self.settle("attention", node, P.tidy(dims), out)


def _valid(digits: Sequence[tuple[int, int]]) -> bool:
    """Digits strictly increasing in stride, none overlapping the next."""
    return all(s * c <= s2 for (s, c), (s2, _) in zip(digits, digits[1:]))
