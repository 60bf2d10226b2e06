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

from collections.abc import Callable, Sequence
from typing import Any

from ..core import ops as O
from ..core.graph import INPUT
from .kernel_elementwise import Elementwise
from .kernel_levelwise import Levelwise
from .kernel_products import Products
from .kernel_shapes import Shapes
from .kernel_state import (  # noqa: F401  (the names the adapters import from here)
    ON_PARTS,
    Layout,
    State,
    T,
    Unknown,
    _without_trivial,
    has_space,
    match_dims,
    per_dim,
)
from .kernel_windows import Parts

#: The operators followed map by map on anchors of several maps (:mod:`.kernel_levels`).
LEVELWISE = ("pointwise", "merge", "expand", "write", "stack", "split", "permute", "view", "select",
             "einsum", "attention", "mix", "window", "adaptive", "global_pool", "blocks",
             "pad", "slice", "reduce", "normalize", "along", "whole_axes", "roll", "matmul")

WINDOWS: dict[str, type[O.Conv]] = {
    "conv": O.Conv, "maxpool": O.MaxPool, "avgpool": O.AvgPool, "lppool": O.LpPool}


class Kernel:
    """The framework-neutral operator semantics, one method per operator kind.

    Composed of the bookkeeping (``state``: tensors, nodes, unknown operators) and
    the operator families: elementwise, shapes (dims moved, merged, split) and
    parts (operators on split or merged axes); windows and reductions are here.
    """

    def __init__(self, input_size, strict: bool, framework: str,
                 naming: Callable[[str], tuple[str, str | None]],
                 where: Callable[[], str]) -> None:
        self.state = State(input_size, strict, framework, naming, where)
        self.parts = Parts(self.state)
        self.elementwise = Elementwise(self.state, self.parts)
        self.shapes = Shapes(self.state, self.parts, self.elementwise.merge)
        # the operators adapters call, wherever they are written
        self.pointwise, self.merge = self.elementwise.pointwise, self.elementwise.merge
        self.expand, self.write = self.elementwise.expand, self.elementwise.write
        self.stack, self.split = self.shapes.stack, self.shapes.split
        self.permute, self.view = self.shapes.permute, self.shapes.view
        self.products = Products(self.parts)
        self.select, self.einsum = self.shapes.select, self.products.einsum
        self.attention, self.mix = self.products.attention, self.state.mix
        self.levelwise = Levelwise(self.state)
        for name in LEVELWISE:  # anchors of several maps: followed level by level
            setattr(self, name, self.levelwise.wrap(getattr(self, name)))

    # ------------------------------------------------------------------ levels

    def concat(self, kind: str, ins: Sequence[T], out: T, dim: int) -> None:
        """A concat; along the anchors of several maps it adds maps to them."""
        if not self.shapes.join_levels(kind, ins, out, dim):
            self.levelwise.wrap(self.shapes.concat)(kind, ins, out, dim)

    def spatial(self, x: T) -> tuple[str, Layout]:
        """Node and layout of a tensor used as N, C, *spatial by a window operator.

        A tensor whose positions were mixed has lost its spatial dims. Reshaped to a
        grid the network has had (ViT tokens to 14 x 14), it is global, broadcast onto
        that grid; else (attention weights as heads x tokens) it stays positionless.
        """
        node, layout = self.state.get(x)
        if has_space(layout) or x.shape is None or len(x.shape) != self.state.nd + 2 \
                or None in x.shape:
            return node, layout
        size = tuple(int(n) for n in x.shape[2:])
        if size not in self.state.grids:
            return node, layout
        if node != INPUT:
            node = self.state.as_global(node)
        new = self.state.add("broadcast", O.Broadcast(size), [node])
        layout = (None, None) + tuple(range(self.state.nd))
        self.state.bind(x, new, layout)
        return new, layout

    def window_order(self, x: T, nsp: int, what: str,
                     dims: Sequence[int] | None = None) -> tuple[str, Layout, list[int]]:
        """For an operator over ``dims`` (default: the trailing ``nsp`` dims, as in
        NCHW; NHWC passes [1, 2]): node, layout, and for each input axis the index
        of its dim among ``dims``."""
        node, layout = self.spatial(x)
        dims = range(len(layout) - nsp, len(layout)) if dims is None else dims
        axes = [layout[d] for d in dims]
        if nsp != self.state.nd or None in axes or sorted(axes) != list(range(nsp)):
            raise Unknown(f"{what} over non-spatial dims")
        return node, layout, [axes.index(a) for a in range(self.state.nd)]

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
        if self.state.parts_of(x) is not None:
            return self.parts.window(kind, x, out, kernel, (stride, padding, dilation,
                                                            ceil_mode, output_padding), dims)
        if len(kernel) > self.state.nd and has_space(self.state.layout(x)):
            # jax2onnx pools a 6-D (1, 1, N, H, W, C) view with windows of 1 on N and C
            dims, kernel, stride, padding, dilation, output_padding = _without_trivial(
                self.state.layout(x), dims, kernel, stride, padding, dilation, output_padding)
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
        self.state.emit(kind, op, node, layout, out)

    def adaptive(self, x: T, out: T, nsp: int) -> None:
        """Adaptive pooling to the output's size (global when that is 1 everywhere)."""
        if self.state.parts_of(x) is not None and out.shape is not None \
                and all(n == 1 for n in out.shape[-nsp:]):  # tokens pooled: a mean
            rank = self.state.rank(x)
            return self.parts.reduce("avgpool", x, out, range(rank - nsp, rank), keep=True)
        node, layout, _ = self.window_order(x, nsp, "adaptive pooling")
        size = self.state.sizes(out.shape, layout)
        if size is None:
            raise Unknown("adaptive pooling to an unknown size")
        if size == (1,) * nsp:
            self.state.emit("avgpool", O.GlobalPool(), node, layout, out)
        else:
            self.state.emit("adaptivepool", O.AdaptivePool(list(size)), node, layout, out)

    def global_pool(self, kind: str, x: T, out: T) -> None:
        """Global pooling that keeps the rank (size-1 spatial dims)."""
        node, layout = self.state.get(x)
        self.state.bind(out, self.state.add(kind, O.GlobalPool(), [node]), layout)

    def blocks(self, x: T, out: T, op: O.Op) -> None:
        """Pixel (un)shuffle, DepthToSpace, SpaceToDepth: channels <-> the spatial dims."""
        node, layout = self.state.get(x)
        if tuple(layout[-self.state.nd:]) != tuple(range(self.state.nd)) or self.state.nd != 2:
            raise Unknown(op.kind)
        self.state.emit(op.kind, op, node, layout, out)

    def pad(self, x: T, out: T, pads: dict[int, tuple[int, int]], mode: str) -> None:
        """Pad per tensor dim ``{dim: (before, after)}``; negative amounts crop."""
        if self.state.parts_of(x) is not None:
            return self.parts.pad(x, out, pads, mode)
        node, layout = self.state.get(x)
        dims = {a: d for d, a in enumerate(layout) if a is not None}
        amounts = [list(pads.get(dims.get(ax, -1), (0, 0))) for ax in range(self.state.nd)]
        if any(b < 0 or e < 0 for b, e in amounts):
            node = self.state.add("crop", O.Crop([[-min(b, 0), -min(e, 0)] for b, e in amounts]),
                            [node])
            amounts = [[max(b, 0), max(e, 0)] for b, e in amounts]
        self.state.emit("pad", O.Pad(amounts, mode), node, layout, out)

    def slice(self, kind: str, x: T, out: T, cuts: dict[int, tuple[int, int | None, int]],
              out_layout: Layout | None = None) -> None:
        """Python slicing per tensor dim ``{dim: (start, stop, step)}``; cuts of
        channels or batch change no field."""
        node, layout = self.state.get(x)
        start, step = [0] * self.state.nd, [1] * self.state.nd
        stop: list[int | None] = [None] * self.state.nd
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
            self.state.emit(kind, O.Slice(start, stop, step), node, layout, out)
        else:
            self.state.bind(out, node, layout)

    def reduce(self, kind: str, x: T, out: T, dims: Sequence[int] | None,
               keep: bool) -> None:
        """A reduction over ``dims`` (None: all) mixes positions if one is spatial."""
        if self.state.parts_of(x) is not None:
            rank = self.state.rank(x)
            return self.parts.reduce(kind, x, out, range(rank) if dims is None else dims,
                                       keep)
        node, layout = self.state.get(x)
        rank = len(layout)
        axes = list(range(rank)) if dims is None else [d % rank for d in dims]
        shape = x.shape or (2,) * rank
        hit = any(layout[d] is not None and shape[d] != 1 for d in axes)
        if keep:
            new = tuple(None if d in axes else v for d, v in enumerate(layout))
        else:
            new = tuple(v for d, v in enumerate(layout) if d not in axes)
        grid = self.state.graph.size_of(node)
        pooled = {layout[d] for d in axes if layout[d] is not None and shape[d] != 1}
        if hit and any(n > 1 and a not in pooled for a, n in enumerate(grid)):
            # along some axes only (a row mean, coordinate attention): those axes are
            # read whole and kept at size 1, the others as they were
            k = [n if a in pooled else 1 for a, n in enumerate(grid)]
            kept = layout if keep else new
            self.state.bind(out, self.state.add(kind, O.Conv(k, k, 0, 1), [node]), kept)
        elif hit:
            self.state.bind(out, self.state.add(kind, O.GlobalPool(), [node]), (None,) * len(new))
        else:
            self.state.bind(out, node, new)

    def normalize(self, kind: str, x: T, out: T, dims: Sequence[int]) -> None:
        """A norm whose statistics run over ``dims``: over a spatial dim, every output
        reads its own position and (through the statistics) every position there, as
        a squeeze-and-excitation gate does; over channels only, it is pointwise."""
        if self.state.parts_of(x) is not None:
            return self.parts.along(kind, x, out, dims)
        node, layout = self.state.get(x)
        shape = x.shape or (2,) * len(layout)
        if not any(layout[d % len(layout)] is not None and shape[d % len(layout)] != 1
                   for d in dims):
            self.state.bind(out, self.state.add(kind, O.Pointwise(kind), [node]), layout)
            return
        size = self.state.sizes(x.shape, layout)
        stats = self.state.add(kind, O.GlobalPool(), [node])
        spread = self.state.add("broadcast", O.Broadcast(size), [stats]) if size else stats
        self.state.bind(out, self.state.add(kind, O.Merge(kind), [node, spread]), layout)

    def along(self, kind: str, x: T, out: T, dims: Sequence[int] | None) -> None:
        """Softmax and friends: every position reads every other along ``dims``
        (None: all dims)."""
        if self.state.parts_of(x) is not None:
            return self.parts.along(kind, x, out, dims)
        node, layout = self.state.get(x)
        dims = range(len(layout)) if dims is None else dims
        shape = x.shape or (2,) * len(layout)
        if any(layout[d % len(layout)] is not None and shape[d % len(layout)] != 1
               for d in dims):
            op: O.Op = O.GlobalMix()
        else:
            op = O.Pointwise(kind)
        self.state.bind(out, self.state.add(kind, op, [node]), layout)

    def whole_axes(self, kind: str, x: T, out: T, dims: Sequence[int]) -> None:
        """Every position reads every other along ``dims`` and only there (a recurrent
        net run both ways along a sequence): the axes those dims hold are read whole,
        the others kept."""
        if self.state.parts_of(x) is not None:
            return self.parts.along(kind, x, out, dims)
        node, layout = self.state.get(x)
        sizes = self.state.sizes(x.shape, layout)
        axes = {layout[d % len(layout)] for d in dims} - {None}
        if sizes is None or not axes:
            self.state.bind(out, self.state.add(kind, O.Pointwise(kind), [node]), layout)
            return
        mixed = [((1, n),) if a in axes else () for a, n in enumerate(sizes)]
        self.state.bind(out, self.state.add(kind, O.WindowMix(mixed), [node]), layout)

    def roll(self, x: T, out: T, shifts: dict[int, int]) -> None:
        """A circular shift by ``{dim: shift}``; along channels it changes no field."""
        node, layout = self.state.get(x)
        by = [0] * self.state.nd
        for d, s in shifts.items():
            if layout[d] is not None:
                by[layout[d]] += int(s)
        if any(by):
            self.state.emit("roll", O.Roll(by), node, layout, out)
        else:
            self.state.bind(out, node, layout)

    def matmul(self, kind: str, a: T | None, b: T | None, out: T) -> None:
        """A product with a constant contracts one dim of the tracked side: global if
        that dim is spatial; two input-dependent sides (attention) are global."""
        if a is not None and b is not None:
            if self.state.parts_of(a) is not None or self.state.parts_of(b) is not None:
                return self.products.product(kind, a, b, out)
            self.state.mix(kind, [a, b], out)
            return
        src = a if a is not None else b
        assert src is not None
        rank = self.state.rank(src)
        out_rank = out.rank if out.rank is not None else rank
        dim = rank - 1 if a is not None or rank < 2 else rank - 2
        if self.state.parts_of(src) is not None:
            if out_rank != rank:
                raise Unknown(f"{kind} {ON_PARTS} that changes the rank")
            return self.parts.reduce(kind, src, out, [dim], keep=True)
        node, layout = self.state.get(src)
        shape = src.shape
        if layout[dim] is not None and (shape is None or shape[dim] != 1):
            self.state.bind(out, self.state.add(kind, O.GlobalPool(), [node]), (None,) * out_rank)
            return
        new = layout if out_rank == rank else (None,) * out_rank
        self.state.bind(out, self.state.add(kind, O.Pointwise(kind), [node]), new)
