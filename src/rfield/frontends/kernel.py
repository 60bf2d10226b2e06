"""The front-end kernel: what is true of tensors whatever the framework, written once.

A front-end adapter (PyTorch, ONNX, and the ones to come) only turns its own
unit of work (a torch function call, an ONNX node) into one call here: an
operator kind, its parameters, the input tensors and the output tensors, each
handed over as a :class:`T` (a key the adapter chooses and the shape the
framework reports). The kernel keeps, for each tensor, the graph node that made
it and its *layout*: which tensor dimension holds which spatial axis of the
network input (None for batch, channels and anything whose positions were
mixed). From that it knows, for every framework alike, what permutes and views
do, how broadcasting and merges read, when a reduction mixes positions, and
what to do with an operator nobody knows (read the whole input there, and say
so once, with a count).

A handler that cannot follow its operator raises :class:`Unknown`; the adapter's
dispatch then calls :meth:`Kernel.unknown`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import ops as O
from ..core.graph import INPUT, Graph, Provenance
from ..errors import RfieldError, ShapeError, SpecError, UnsupportedError

Layout = tuple  # per tensor dim: the input axis it holds, or None
Shape = tuple  # per tensor dim: its size (None where the framework does not know)


class Unknown(Exception):
    """An operator (or a use of one) the kernel does not follow; the message names it."""


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


WINDOWS: dict[str, type[O.Conv]] = {
    "conv": O.Conv, "maxpool": O.MaxPool, "avgpool": O.AvgPool, "lppool": O.LpPool}


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
        self.entries: dict[Hashable, tuple[str, Layout, Any]] = {}
        self.counts: Counter = Counter()
        self.unknown_ops: Counter = Counter()
        self.unknown_at: dict[str, str] = {}  # operator -> where it was first met
        self.grids: set[tuple[int, ...]] = set()  # the spatial sizes nodes have had

    def reset(self) -> None:
        self.entries.clear()
        self.graph.clear()
        self.counts.clear()
        self.unknown_ops.clear()
        self.unknown_at.clear()
        self.grids.clear()

    # ------------------------------------------------------------------ tensors

    def bind(self, t: T, node: str, layout: Layout) -> None:
        """Record that ``t`` is made by ``node`` and holds the input axes ``layout``."""
        self.entries[t.key] = (node, tuple(layout), t.obj)

    def entry(self, key: Hashable):
        return self.entries.get(key)

    def has(self, t: T) -> bool:
        return t.key in self.entries

    def get(self, t: T) -> tuple[str, Layout]:
        node, layout, _ = self.entries[t.key]
        return node, layout

    def layout(self, t: T) -> Layout:
        return self.entries[t.key][1]

    def rank(self, t: T) -> int:
        return t.rank if t.rank is not None else len(self.layout(t))

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
        self.grids.add(self.graph.nodes[name].size)
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

    def as_global(self, node: str) -> str:
        """``node`` if it already reads everything, else a global node over it."""
        if node != INPUT and self.graph.nodes[node].global_:
            return node
        return self.add("mixed", O.GlobalPool(), [node])

    def union(self, kind: str, nodes: Iterable[str]) -> str:
        """A node that reads everything its inputs read: each read whole, then the union."""
        unique = list(dict.fromkeys(nodes))
        pooled = [self.add(kind, O.GlobalPool(), [n]) for n in unique]
        return pooled[0] if len(pooled) == 1 else self.add(kind, O.Merge("add"), pooled)

    # ------------------------------------------------------------------ fallbacks

    def unknown(self, what: str, ins: Sequence[T], outs: Sequence[T]) -> None:
        """An operator rfield does not follow: its outputs read the whole input there.

        An operator on tensors with no spatial axis left (one position per axis, or
        positions already mixed upstream) cannot move data across positions: the
        field is unchanged, and nothing is reported.
        """
        sources = list(dict.fromkeys(self.get(t)[0] for t in ins))
        if len(sources) == 1 and not any(has_space(self.layout(t)) for t in ins):
            for o in outs:
                self.bind(o, sources[0], (None,) * (o.rank if o.rank is not None
                                                    else len(self.layout(ins[0]))))
            return
        self.unknown_ops[what] += 1
        self.unknown_at.setdefault(what, self.where())
        node = self.union(what.strip("_"), sorted(sources))
        ref = self.layout(ins[0])
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


class Kernel(State):
    """The framework-neutral operator semantics, one method per operator kind."""

    def spatial(self, x: T) -> tuple[str, Layout]:
        """Node and layout of a tensor used as N, C, *spatial by a window operator.

        A tensor whose positions were mixed has lost its spatial dims. Reshaped to a
        grid the network has had (ViT tokens to 14 x 14), it is global, broadcast onto
        that grid; else (a detector's anchors viewed as 4 x 8400) it stays positionless.
        """
        node, layout = self.get(x)
        if has_space(layout) or x.shape is None or len(x.shape) != self.nd + 2 \
                or None in x.shape:
            return node, layout
        size = tuple(int(n) for n in x.shape[2:])
        if size not in self.grids:
            return node, layout
        if node != INPUT:
            node = self.as_global(node)
        new = self.add("broadcast", O.Broadcast(size), [node])
        layout = (None, None) + tuple(range(self.nd))
        self.bind(x, new, layout)
        return new, layout

    def window_order(self, x: T, nsp: int, what: str,
                     dims: Sequence[int] | None = None) -> tuple[str, Layout, list[int]]:
        """For an operator over ``dims`` (default: the trailing ``nsp`` dims, as in
        NCHW; NHWC passes [1, 2]): node, layout, and for each input axis the index
        of its dim among ``dims``."""
        node, layout = self.spatial(x)
        dims = range(len(layout) - nsp, len(layout)) if dims is None else dims
        axes = [layout[d] for d in dims]
        if nsp != self.nd or None in axes or sorted(axes) != list(range(nsp)):
            raise Unknown(f"{what} over non-spatial dims")
        return node, layout, [axes.index(a) for a in range(self.nd)]

    # ------------------------------------------------------------------ elementwise

    def pointwise(self, kind: str, x: T, outs: Sequence[T]) -> None:
        node, layout = self.get(x)
        for o in outs:
            if o.shape is not None and x.shape is not None and tuple(o.shape) != tuple(x.shape):
                raise Unknown(kind)
            self.bind(o, self.add(kind, O.Pointwise(kind), [node]), layout)

    def merge(self, kind: str, ins: Sequence[T], out: T) -> None:
        """Elementwise operators of several tensors, with broadcasting."""
        out_rank = out.rank if out.rank is not None else max(self.rank(t) for t in ins)
        spatial = [self.layout(t) for t in ins
                   if has_space(self.layout(t)) and self.rank(t) == out_rank]
        inputs: list[str] = []
        out_layout = None
        for src in ins:
            node, layout = self.get(src)
            if spatial and not has_space(layout):
                # positions mixed upstream (attention): global, broadcast onto the grid
                size = self.sizes(out.shape, spatial[0])
                if size is not None:
                    inputs.append(self.add("broadcast", O.Broadcast(size),
                                           [self.as_global(node)]))
                    continue
            extra = out_rank - self.rank(src)
            layout = (None,) * extra + tuple(layout)
            node = self._broadcast(node, src, layout, out, extra)
            if out_layout is None or (extra == 0 and self.sizes(src.shape, layout)):
                out_layout = layout
            inputs.append(node)
        inputs = list(dict.fromkeys(inputs))
        op = O.Merge(kind) if len(inputs) > 1 else O.Pointwise(kind)
        assert out_layout is not None  # some input holds the spatial axes
        self.bind(out, self.add(kind, op, inputs), out_layout)

    def _broadcast(self, node: str, src: T, layout: Layout, out: T, extra: int) -> str:
        """A size-1 spatial dim broadcast against a larger one reads everything there."""
        if src.shape is None or out.shape is None:
            return node
        grow = any(ax is not None and d >= extra and src.shape[d - extra] == 1
                   and (out.shape[d] or 0) > 1 for d, ax in enumerate(layout))
        size = self.sizes(out.shape, layout)
        if not grow or size is None:
            return node
        return self.add("broadcast", O.Broadcast(size), [node])

    def expand(self, x: T, out: T) -> None:
        node, layout = self.get(x)
        extra = (out.rank or 0) - self.rank(x)
        layout = (None,) * extra + tuple(layout)
        self.bind(out, self._broadcast(node, x, layout, out, extra), layout)

    # ------------------------------------------------------------------ windows

    def window(self, kind: str, x: T, out: T, kernel: Sequence[int], stride: Any = 1,
               padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               output_padding: Any = None, dims: Sequence[int] | None = None) -> None:
        """A convolution or pooling window over ``dims`` (default: the trailing
        ``len(kernel)`` dims).

        Parameters are in the framework's dim order (one value, or one per dim;
        padding may also be a word or [before, after] per dim); the kernel puts
        them in input-axis order. ``output_padding`` makes it a transposed conv.
        """
        if len(kernel) > self.nd and has_space(self.layout(x)):
            # jax2onnx pools a 6-D (1, 1, N, H, W, C) view with windows of 1 on N and C
            dims, kernel, stride, padding, dilation, output_padding = _without_trivial(
                self.layout(x), dims, kernel, stride, padding, dilation, output_padding)
        nsp = len(kernel)
        node, layout, order = self.window_order(x, nsp, kind, dims)
        perm = lambda v: [per_dim(v, nsp)[i] for i in order]
        pad = padding if isinstance(padding, str) else perm(padding)
        k = [int(v) for v in perm(kernel)]
        s, d = [int(v) for v in perm(stride)], [int(v) for v in perm(dilation)]
        op: O.Op
        if output_padding is not None:
            op = O.ConvTranspose(k, s, pad, [int(v) for v in perm(output_padding)], d)
        else:
            op = WINDOWS[kind](k, s, pad, d, ceil_mode=bool(ceil_mode))
        self.emit(kind, op, node, layout, out)

    def adaptive(self, x: T, out: T, nsp: int) -> None:
        """Adaptive pooling to the output's size (global when that is 1 everywhere)."""
        node, layout, _ = self.window_order(x, nsp, "adaptive pooling")
        size = self.sizes(out.shape, layout)
        if size is None:
            raise Unknown("adaptive pooling to an unknown size")
        if size == (1,) * nsp:
            self.emit("avgpool", O.GlobalPool(), node, layout, out)
        else:
            self.emit("adaptivepool", O.AdaptivePool(list(size)), node, layout, out)

    def global_pool(self, kind: str, x: T, out: T) -> None:
        """Global pooling that keeps the rank (size-1 spatial dims)."""
        node, layout = self.get(x)
        self.bind(out, self.add(kind, O.GlobalPool(), [node]), layout)

    def blocks(self, x: T, out: T, op: O.Op) -> None:
        """Pixel (un)shuffle, DepthToSpace, SpaceToDepth: channels <-> the spatial dims."""
        node, layout = self.get(x)
        if tuple(layout[-self.nd:]) != tuple(range(self.nd)) or self.nd != 2:
            raise Unknown(op.kind)
        self.emit(op.kind, op, node, layout, out)

    def pad(self, x: T, out: T, pads: dict[int, tuple[int, int]], mode: str) -> None:
        """Pad per tensor dim ``{dim: (before, after)}``; negative amounts crop."""
        node, layout = self.get(x)
        dims = {a: d for d, a in enumerate(layout) if a is not None}
        amounts = [list(pads.get(dims.get(ax, -1), (0, 0))) for ax in range(self.nd)]
        if any(b < 0 or e < 0 for b, e in amounts):
            node = self.add("crop", O.Crop([[-min(b, 0), -min(e, 0)] for b, e in amounts]),
                            [node])
            amounts = [[max(b, 0), max(e, 0)] for b, e in amounts]
        self.emit("pad", O.Pad(amounts, mode), node, layout, out)

    def slice(self, kind: str, x: T, out: T, cuts: dict[int, tuple[int, int | None, int]],
              out_layout: Layout | None = None) -> None:
        """Python slicing per tensor dim ``{dim: (start, stop, step)}``; cuts of
        channels or batch change no field."""
        node, layout = self.get(x)
        start, step = [0] * self.nd, [1] * self.nd
        stop: list[int | None] = [None] * self.nd
        touched = False
        for d, (a, b, st) in cuts.items():
            ax = layout[d]
            if ax is None:
                continue
            if st < 1:
                raise Unknown(f"{kind} with a negative step")
            size = x.shape[d] if x.shape is not None else None
            start[ax], step[ax] = int(a), int(st)
            stop[ax] = None if b is None or (size is not None and b >= size) else int(b)
            touched = True
        if out_layout is not None:
            layout = out_layout
        if touched:
            self.emit(kind, O.Slice(start, stop, step), node, layout, out)
        else:
            self.bind(out, node, layout)

    # ------------------------------------------------------------------ shape

    def concat(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        layouts = [self.layout(t) for t in ins]
        if any(lay[dim % len(lay)] is not None for lay in layouts):
            raise Unknown(f"{kind} along a spatial dim")
        if len({has_space(lay) for lay in layouts}) > 1:  # some positions mixed upstream
            return self.merge(kind, ins, out)
        layout = layouts[0]
        nodes = list(dict.fromkeys(self.get(t)[0] for t in ins))
        op = O.Merge("concat") if len(nodes) > 1 else O.Pointwise("concat")
        self.bind(out, self.add(kind, op, nodes), layout)

    def stack(self, ins: Sequence[T], out: T, dim: int) -> None:
        layout = list(self.layout(ins[0]))
        layout.insert(dim % (len(layout) + 1), None)
        nodes = list(dict.fromkeys(self.get(t)[0] for t in ins))
        op = O.Merge("stack") if len(nodes) > 1 else O.Pointwise("stack")
        self.bind(out, self.add("stack", op, nodes), tuple(layout))

    def split(self, kind: str, x: T, outs: Sequence[T], dim: int, drop: bool = False) -> None:
        """Pieces along a non-spatial dim; ``drop`` removes the dim (unbind)."""
        node, layout = self.get(x)
        dim %= len(layout)
        if layout[dim] is not None:
            raise Unknown(f"{kind} along a spatial dim")
        new = tuple(v for i, v in enumerate(layout) if i != dim) if drop else layout
        for o in outs:
            self.bind(o, node, new)

    def permute(self, x: T, out: T, perm: Sequence[int]) -> None:
        node, layout = self.get(x)
        # a tensor with no shape may carry a layout of the wrong rank; it holds no
        # spatial axis (its positions were mixed upstream), so extra dims are None
        self.bind(out, node, tuple(layout[p % len(layout)] if p < len(layout) else None
                                   for p in perm))

    def view(self, x: T, out: T) -> None:
        """Views that keep every spatial dim whole (channel shuffles, flatten of 1x1)
        are free; views that merge or split positions are not followed."""
        node, layout = self.get(x)
        if x.shape is None or out.shape is None or None in x.shape or None in out.shape:
            raise Unknown("view with unknown shapes")
        new = match_dims(x.shape, out.shape, layout)
        if new is not None:
            self.bind(out, node, new)
            return
        dims = [d for d, v in enumerate(layout) if v is not None]
        if len(dims) == self.nd and any(x.shape[d] > 1 for d in dims):
            # positions merged or split (tokens, window partitions): rfield cannot
            # follow them, so the result reads everything, and the user is told
            raise Unknown("view that merges or splits spatial dims")
        self.bind(out, node, (None,) * len(out.shape))  # nothing spatial left to lose

    def reduce(self, kind: str, x: T, out: T, dims: Sequence[int] | None,
               keep: bool) -> None:
        """A reduction over ``dims`` (None: all) mixes positions if one is spatial."""
        node, layout = self.get(x)
        rank = len(layout)
        axes = list(range(rank)) if dims is None else [d % rank for d in dims]
        shape = x.shape or (2,) * rank
        hit = any(layout[d] is not None and shape[d] != 1 for d in axes)
        if keep:
            new = tuple(None if d in axes else v for d, v in enumerate(layout))
        else:
            new = tuple(v for d, v in enumerate(layout) if d not in axes)
        if hit:
            self.bind(out, self.add(kind, O.GlobalPool(), [node]), (None,) * len(new))
        else:
            self.bind(out, node, new)

    def normalize(self, kind: str, x: T, out: T, dims: Sequence[int]) -> None:
        """A norm whose statistics run over ``dims``: over a spatial dim, every output
        reads its own position and (through the statistics) every position there, as
        a squeeze-and-excitation gate does; over channels only, it is pointwise."""
        node, layout = self.get(x)
        shape = x.shape or (2,) * len(layout)
        if not any(layout[d % len(layout)] is not None and shape[d % len(layout)] != 1
                   for d in dims):
            self.bind(out, self.add(kind, O.Pointwise(kind), [node]), layout)
            return
        size = self.sizes(x.shape, layout)
        stats = self.add(kind, O.GlobalPool(), [node])
        spread = self.add("broadcast", O.Broadcast(size), [stats]) if size else stats
        self.bind(out, self.add(kind, O.Merge(kind), [node, spread]), layout)

    def along(self, kind: str, x: T, out: T, dims: Sequence[int] | None) -> None:
        """Softmax and friends: every position reads every other along ``dims``
        (None: all dims)."""
        node, layout = self.get(x)
        dims = range(len(layout)) if dims is None else dims
        shape = x.shape or (2,) * len(layout)
        if any(layout[d % len(layout)] is not None and shape[d % len(layout)] != 1
               for d in dims):
            op: O.Op = O.GlobalMix()
        else:
            op = O.Pointwise(kind)
        self.bind(out, self.add(kind, op, [node]), layout)

    def matmul(self, kind: str, a: T | None, b: T | None, out: T) -> None:
        """A product with a constant contracts one dim of the tracked side: global if
        that dim is spatial; two input-dependent sides (attention) are global."""
        if a is not None and b is not None:
            self.mix(kind, [a, b], out)
            return
        src = a if a is not None else b
        assert src is not None
        node, layout = self.get(src)
        rank = len(layout)
        out_rank = out.rank if out.rank is not None else rank
        dim = rank - 1 if a is not None or rank < 2 else rank - 2
        shape = src.shape
        if layout[dim] is not None and (shape is None or shape[dim] != 1):
            self.bind(out, self.add(kind, O.GlobalPool(), [node]), (None,) * out_rank)
            return
        new = layout if out_rank == rank else (None,) * out_rank
        self.bind(out, self.add(kind, O.Pointwise(kind), [node]), new)

    def mix(self, kind: str, ins: Sequence[T], out: T) -> None:
        """Attention, einsum: every output reads every position of every input."""
        node = self.union(kind, [self.get(t)[0] for t in ins])
        rank = out.rank if out.rank is not None else len(self.layout(ins[0]))
        self.bind(out, node, (None,) * rank)
