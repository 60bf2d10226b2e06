"""The front-end kernel's bookkeeping: tensors (:class:`T`) and their layouts, node
names, unknown operators, and the layout helpers every operator uses. See
:mod:`.kernel` for the operator semantics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import ops as O
from ..core.graph import INPUT, Graph, Provenance
from ..errors import RfieldError, ShapeError, SpecError, UnsupportedError
from . import kernel_levels as L
from . import kernel_parts as P
from .kernel_levels import ON_LEVELS, Levels
from .kernel_tokens import ON_TOKENS, Tokens

Layout = tuple  # per tensor dim: the input axis it holds, or None
Shape = tuple  # per tensor dim: its size (None where the framework does not know)


class Unknown(Exception):
    """An operator (or a use of one) the kernel does not follow; the message names it."""


#: What an operator that does not know parts is told when it meets them.
ON_PARTS = "on positions split into windows or merged into tokens"


@dataclass(frozen=True)
class T:
    """A tensor as an adapter hands it over: its key and its shape (None if unknown).

    ``obj`` is kept alive with the entry: torch keys tensors by ``id``, so the tensor
    must outlive its key.
    """

    key: Hashable
    shape: Shape | None = None
    obj: Any = field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


def per_dim(value: Any, n: int) -> list:
    """One value per dim: a scalar repeated, a one-item list repeated, or the list."""
    if isinstance(value, (list, tuple)):
        vals = list(value)
        return vals * n if len(vals) == 1 else vals
    return [value] * n


def _trivial(i: int, n: int, kernel, stride, padding, dilation, output_padding) -> bool:
    """Whether a window leaves dim ``i`` (of ``n``) as it is: size 1, step 1, no padding."""
    pad = 0 if isinstance(padding, str) else per_dim(padding, n)[i]
    out_pad = 0 if output_padding is None else per_dim(output_padding, n)[i]
    return (per_dim(kernel, n)[i] == 1 and per_dim(stride, n)[i] == 1 and out_pad == 0
            and (pad == 0 or list(per_dim(pad, 2)) == [0, 0]))


def _without_trivial(layout: Layout, dims, kernel, stride, padding, dilation,
                     output_padding) -> tuple:
    """A window's dims and parameters less the positionless dims it leaves as they are."""
    n = len(kernel)
    dims = list(dims) if dims is not None else list(range(len(layout) - n, len(layout)))
    keep = [i for i, d in enumerate(dims) if layout[d] is not None
            or not _trivial(i, n, kernel, stride, padding, dilation, output_padding)]
    pick = lambda v: v if isinstance(v, str) else [per_dim(v, n)[i] for i in keep]
    return ([dims[i] for i in keep], [int(kernel[i]) for i in keep], pick(stride),
            pick(padding), pick(dilation), None if output_padding is None else pick(output_padding))


def one_by_one(kernel: Sequence[int], stride: Any, padding: Any, output_padding: Any) -> bool:
    """A window of 1 with stride 1 and no padding: each output reads its own position."""
    n = len(kernel)
    no_pad = padding in ("valid", "same", "same_lower") or all(
        v == 0 for v in np.ravel(per_dim(padding, n)))
    return all(int(k) == 1 for k in kernel) and all(
        int(v) == 1 for v in per_dim(stride, n)) and no_pad and (
        output_padding is None or all(int(v) == 0 for v in per_dim(output_padding, n)))


def tiled(kernel: Sequence[int], params: tuple) -> bool:
    """Whether a window (stride, padding, dilation, ceil_mode, output_padding) is as
    wide as its stride, unpadded and undilated: blocks side by side."""
    stride, padding, dilation, ceil_mode, output_padding = params
    n = len(kernel)
    return [int(k) for k in kernel] == [int(v) for v in per_dim(stride, n)] and \
        one_by_one([1] * n, 1, padding, output_padding) and not ceil_mode and \
        all(int(v) == 1 for v in per_dim(dilation, n))


def has_space(layout: Layout) -> bool:
    return any(a is not None for a in layout)


def match_dims(in_shape: Sequence[int], out_shape: Sequence[int], layout: Layout):
    """Layout of a view when every spatial dim survives whole, else None."""
    # walk both shapes grouping dims with equal products
    groups_in: list[list[int]] = []
    groups_out: list[list[int]] = []
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
    new: list = [None] * len(out_shape)
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


