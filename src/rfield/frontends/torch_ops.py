"""The PyTorch operator table: torch function name -> handler.

A handler takes the capture, the call's name (without underscores: ``__iadd__``
is ``iadd``, ``relu_`` is ``relu``), its arguments and its result, reads the
torch-specific arguments and makes one call of the shared kernel. Names not in
:data:`HANDLERS` are unknown operators (taken as reading the whole input and
reported); :data:`IGNORE` lists calls that make no tensor from the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import ops as O
from . import kernel_parts as P
from .kernel import T, Unknown, per_dim

if TYPE_CHECKING:
    from .torch_capture import Capture

Handler = Callable[["Capture", str, tuple, dict, Any], None]


def flat(value):
    """Every leaf of nested lists, tuples and dicts, in order."""
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from flat(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from flat(v)
    else:
        yield value


def _bind(names, args, kwargs) -> dict:
    out = dict(zip(names, args))
    out.update(kwargs)
    return out


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _arg(args, kwargs, i: int, name: str, default=None):
    return kwargs.get(name, args[i] if len(args) > i else default)


# --------------------------------------------------------------------------- elementwise

def pointwise(c: Capture, kind, args, kwargs, out) -> None:
    src = next(a for a in flat((args, kwargs)) if c.tracked(a))
    outs = [c.t(o) for o in flat(out) if isinstance(o, c.torch.Tensor)]
    c.kernel.pointwise(kind, c.t(src), outs)


def cast(c: Capture, kind, args, kwargs, out) -> None:
    """x.type_as(y), x.to(y): the values are x's; y gives only a dtype and a device."""
    if c.tracked(args[0]):
        c.kernel.pointwise(kind, c.t(args[0]), [c.t(out)])


def merge(c: Capture, kind, args, kwargs, out) -> None:
    ins = [c.t(a) for a in flat((args, kwargs)) if c.tracked(a)]
    c.kernel.merge(kind, ins, c.t(out))


def max_or_min(c: Capture, kind, args, kwargs, out) -> None:
    """torch.max(a, b) is elementwise; torch.max(x, dim) a reduction."""
    if len(args) > 1 and isinstance(args[1], c.torch.Tensor):
        return merge(c, kind, args, kwargs, out)
    reduce(c, kind, args, kwargs, out)


# --------------------------------------------------------------------------- windows

def _conv(nsp: int, transposed: bool = False) -> Handler:
    names = (["input", "weight", "bias", "stride", "padding", "output_padding", "groups",
              "dilation"] if transposed else
             ["input", "weight", "bias", "stride", "padding", "dilation", "groups"])
    kind = "convtranspose" if transposed else "conv"

    def conv(c: Capture, _key, args, kwargs, out) -> None:
        a = _bind(names, args, kwargs)
        kernel = list(a["weight"].shape[2:])
        window = c.t(out)
        if c.tracked(a["weight"]):  # CondConv: experts mixed by routing weights
            weight = c.t(a["weight"])
            if c.kernel.state.parts_of(weight) is not None or any(
                    d is not None for d in c.kernel.state.peek(weight)[1]):
                raise Unknown("conv with an input-dependent weight holding positions")
            window = T(("conv-window", window.key), window.shape)
        c.kernel.window(kind, c.t(a["input"]), window, kernel, a.get("stride", 1),
                        a.get("padding", 0), a.get("dilation", 1),
                        output_padding=a.get("output_padding", 0) if transposed else None)
        if window.key != id(out):
            # a weight whose positions were mixed (pooled routing): every output reads
            # its window and everything the weight reads
            c.kernel.merge(kind, [window, c.t(a["weight"])], c.t(out))
            c.kernel.state.forget(window)
    return conv


def convolution(c: Capture, key, args, kwargs, out) -> None:
    """aten's convolution / _convolution (what torch.jit.trace records): (input, weight,
    bias, stride, padding, dilation, transposed, output_padding, groups, ...)."""
    a = _bind(["input", "weight", "bias", "stride", "padding", "dilation", "transposed",
               "output_padding", "groups"], args, kwargs)
    transposed = bool(a.get("transposed"))
    nsp = a["weight"].dim() - 2
    handler = _conv(nsp, transposed)
    order = ["input", "weight", "bias", "stride", "padding"] + (
        ["output_padding", "groups", "dilation"] if transposed else ["dilation", "groups"])
    handler(c, key, tuple(a.get(n) for n in order), {}, out)


