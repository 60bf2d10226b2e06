"""Products on tensors whose axes are split or merged (see :mod:`.kernel_windows`):
matmul and einsum by their letters, and attention, where each output reads its
query and every key and value of its window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..core import ops as O
from . import kernel_parts as P
from . import kernel_tokens as K
from .kernel_state import T, Unknown
from .kernel_windows import Parts, _key


class Products:
    """Products and attention on tokens or windows, with the parts' helpers."""

    def __init__(self, parts: Parts) -> None:
        self.parts, self.state = parts, parts.state

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
        holding positions in two operands (scores q @ k^T) is read whole in the later.
        Extra tokens along a letter read so are joined in; along a free letter they
        stay beside the output's grid."""
        found: list[tuple[str, P.Dims | None, str, K.Tokens | None]] = []
        for t, lets in operands:
            dims = self.state.dims_of(t, tokens=True)
            if dims is not None and len(dims) != len(lets):
                raise Unknown(f"{kind} with broadcast dims")
            found.append((self.state.peek(t)[0], dims, lets, self.state.tokens_of(t)))
        if all(d is None for _, d, _, _ in found):
            raise Unknown(f"{kind} of positionless tensors")
        held: dict[str, tuple] = {}  # output letter -> the parts it holds
        nodes: list[tuple[str, bool]] = []
        loose: list[str | None] = []  # what extra tokens read along letters read whole
        kept: tuple[str, K.Tokens] | None = None  # the letter the output's tokens are on
        for node, dims, lets, tokens in found:
            if dims is None:
                nodes.append((node, True))
                continue
            read: list = []
            for at, (letter, parts) in enumerate(zip(lets, dims)):
                here = tokens is not None and tokens.dim == at
                if not P.spatial(parts):
                    continue
                if letter not in letters:
                    read += parts  # summed over
                elif letter in held:
                    if held[letter] != parts or here != (kept is not None and kept[0] == letter):
                        raise Unknown(f"{kind} of tensors holding positions differently")
                    continue
                elif any(P.overlap(parts, other) for other in held.values()):
                    read += parts  # positions a first operand holds already (k of q @ k^T)
                else:
                    held[letter] = parts
                    if here:
                        kept = (letter, tokens)  # type: ignore[assignment]
                    continue
                if here:
                    loose.append(tokens.node)  # type: ignore[union-attr]
            nodes.append((self.parts.mixed(kind, node, read), False))
        shape = out.shape or (1,) * len(letters)
        dims = tuple(held.get(x) or ((None, 0, int(n)),) for x, n in zip(letters, shape))
        tokens = None if kept is None else kept[1].moved(letters.index(kept[0]))
        read_any = any(free or n != m for (n, free), (m, _, _, _) in zip(nodes, found))
        self.parts.settle(kind, self.parts.joined(kind, nodes), P.tidy(dims), out, tokens, loose,
                    read=read_any)

    def attention(self, q: T, k: T, v: T, out: T, mask: T | None = None) -> None:
        """softmax(q @ k^T + mask) @ v: each output reads its query and every key and
        value of its window (the digits the keys' and values' token dim holds). Extra
        tokens among the keys and values are read by every query; extra tokens
        among the queries read every key and value. A mask computed per query (SAM's
        relative positions, from the queries) is read with its query's row."""
        ts = (q, k, v)
        found = [self.state.dims_of(t, tokens=True) for t in ts]
        if found[0] is None and found[1] is not None and found[2] is not None:
            return self.state.gather("attention", ts, out)  # a class token's query
        if None in found or out.shape is None:
            raise Unknown("attention of positionless tensors")
        rank = len(out.shape)
        tq, tk, tv = (K.shifted(self.state.tokens_of(t), rank - len(d))  # type: ignore[arg-type]
                      for t, d in zip(ts, found))
        dq, dk, dv = (((),) * (rank - len(d)) + tuple(d) for d in found)  # type: ignore[arg-type]
        lead = [_key(d[:-2], None) for d in (dq, dk, dv)]  # heads may differ (GQA)
        if lead[1] != lead[2] or dk[-2] != dv[-2]:
            raise Unknown("attention of tensors holding positions differently")
        pool = None if lead[0] == lead[1] else self._pooled(q, k, dq, dk)
        same = (tk and replace(tk, node=None)) == (tv and replace(tv, node=None))
        if not same or any(t is not None and t.dim != rank - 2 for t in (tq, tk, tv)):
            raise Unknown(f"attention {K.ON_TOKENS}")
        nodes = [(self.state.peek(q)[0], False)] + [
            (self._on_queries(self.parts.mixed("attention", self.state.peek(t)[0], d[-2]),
                              pool), False)
            for t, d in ((k, dk), (v, dv))]
        if mask is not None:
            nodes.append((self._mask_row(mask, dq, tq, rank), False))
        node = self.parts.joined("attention", nodes)
        dims = dq[:-1] + (((None, 0, int(out.shape[-1])),),)
        loose = [t.node for t in (tk, tv) if t is not None]
        self.parts.settle("attention", node, P.tidy(dims), out, tq, loose, read=True)


    def _pooled(self, q: T, k: T, dq: P.Dims, dk: P.Dims) -> list[int]:
        """Queries pooled inside each window (Hiera's mask units: a max over the query
        stride's digits): per axis the factor their grid is the keys' decimated by,
        where the queries' windows are the keys' so decimated and each pooled block
        lies inside one window; else not followed."""
        gq, gk = (self.state.graph.size_of(self.state.peek(t)[0]) for t in (q, k))
        factors = [b // a if a and b % a == 0 else 0 for a, b in zip(gq, gk)]
        windows = P.held(dk[:-2], self.state.nd)
        if 0 in factors or len(gq) != len(gk) or \
                _key(P.scaled(dk[:-2], factors), None) != _key(dq[:-2], None) or \
                any(ds and ds[0][0] % f for ds, f in zip(windows, factors)):
            raise Unknown("attention of tensors holding positions differently")
        return factors

    def _on_queries(self, mixed: str, pool: list[int] | None) -> str:
        """Keys and values read whole per window, on the pooled queries' grid: a block
        of the pool reads its own window, as each of its positions does."""
        if pool is None:
            return mixed
        return self.state.add("attention", O.Conv(pool, pool, 0, 1), [mixed])

    def _mask_row(self, mask: T, dq: P.Dims, tq: K.Tokens | None, rank: int) -> str:
        """The node of a mask whose rows hold the queries' positions (and tokens) as
        the queries do and whose columns hold none; else not followed."""
        dm = self.state.dims_of(mask, tokens=True)
        dm = None if dm is None else ((),) * (rank - len(dm)) + tuple(dm)
        tm = K.shifted(self.state.tokens_of(mask), rank - len(dm or ()))
        if dm is None or _key(dm[:-1], tm) != _key(dq[:-1], tq) or P.spatial(dm[-1]):
            raise Unknown("attention with a mask holding positions differently")
        return self.state.peek(mask)[0]
