"""Attention on tensors whose axes are split or merged (see :mod:`.kernel_windows`):
each output reads its query and every key and value of its window."""

from __future__ import annotations

from dataclasses import replace

from ..core import ops as O
from . import kernel_parts as P
from . import kernel_tokens as K
from .kernel_state import T, Unknown
from .kernel_windows import Parts, _key


class Attention:
    """``softmax(q @ k^T) @ v`` on tokens or windows, with the parts' helpers."""

    def __init__(self, parts: Parts) -> None:
        self.parts, self.state = parts, parts.state

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