class State:
    """Tensors -> (node, layout), node names, unknown operators: the kernel's bookkeeping.

    ``naming(kind)`` gives the adapter's base name and module path for a node made
    now; ``where()`` says where the adapter is, for messages ("module 'layer1'").
    """

    def __init__(self, input_size, strict: bool, framework: str,
                 naming: Callable[[str], tuple[str, str | None]],
                 where: Callable[[], str]) -> None:
        self.graph = Graph(input_size)
        self.nd = self.graph.ndim
        self.strict, self.framework = strict, framework
        self.naming, self.where = naming, where
        # per tensor: its node, its parts (:mod:`.kernel_parts`), the object kept
        # alive, and the extra tokens beside its grid (:mod:`.kernel_tokens`) if any
        self.entries: dict[Hashable, tuple[str, P.Dims, Any, Tokens | None]] = {}
        self.counts: Counter = Counter()
        self.unknown_ops: Counter = Counter()
        self.unknown_at: dict[str, str] = {}  # operator -> where it was first met
        self.grids: set[tuple[int, ...]] = set()  # the spatial sizes nodes have had
        self.everything: dict[str, bool] = {}  # per node: reads every position
        # tensors holding anchors of several maps (:mod:`.kernel_levels`); their
        # entries hold no node, and every accessor below refuses them
        self.levels: dict[Hashable, Levels] = {}

    def reset(self) -> None:
        self.entries.clear()
        self.levels.clear()
        self.graph.clear()
        self.counts.clear()
        self.unknown_ops.clear()
        self.unknown_at.clear()
        self.grids.clear()
        self.everything.clear()

    # ------------------------------------------------------------------ tensors
    # One representation: every tensor has parts. A *plain* one holds each input
    # axis whole in one dim; its layout (per dim the axis it holds, or None) is what
    # most operators read, and :meth:`get` refuses a tensor that is not plain.

    def bind(self, t: T, node: str, layout: Layout) -> None:
        """Record that ``t`` is made by ``node`` and holds the input axes ``layout``."""
        self.levels.pop(t.key, None)
        self.entries[t.key] = (node, P.from_layout(layout, t.shape, self.graph.size_of(node)),
                               t.obj, None)

    def bind_parts(self, t: T, node: str, dims: P.Dims, tokens: Tokens | None = None) -> None:
        """Record that ``t`` holds the positions of ``node`` split or merged as ``dims``,
        with ``tokens`` beside the grid along one dim."""
        self.levels.pop(t.key, None)
        self.entries[t.key] = (node, tuple(dims), t.obj, tokens)

    def bind_levels(self, t: T, levels: Levels) -> None:
        """Record that ``t`` holds anchors of several maps, one after another."""
        self.entries[t.key] = ("", (), t.obj, None)
        self.levels[t.key] = levels

    def levels_of(self, t: T) -> Levels | None:
        return self.levels.get(t.key)

    def _entry(self, t: T) -> tuple:
        """A tensor's entry; one holding several maps' anchors has none to read."""
        if t.key in self.levels:
            raise Unknown(ON_LEVELS)
        return self.entries[t.key]

    def pieces(self, t: T) -> list[tuple[str, str, Layout]]:
        """What naming reads of a tensor, (suffix, node, layout) per piece: one (as
        :meth:`peek` reads it), or a member of several maps' anchors each (suffix
        ``[start:stop]``, its layout where the measurement finds its units)."""
        levels = self.levels.get(t.key)
        return [("", *self.peek(t))] if levels is None else L.pieces(levels)

    def _layout(self, node: str, dims: P.Dims) -> Layout | None:
        return P.to_layout(dims, self.graph.size_of(node))

    def held(self, t: T) -> tuple[str, P.Dims, Tokens | None]:
        """Node, parts and extra tokens of any tensor."""
        node, dims, _, tokens = self._entry(t)
        return node, dims, tokens

    def tokens_of(self, t: T) -> Tokens | None:
        return self._entry(t)[3]

    def parts_of(self, t: T) -> P.Dims | None:
        """The parts of a tensor that is not plain (split or merged axes, or tokens
        beside its grid, or anchors of several maps); else None."""
        if t.key in self.levels:  # its first map's: what adapters test is not None
            return self.levels[t.key].members[0][1]
        node, dims, _, tokens = self._entry(t)
        return dims if tokens is not None or self._layout(node, dims) is None else None

    def dims_of(self, t: T, tokens: bool = False) -> P.Dims | None:
        """The parts of a tensor holding positions; None for a positionless one. An
        operator that does not pass ``tokens`` does not follow extra tokens."""
        _, dims, _, extra = self._entry(t)
        if extra is not None and not tokens:
            raise Unknown(ON_TOKENS)
        return dims if P.has_space(dims) else None

    def copy(self, src: T, dst: T) -> None:
        """``dst`` is ``src`` (an identity, a call's argument)."""
        node, dims, _, tokens = self.entries[src.key]
        self.entries[dst.key] = (node, dims, dst.obj, tokens)
        if src.key in self.levels:
            self.levels[dst.key] = self.levels[src.key]
        else:
            self.levels.pop(dst.key, None)

    def forget(self, t: T) -> None:
        """Drop the entry of a tensor that only carried a result elsewhere."""
        self.entries.pop(t.key, None)
        self.levels.pop(t.key, None)

    def entry(self, key: Hashable):
        return self.entries.get(key)

    def has(self, t: T) -> bool:
        return t.key in self.entries

    def get(self, t: T) -> tuple[str, Layout]:
        """Node and layout; an operator that reads layouts cannot read parts."""
        node, dims, _, tokens = self._entry(t)
        layout = self._layout(node, dims)
        if tokens is not None:
            raise Unknown(ON_TOKENS)
        if layout is None:
            raise Unknown(ON_PARTS)
        return node, layout

    def peek(self, t: T) -> tuple[str, Layout]:
        """Node and layout for naming (a tensor with parts shows no spatial dim)."""
        node, dims, _, tokens = self._entry(t)
        layout = None if tokens is not None else self._layout(node, dims)
        return node, layout or (None,) * len(dims)

    def digits_layout(self, t: T) -> tuple | None:
        """A layout the measurement can find units in (:func:`.kernel_parts.units`)."""
        node, dims, _, tokens = self._entry(t)
        return P.units(dims, self.graph.size_of(node),
                       None if tokens is None else (tokens.dim, tokens.before))

    def layout(self, t: T) -> Layout:
        return self.get(t)[1]

    def rank(self, t: T) -> int:
        return t.rank if t.rank is not None else len(self._entry(t)[1])

    def sizes(self, shape: Shape | None, layout: Layout) -> tuple[int, ...] | None:
        """The spatial size of a tensor of ``shape`` laid out as ``layout``, or None."""
        dims = {a: d for d, a in enumerate(layout) if a is not None}
        if shape is None or len(dims) != self.nd or len(layout) != len(shape):
            return None
        size = tuple(shape[dims[a]] for a in range(self.nd))
        return None if None in size else size

    # ------------------------------------------------------------------ nodes

    def add(self, kind: str, op: O.Op, inputs: Iterable[str]) -> str:
        base, module = self.naming(kind)
        n = self.counts[base]
        name = base if n == 0 else f"{base}_{n}"
        while name in self.graph.nodes:
            n += 1
            name = f"{base}_{n}"
        self.counts[base] = n + 1
        try:
            self.graph.add(name, op, list(inputs), module=module)
        except (ShapeError, SpecError) as exc:
            raise type(exc)(f"{exc} (in {self.where()})") from None
        node = self.graph.nodes[name]
        self.grids.add(node.size)
        self.everything[name] = all(r.is_global for r in node.rules) or \
            any(self.reads_everything(i) for i in node.inputs)
        return name

    def emit(self, kind: str, op: O.Op, node: str, layout: Layout, out: T) -> str:
        """Add a node and bind ``out`` to it, checking its size against the framework's."""
        new = self.add(kind, op, [node])
        got = self.sizes(out.shape, layout)
        want = self.graph.nodes[new].size
        if got is not None and got != want:
            raise RfieldError(f"rfield computes size {list(want)} for {new} but {self.framework} "
                              f"makes {list(got)} (in {self.where()}); please report this model")
        self.bind(out, new, layout)
        return new

    def is_global(self, node: str) -> bool:
        """Whether ``node`` already reads everything."""
        return node != INPUT and self.graph.nodes[node].global_

    def reads_everything(self, node: str) -> bool:
        """Whether every output of ``node`` reads every input position: its own op is
        global on every axis, or it reads (through any input) a node that is. Kept
        as nodes are added, which is in order."""
        return node != INPUT and self.everything[node]

    def as_global(self, node: str) -> str:
        """``node`` if it already reads everything, else a global node over it."""
        if self.is_global(node):
            return node
        return self.add("mixed", O.GlobalPool(), [node])

    def tokens_node(self, t: T) -> str | None:
        """What the extra tokens beside ``t``'s grid read (None: nothing, or none)."""
        tokens = self._entry(t)[3]
        return None if tokens is None else tokens.node

    def reading_all(self, nodes: Iterable[str | None], beside: str) -> str | None:
        """The node extra tokens read once they have met ``nodes`` (None: constants
        that read nothing): ``beside``, the grid's node, where that reads everything
        already, else a node reading everything each of ``nodes`` reads."""
        found = list(dict.fromkeys(n for n in nodes if n is not None))
        if not found:
            return None
        if self.reads_everything(beside):
            return beside
        if len(found) == 1:
            return self.as_global(found[0])
        return self.union("tokens", found)

    def union(self, kind: str, nodes: Iterable[str]) -> str:
        """A node that reads everything its inputs read: each read whole, then the union."""
        unique = list(dict.fromkeys(nodes))
        pooled = [self.add(kind, O.GlobalPool(), [n]) for n in unique]
        return pooled[0] if len(pooled) == 1 else self.add(kind, O.Merge("add"), pooled)

    def mix(self, kind: str, ins: Sequence[T], out: T) -> None:
        """Attention, einsum: every output reads every position of every input."""
        node = self.union(kind, [self.get(t)[0] for t in ins])
        rank = out.rank if out.rank is not None else len(self.layout(ins[0]))
        self.bind(out, node, (None,) * rank)

    def gather(self, kind: str, ins: Sequence[T], out: T) -> None:
        """``out`` reads every position every input holds, extra tokens included (a
        constant query attending over keys and values): positionless."""
        node = self.union(kind, [self.peek(t)[0] for t in ins] +
                          [n for n in (self.tokens_node(t) for t in ins) if n is not None])
        self.bind(out, node, (None,) * (out.rank or 0))

    # ------------------------------------------------------------------ fallbacks

    def unknown(self, what: str, ins: Sequence[T], outs: Sequence[T], op: str = "") -> None:
        """An operator rfield does not follow: its outputs read the whole input there.
        (``op`` names the operator when ``what`` only says it met parts.)

        An operator on tensors with no spatial axis left (one position per axis, or
        positions already mixed upstream) cannot move data across positions: the
        field is unchanged, and nothing is reported.
        """
        # anchors of several maps: each map read whole
        levels = [n for t in ins if t.key in self.levels for n in self.levels[t.key].nodes]
        ins = [t for t in ins if t.key not in self.levels]
        sources = list(dict.fromkeys(levels + [self.peek(t)[0] for t in ins]))
        sources += [n for n in dict.fromkeys(self.tokens_node(t) for t in ins)
                    if n is not None and n not in sources]
        if len(sources) == 1 and not levels and \
                not any(P.has_space(self.held(t)[1]) for t in ins):
            for o in outs:
                self.bind(o, sources[0], (None,) * (o.rank if o.rank is not None
                                                    else len(self.peek(ins[0])[1])))
            return
        if what in (ON_PARTS, ON_LEVELS) and op:
            what = f"{op} {what}"
        self.unknown_ops[what] += 1
        self.unknown_at.setdefault(what, self.where())
        node = self.union(what.strip("_"), sorted(sources))
        ref = self.peek(ins[0])[1] if ins else ()
        for o in outs:
            layout = ref if o.rank in (None, len(ref)) else (None,) * o.rank
            size = self.sizes(o.shape, layout)
            if size is not None:  # global, on the grid the output really has
                self.bind(o, self.add("broadcast", O.Broadcast(size), [node]), layout)
            else:
                self.bind(o, node, layout)

    # ------------------------------------------------------------------ the end

    def finish(self, **provenance: Any) -> Graph:
        """The graph with its provenance; with ``strict``, every unknown operator at once."""
        if self.strict and self.unknown_ops:
            listed = "; ".join(f"{op} ({count} x, first in {self.unknown_at[op]})"
                               for op, count in sorted(self.unknown_ops.items()))
            raise UnsupportedError(
                f"operators not known to rfield: {listed}. Without strict=True they are "
                "taken to read the whole input; 'rfield verify' measures the real field")
        self.graph.set_provenance(Provenance(unknown_ops=dict(self.unknown_ops), **provenance))
        return self.graph