def _pool(nsp: int, kind: str) -> Handler:
    if kind == "maxpool":
        names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                 "return_indices"]
    else:
        names = ["input", "kernel_size", "stride", "padding", "ceil_mode",
                 "count_include_pad", "divisor_override"]

    def pool(c: Capture, _key, args, kwargs, out) -> None:
        a = _bind(names, args, kwargs)
        kernel = per_dim(a["kernel_size"], nsp)
        stride = a.get("stride") or kernel  # None or [] mean the kernel
        c.kernel.window(kind, c.t(a["input"]), c.t(_first(out)), kernel, stride,
                        a.get("padding", 0), a.get("dilation", 1),
                        ceil_mode=a.get("ceil_mode", False))
    return pool


def _lp_pool(nsp: int) -> Handler:
    def lp_pool(c: Capture, _key, args, kwargs, out) -> None:
        a = _bind(["input", "norm_type", "kernel_size", "stride", "ceil_mode"], args, kwargs)
        kernel = per_dim(a["kernel_size"], nsp)
        c.kernel.window("avgpool", c.t(a["input"]), c.t(out), kernel,
                        a.get("stride") or kernel, 0, 1, ceil_mode=a.get("ceil_mode", False))
    return lp_pool


def _adaptive(nsp: int) -> Handler:
    def adaptive(c: Capture, _key, args, kwargs, out) -> None:
        c.kernel.adaptive(c.t(_bind(["input"], args, kwargs)["input"]), c.t(_first(out)), nsp)
    return adaptive


def interpolate(c: Capture, _key, args, kwargs, out) -> None:
    a = _bind(["input", "size", "scale_factor", "mode", "align_corners",
               "recompute_scale_factor", "antialias"], args, kwargs)
    x, o = c.t(a["input"]), c.t(out)
    nsp = c.kernel.state.rank(x) - 2
    node, layout, order = c.kernel.window_order(x, nsp, "interpolate")
    mode = a.get("mode", "nearest")
    aa = bool(a.get("antialias"))
    if aa and (mode not in ("bilinear", "bicubic") or a.get("align_corners")):
        raise Unknown(f"interpolate(mode={mode}, antialias=True)")
    out_size = c.kernel.state.sizes(o.shape, layout)
    if out_size is None:
        raise Unknown("interpolate to an unknown size")
    op: O.Op
    if mode == "area":
        op = O.AdaptivePool(list(out_size))
    elif a.get("scale_factor") is not None and not a.get("recompute_scale_factor"):
        sc = per_dim(a["scale_factor"], nsp)
        op = O.Upsample(scale=[float(sc[i]) for i in order], mode=mode,
                        align_corners=bool(a.get("align_corners")), antialias=aa)
    else:
        op = O.Upsample(size=list(out_size), mode=mode,
                        align_corners=bool(a.get("align_corners")), antialias=aa)
    c.kernel.state.emit("upsample", op, node, layout, o)


def _aten_upsample(mode: str) -> Handler:
    """aten's upsample_<mode><n>d, as torch.export records F.interpolate: (input,
    output_size, [align_corners,] scale_factors) in ``.vec``, the scales one by one in
    ``.default``."""
    corners = mode not in ("nearest", "nearest-exact")

    def upsample(c: Capture, key, args, kwargs, out) -> None:
        names = ["input", "output_size"] + (["align_corners"] if corners else [])
        a = _bind(names, args[:len(names)], {k: v for k, v in kwargs.items() if k in names})
        scales = list(args[len(names):]) + [v for k, v in kwargs.items() if k not in names]
        if len(scales) == 1 and (scales[0] is None or isinstance(scales[0], (list, tuple))):
            scales = list(scales[0] or [])
        interpolate(c, key, [a["input"]], {
            "size": a.get("output_size"), "mode": mode, "align_corners": a.get("align_corners"),
            "scale_factor": list(scales) if scales and None not in scales else None}, out)
    return upsample


def recurrent(c: Capture, kind, args, kwargs, out) -> None:
    """torch.lstm / gru / rnn_tanh / rnn_relu(input, hx, params, has_biases, layers,
    dropout, train, bidirectional, batch_first): both ways, each step reads the whole
    sequence dim (as attention does); one way, only the steps before it, which is not
    followed (a unit's box would end at itself)."""
    if len(args) < 9 or not isinstance(args[7], bool) or not isinstance(args[8], bool):
        raise Unknown(f"{kind} over packed sequences")
    if not args[7]:
        raise Unknown(f"{kind} run one way (each step reads only the steps before it)")
    c.kernel.whole_axes(kind, c.t(args[0]), c.t(_first(out)), [1 if args[8] else 0])


def _shuffle(cls: type[O._Factor]) -> Handler:
    def shuffle(c: Capture, _key, args, kwargs, out) -> None:
        factor = args[1] if len(args) > 1 else next(iter(kwargs.values()))
        c.kernel.blocks(c.t(args[0]), c.t(out), cls(int(factor)))
    return shuffle


def pad(c: Capture, _key, args, kwargs, out) -> None:
    a = _bind(["input", "pad", "mode", "value"], args, kwargs)
    x, amounts = a["input"], list(a["pad"])
    # F.pad lists (before, after) pairs from the last dim backwards
    per = {x.dim() - 1 - i: (amounts[2 * i], amounts[2 * i + 1])
           for i in range(len(amounts) // 2)}
    c.kernel.pad(c.t(x), c.t(out), per, a.get("mode", "constant"))


# --------------------------------------------------------------------------- merges, shape

def cat(c: Capture, _key, args, kwargs, out) -> None:
    a = _bind(["tensors", "dim"], args, kwargs)
    # constants (a class token) go in without a key: the kernel counts them
    ins = [c.t(t) if c.tracked(t) else T(None, tuple(int(v) for v in t.shape))
           for t in a["tensors"]]
    c.kernel.concat("cat", ins, c.t(out), a.get("dim", 0))


def stack(c: Capture, _key, args, kwargs, out) -> None:
    a = _bind(["tensors", "dim"], args, kwargs)
    c.kernel.stack([c.t(t) for t in a["tensors"] if c.tracked(t)], c.t(out), a.get("dim", 0))


def split(c: Capture, kind, args, kwargs, out) -> None:
    c.kernel.split(kind, c.t(args[0]), [c.t(o) for o in out], _arg(args, kwargs, 2, "dim", 0))


def tensor_split(c: Capture, kind, args, kwargs, out) -> None:
    """torch.tensor_split(x, indices or sections, dim): the pieces as slices (MViT cuts
    its class token off the token dim so)."""
    a = _bind(["input", "indices_or_sections", "dim"], args, kwargs)
    x = a["input"]
    dim = int(a.get("dim") or 0) % x.dim()
    cuts = a.get("indices_or_sections", a.get("indices", a.get("sections")))
    n = x.shape[dim]
    if isinstance(cuts, int):
        size, extra = divmod(n, cuts)
        ends = [size * i + min(i, extra) for i in range(1, cuts)]
    elif isinstance(cuts, (list, tuple)) and all(isinstance(v, int) for v in cuts):
        ends = [min(max(v + n if v < 0 else v, 0), n) for v in cuts]
    else:
        raise Unknown("tensor_split at computed points")
    bounds = [0] + ends + [n]
    for piece, lo, hi in zip(out, bounds, bounds[1:]):  # each as x[..., lo:hi] reads
        getitem(c, kind, [x, (slice(None),) * dim + (slice(lo, max(lo, hi)),)], {}, piece)


def unbind(c: Capture, kind, args, kwargs, out) -> None:
    c.kernel.split(kind, c.t(args[0]), [c.t(o) for o in out], _arg(args, kwargs, 1, "dim", 0),
                   drop=True)


def permute(c: Capture, _key, args, kwargs, out) -> None:
    dims = args[1:] if len(args) > 1 else kwargs.get("dims")
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    c.kernel.permute(c.t(args[0]), c.t(out), [d % args[0].dim() for d in dims])


def transpose(c: Capture, _key, args, kwargs, out) -> None:
    x = args[0]
    d0, d1 = (args[1], args[2]) if len(args) > 2 else (kwargs["dim0"], kwargs["dim1"])
    perm = list(range(x.dim()))
    d0, d1 = d0 % x.dim(), d1 % x.dim()
    perm[d0], perm[d1] = perm[d1], perm[d0]
    c.kernel.permute(c.t(x), c.t(out), perm)


def movedim(c: Capture, _key, args, kwargs, out) -> None:
    x, n = args[0], args[0].dim()
    src = [s % n for s in per_dim(args[1], 1)]
    dst = [d % n for d in per_dim(args[2], 1)]
    perm: list = [None] * n
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(i for i in range(n) if i not in src)
    c.kernel.permute(c.t(x), c.t(out), [p if p is not None else next(rest) for p in perm])


def view(c: Capture, _key, args, kwargs, out) -> None:
    c.kernel.view(c.t(args[0]), c.t(out))


def _steps(c: Capture, x: T, out: T, steps: list[tuple[str, tuple]]) -> None:
    """``out`` made from ``x`` by views (to a shape) and permutes (by an order), each
    step through a tensor of its own."""
    at = x
    for i, (how, arg) in enumerate(steps):
        last = i == len(steps) - 1
        shape = tuple(arg) if how == "view" else tuple(at.shape[d] for d in arg)  # type: ignore[index]
        nxt = out if last else T(("steps", out.key, i), shape)
        (c.kernel.view(at, nxt) if how == "view" else c.kernel.permute(at, nxt, arg))
        if at is not x:
            c.kernel.state.forget(at)
        at = nxt


def unfold(c: Capture, _key, args, kwargs, out) -> None:
    """Windows that do not overlap, gathered: ``F.unfold`` with kernel == stride (no
    padding, no dilation; TNT's pixel embedding, MobileViTv2's patches) and
    ``Tensor.unfold(dim, size, step)`` with size == step are views that split
    positions into digits. Overlapping windows (VOLO, HaloNet) are not followed."""
    x = args[0]
    xt, o = c.t(x), c.t(out)
    if out.dim() == x.dim() + 1:  # Tensor.unfold(dim, size, step)
        a = _bind(["self", "dimension", "size", "step"], args, kwargs)
        d, size, step = a["dimension"] % x.dim(), a["size"], a["step"]
        n = x.shape[d]
        if size != step or n % size:
            raise Unknown("unfold")
        split = list(x.shape[:d]) + [n // size, size] + list(x.shape[d + 1:])
        order = [i for i in range(len(split)) if i != d + 1] + [d + 1]
        return _steps(c, xt, o, [("view", tuple(split)), ("permute", tuple(order))])
    a = _bind(["input", "kernel_size", "dilation", "padding", "stride"], args, kwargs)
    b, ch, h, w = _patches(a, x.dim(), x.shape, "unfold")
    _steps(c, xt, o, [("view", (b, ch, h // a["k"][0], a["k"][0], w // a["k"][1], a["k"][1])),
                      ("permute", (0, 1, 3, 5, 2, 4)),
                      ("view", tuple(out.shape))])


def fold(c: Capture, _key, args, kwargs, out) -> None:
    """``F.fold`` with kernel == stride (no padding, no dilation): the inverse view
    of :func:`unfold`; overlapping windows summed back (VOLO) are not followed."""
    a = _bind(["input", "output_size", "kernel_size", "dilation", "padding", "stride"],
              args, kwargs)
    if a["input"].dim() != 3:
        raise Unknown("fold")
    b, ch, h, w = _patches(a, out.dim(), out.shape, "fold")
    k = a["k"]
    _steps(c, c.t(a["input"]), c.t(out), [("view", (b, ch, k[0], k[1], h // k[0], w // k[1])),
                                          ("permute", (0, 1, 4, 2, 5, 3)),
                                          ("view", tuple(out.shape))])


def _patches(a: dict, rank: int, shape, kind: str) -> tuple:
    """The map's (N, C, H, W) where ``a`` (unfold's or fold's arguments) gathers
    patches without overlap: kernel == stride, no dilation or padding, H and W
    multiples of the kernel; else not followed. Puts the kernel in ``a["k"]``."""
    k = a["k"] = per_dim(a["kernel_size"], 2)
    if rank != 4 or per_dim(a.get("stride", 1), 2) != k or any(
            v != 1 for v in per_dim(a.get("dilation", 1), 2)) or any(
            v != 0 for v in per_dim(a.get("padding", 0), 2)) or shape[2] % k[0] or \
            shape[3] % k[1]:
        raise Unknown(kind)
    return tuple(shape)


def expand(c: Capture, _key, args, kwargs, out) -> None:
    c.kernel.expand(c.t(args[0]), c.t(out))


def without_ellipsis(index: tuple, rank: int) -> tuple:
    """``index`` with its Ellipsis (one at most) written as the whole slices it
    stands for in a tensor of ``rank`` dims (None items add dims, not read ones)."""
    if Ellipsis not in index:
        return index
    pos = index.index(Ellipsis)
    fill = rank - (len([i for i in index if i is not None]) - 1)
    return index[:pos] + (slice(None),) * fill + index[pos + 1:]


def getitem(c: Capture, _key, args, kwargs, out) -> None:
    x, index = args[0], args[1]
    if not isinstance(index, tuple):
        index = (index,)
    if any(isinstance(i, c.torch.Tensor) for i in index):
        raise Unknown("indexing with a tensor")
    index = without_ellipsis(index, x.dim())
    if c.kernel.state.parts_of(c.t(x)) is not None:
        return _select_parts(c, x, index, out)
    _, layout = c.lookup(x)
    new_layout: list = []
    cuts: dict[int, tuple] = {}
    d = 0
    for item in index:
        if item is None:
            new_layout.append(None)
            continue
        if isinstance(item, int):
            if layout[d] is not None:
                raise Unknown("indexing one position of a spatial dim")
        elif isinstance(item, slice):
            if item != slice(None):
                cuts[d] = (item.start or 0, item.stop, item.step or 1)
            new_layout.append(layout[d])
        else:
            raise Unknown(f"indexing with {type(item).__name__}")
        d += 1
    new_layout += list(layout[d:])
    c.kernel.slice("slice", c.t(x), c.t(out), cuts, out_layout=tuple(new_layout))


def _select_parts(c: Capture, x, index: tuple, out) -> None:
    """Indexing a tensor whose positions are split or merged: along other dims, or
    the class token or the patches of a token dim."""
    source: list = []
    cut: list[int] = []
    picks: dict[int, int | tuple] = {}
    d = 0
    for item in index:
        if item is None:
            source.append(None)
            continue
        if isinstance(item, slice):
            source.append(d)
            if item.indices(x.shape[d]) != (0, x.shape[d], 1):  # x[:, 0:] keeps all
                cut.append(d)
                picks[d] = (item.start, item.stop, item.step or 1)
        elif isinstance(item, int):
            picks[d] = item
        else:
            raise Unknown(f"indexing with {type(item).__name__}")
        d += 1
    source += list(range(d, x.dim()))
    c.kernel.select(c.t(x), c.t(out), source, cut, picks)


def narrow(c: Capture, _key, args, kwargs, out) -> None:
    a = _bind(["input", "dim", "start", "length"], args, kwargs)
    x = a["input"]
    dim = a["dim"] % x.dim()
    start = int(a["start"]) % x.shape[dim] if int(a["start"]) < 0 else int(a["start"])
    c.kernel.slice("narrow", c.t(x), c.t(out), {dim: (start, start + int(a["length"]), 1)})


def reduce(c: Capture, kind, args, kwargs, out) -> None:
    dim = _arg(args, kwargs, 1, "dim")
    dims = None if dim is None else per_dim(dim, 1) if isinstance(dim, int) else list(dim)
    c.kernel.reduce(kind, c.t(args[0]), c.t(_first(out)), dims or None,  # amax(x, ()): all
                    bool(_arg(args, kwargs, 2, "keepdim", False)))


def vector_norm(c: Capture, kind, args, kwargs, out) -> None:
    """torch.norm, Tensor.norm, linalg.vector_norm (input, p, dim, keepdim): a reduction
    over ``dim`` (ConvNeXt-V2's GRN: over the spatial dims, so global)."""
    dim = _arg(args, kwargs, 2, "dim")
    dims = None if dim is None else per_dim(dim, 1) if isinstance(dim, int) else list(dim)
    c.kernel.reduce(kind, c.t(args[0]), c.t(_first(out)), dims,
                    bool(_arg(args, kwargs, 3, "keepdim", False)))


def along(c: Capture, kind, args, kwargs, out) -> None:
    """softmax and friends: global along their dim if it is spatial."""
    dim = _arg(args, kwargs, 1, "dim", -1)
    c.kernel.along(kind, c.t(args[0]), c.t(out), None if dim is None else [dim])


def linear(c: Capture, kind, args, kwargs, out) -> None:
    w = args[1] if len(args) > 1 else kwargs["weight"]
    if c.tracked(w):
        raise Unknown("linear with an input-dependent weight")
    c.kernel.matmul("linear", c.t(args[0]), None, c.t(out))


def matmul(c: Capture, _key, args, kwargs, out) -> None:
    x, y = (c.t(v) if c.tracked(v) else None for v in args[:2])
    c.kernel.matmul("matmul", x, y, c.t(out))


def einsum(c: Capture, kind, args, kwargs, out) -> None:
    """Read by its letters (each output reads every digit its operands hold along a
    summed letter); an equation with an ellipsis reads every position."""
    operands = [c.t(t) if c.tracked(t) else None for t in flat(args[1:])]
    eq = args[0] if isinstance(args[0], str) else ""
    c.kernel.einsum("einsum", eq, operands, c.t(out))


def _seq_first_attention(c: Capture, qkv: list[T], out) -> None:
    """``F.multi_head_attention_forward`` on (tokens, batch, embedding): attention over
    dim 0, read as the kernel's over dim -2 with batch and tokens swapped (its in- and
    out-projections are linear over the embedding: pointwise per token)."""
    swap = (1, 0, 2)
    moved = []
    for t in qkv:
        m = T(("seq-first", t.key), tuple(t.shape[i] for i in swap) if t.shape else None)
        c.kernel.permute(t, m, swap)
        moved.append(m)
    o = c.t(out)
    held = T(("seq-first", o.key), tuple(o.shape[i] for i in swap) if o.shape else None)
    q, k, v = moved
    c.kernel.attention(q, k, v, held)
    c.kernel.permute(held, o, swap)
    for t in moved + [held]:
        c.kernel.state.forget(t)


def attention(c: Capture, kind, args, kwargs, out) -> None:
    qkv = [c.t(t) for t in args[:3] if c.tracked(t)]
    if kind == "multi_head_attention_forward":
        masks = [kwargs.get(k) for k in ("key_padding_mask", "attn_mask")] + list(args[10:])
        if len(qkv) == 3 and all(t.rank == 3 for t in qkv) and \
                not any(c.tracked(m) for m in masks) and \
                any(c.kernel.state.parts_of(t) is not None for t in qkv):
            return _seq_first_attention(c, qkv, _first(out))
    mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
    if kind == "scaled_dot_product_attention" and len(qkv) == 3 \
            and not kwargs.get("is_causal") \
            and any(c.kernel.state.parts_of(t) is not None for t in qkv):
        q, k, v = qkv  # tokens or windows of a map; a mask computed from the queries
        c.kernel.attention(q, k, v, c.t(_first(out)), c.t(mask) if c.tracked(mask) else None)
        return
    if len(qkv) == 2 and not c.tracked(args[0]) and not c.tracked(mask):
        # a constant query (CaiT's class token before it has read anything): every
        # output reads every key and value
        c.kernel.state.gather("attention", qkv, c.t(_first(out)))
        return
    c.kernel.mix("attention", qkv, c.t(_first(out)))


def roll(c: Capture, _key, args, kwargs, out) -> None:
    x = args[0]
    dims = _arg(args, kwargs, 2, "dims")
    if dims is None:
        raise Unknown("roll over the flattened tensor")
    shifts = per_dim(_arg(args, kwargs, 1, "shifts"), len(per_dim(dims, 1)))
    c.kernel.roll(c.t(x), c.t(out), {d % x.dim(): s for d, s in zip(per_dim(dims, 1), shifts)})


def norm_over_space(c: Capture, kind, args, kwargs, out) -> None:
    """group_norm, instance_norm: statistics over every dim after the channels."""
    x = c.t(args[0] if args else kwargs["input"])
    c.kernel.normalize(kind, x, c.t(out), range(2, c.kernel.state.rank(x)))


def layer_norm(c: Capture, kind, args, kwargs, out) -> None:
    """Statistics over the last len(normalized_shape) dims: channels only in
    channels-last blocks (pointwise), spatial dims too in others."""
    x = c.t(args[0] if args else kwargs["input"])
    shape = _arg(args, kwargs, 1, "normalized_shape")
    k = len(per_dim(shape, 1))
    rank = c.kernel.state.rank(x)
    c.kernel.normalize(kind, x, c.t(out), range(rank - k, rank))


def repeat_interleave(c: Capture, _key, args, kwargs, out) -> None:
    """``x.repeat_interleave(r, dim)``: along a dim holding an input axis, nearest
    upsampling by r (output o reads input o // r); along channels, each value copied
    (positions as they were). Per-element repeats are not followed."""
    a = _bind(["input", "repeats", "dim", "output_size"], args, kwargs)
    x, o = c.t(a["input"]), c.t(out)
    r, dim = a.get("repeats"), a.get("dim")
    if not isinstance(r, int) or dim is None:
        raise Unknown("repeat_interleave with per-element repeats or no dim")
    if c.kernel.state.parts_of(x) is not None:  # grouped-query attention's heads repeated
        node, dims, tokens = c.kernel.state.held(x)
        d = dim % len(dims)
        if P.spatial(dims[d]) or (tokens is not None and tokens.dim == d):
            raise Unknown("repeat_interleave of split positions")
        new = dims[:d] + (((None, 0, int(out.shape[d])),),) + dims[d + 1:]
        return c.kernel.state.bind_parts(o, node, new, tokens)
    node, layout = c.kernel.state.get(x)
    axis = layout[dim % len(layout)]
    if axis is None:
        return c.kernel.state.bind(o, node, layout)  # the same positions, more channels
    scale = [float(r) if a == axis else 1.0 for a in range(c.kernel.state.nd)]
    c.kernel.state.emit("upsample", O.Upsample(scale=scale, mode="nearest"), node, layout, o)


def lp_normalize(c: Capture, kind, args, kwargs, out) -> None:
    """F.normalize: each vector along ``dim`` (default 1) divided by its norm."""
    x = c.t(args[0] if args else kwargs["input"])
    c.kernel.normalize(kind, x, c.t(out), [_arg(args, kwargs, 2, "dim", 1)])


def dropout(c: Capture, _key, args, kwargs, out) -> None:
    c.kernel.pointwise("dropout", c.t(args[0]), [c.t(out)])


def _table(handler: Handler, *names: str) -> dict[str, Handler]:
    return dict.fromkeys(names, handler)


# name (underscores stripped) -> handler
HANDLERS: dict[str, Handler] = {
    "conv1d": _conv(1), "conv2d": _conv(2), "conv3d": _conv(3), "convolution": convolution,
    "conv_transpose1d": _conv(1, True), "conv_transpose2d": _conv(2, True),
    "conv_transpose3d": _conv(3, True),
    "max_pool1d": _pool(1, "maxpool"), "max_pool2d": _pool(2, "maxpool"),
    "max_pool3d": _pool(3, "maxpool"), "max_pool1d_with_indices": _pool(1, "maxpool"),
    "max_pool2d_with_indices": _pool(2, "maxpool"),
    "max_pool3d_with_indices": _pool(3, "maxpool"),
    "avg_pool1d": _pool(1, "avgpool"), "avg_pool2d": _pool(2, "avgpool"),
    "avg_pool3d": _pool(3, "avgpool"), "lp_pool1d": _lp_pool(1), "lp_pool2d": _lp_pool(2),
    "adaptive_avg_pool1d": _adaptive(1), "adaptive_max_pool1d": _adaptive(1),
    "adaptive_max_pool1d_with_indices": _adaptive(1),
    "adaptive_avg_pool2d": _adaptive(2), "adaptive_max_pool2d": _adaptive(2),
    "adaptive_max_pool2d_with_indices": _adaptive(2),
    "adaptive_avg_pool3d": _adaptive(3), "adaptive_max_pool3d": _adaptive(3),
    "adaptive_max_pool3d_with_indices": _adaptive(3),
    "interpolate": interpolate, "upsample": interpolate,
    "lstm": recurrent, "gru": recurrent, "rnn_tanh": recurrent, "rnn_relu": recurrent,
    # the names torch.export's aten graphs record F.interpolate by
    **{f"upsample_nearest{n}d": _aten_upsample("nearest") for n in (1, 2, 3)},
    **{f"upsample_nearest_exact{n}d": _aten_upsample("nearest-exact") for n in (1, 2, 3)},
    "upsample_linear1d": _aten_upsample("linear"),
    "upsample_bilinear2d": _aten_upsample("bilinear"),
    "upsample_bicubic2d": _aten_upsample("bicubic"),
    "upsample_trilinear3d": _aten_upsample("trilinear"),
    "pixel_shuffle": _shuffle(O.PixelShuffle), "pixel_unshuffle": _shuffle(O.PixelUnshuffle),
    "pad": pad, "cat": cat, "concat": cat, "concatenate": cat, "stack": stack,
    "chunk": split, "split": split, "unbind": unbind, "tensor_split": tensor_split,
    "permute": permute, "transpose": transpose, "swapaxes": transpose, "swapdims": transpose,
    "unfold": unfold, "fold": fold,
    "movedim": movedim, "view": view, "reshape": view, "flatten": view, "unflatten": view,
    "view_as": view, "reshape_as": view, "squeeze": view, "unsqueeze": view,
    "expand_as": expand, "expand": expand, "getitem": getitem, "narrow": narrow,
    "mean": reduce, "sum": reduce, "amax": reduce, "amin": reduce, "prod": reduce,
    "nansum": reduce, "nanmean": reduce, "std": reduce, "var": reduce,
    "logsumexp": reduce, "max": max_or_min, "min": max_or_min,
    "norm": vector_norm, "linalg_vector_norm": vector_norm,
    "softmax": along, "log_softmax": along, "cumsum": along,
    "linear": linear, "matmul": matmul, "bmm": matmul, "mm": matmul, "einsum": einsum,
    "scaled_dot_product_attention": attention, "multi_head_attention_forward": attention,
    "roll": roll, "dropout": dropout, "to": cast, "type": cast, "type_as": cast,
    "normalize": lp_normalize, "group_norm": norm_over_space,
    "instance_norm": norm_over_space, "layer_norm": layer_norm, "rms_norm": layer_norm,
    "repeat_interleave": repeat_interleave,
    # elementwise over several tensors, with broadcasting
    **_table(merge, "add", "radd", "iadd", "sub", "rsub", "isub", "mul", "rmul", "imul",
             "div", "truediv", "rtruediv", "itruediv", "true_divide", "maximum", "minimum",
             "where", "addcmul", "addcdiv", "lerp", "and", "or", "floordiv", "fmod",
             "remainder", "eq", "ne", "lt", "gt", "le", "ge", "masked_fill", "copy"),
    # index o reads index o: activations, per-channel norms, casts
    **_table(pointwise, "relu", "relu6", "hardtanh", "leaky_relu", "gelu", "silu", "sigmoid",
             "tanh", "hardswish", "hardsigmoid", "mish", "elu", "selu", "celu", "softplus",
             "prelu", "rrelu", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
             "feature_alpha_dropout", "batch_norm", "local_response_norm", "clone",
             "contiguous", "detach",
             "float", "double", "half", "abs", "neg", "exp", "log", "sqrt",
             "rsqrt", "square", "pow", "rpow", "clamp", "clip", "clamp_min", "clamp_max",
             "sign", "erf", "reciprocal", "invert", "requires_grad", "cpu", "cuda",
             "bfloat16", "nan_to_num", "logit", "sin", "cos", "floor", "ceil", "round",
             "trunc", "frac", "identity", "channel_shuffle", "native_channel_shuffle",
             "tril", "triu"),
}

def space_to_depth(c: Capture, module, x, out) -> None:
    """timm's SpaceToDepth (TResNet's stem): a view, a permute and a view that move each
    bs x bs block of pixels into channels, which is PixelUnshuffle(bs) up to the order of
    the channels (no field depends on it)."""
    bs = module.bs
    if not isinstance(bs, int) or x.dim() != 4 or \
            tuple(out.shape) != (x.shape[0], x.shape[1] * bs * bs, x.shape[2] // bs,
                                 x.shape[3] // bs):
        raise Unknown(type(module).__name__)
    c.kernel.blocks(c.t(x), c.t(out), O.PixelUnshuffle(bs))


# modules read whole, by class name, where the calls inside would not be followed; each
# handler checks the shapes it relies on (else the calls inside are read one by one)
MODULE_HANDLERS: dict[str, Callable] = {"SpaceToDepth": space_to_depth}

# calls that make no tensor from the input (sizes, attributes, fresh tensors)
IGNORE = frozenset({
    "size", "dim", "numel", "__get__", "__len__", "__iter__", "__bool__", "__index__",
    "__int__", "__float__", "__format__", "__repr__", "__hash__", "element_size", "stride",
    "is_contiguous", "data_ptr", "__setstate__", "item", "tolist", "is_floating_point",
    "get_device", "is_complex", "storage_offset", "new_zeros", "new_ones", "new_empty",
    "new_full", "new_tensor", "zeros_like", "ones_like", "empty_like", "full_like",
    "rand_like", "randn_like", "__contains__", "__reduce_ex__", "has_names",
    "_has_compatible_shallow_copy_type", "__deepcopy__", "numpy", "untyped_storage", "dtype",
    "shape", "device", "is_cuda", "ndim"})
