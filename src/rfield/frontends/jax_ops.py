"""The JAX primitive table: primitive name -> handler.

A handler takes the reader, the jaxpr equation and its output tensors (kernel
:class:`T` with the shapes JAX traced) and makes one call of the shared kernel,
reading the equation's params (``window_strides``, explicit ``padding`` pairs,
``dimension_numbers``). Primitives not in :data:`HANDLERS` are unknown: taken as
reading the whole input, reported, an error with ``strict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import ops as O
from . import jax_remap
from . import kernel_parts as P
from .kernel import T, Unknown

if TYPE_CHECKING:
    from .jax_graph import JaxReader

Handler = Callable[["JaxReader", Any, list[T]], None]


def _in(r: JaxReader, eqn: Any, i: int = 0) -> T:
    return r.t(eqn.invars[i])


def _tracked(r: JaxReader, eqn: Any) -> list[T]:
    return [r.t(v) for v in eqn.invars if r.tracked(v)]


def _operand(r: JaxReader, eqn: Any) -> T:
    """The one tracked operand of a data-moving primitive whose other inputs are fixed."""
    if not r.tracked(eqn.invars[0]) or any(r.tracked(v) for v in eqn.invars[1:]):
        raise Unknown(f"{eqn.primitive.name} with image-dependent indices")
    return _in(r, eqn)


# --------------------------------------------------------------------------- elementwise

def elementwise(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """Any elementwise primitive: size-1 dims broadcast (a gate, a bias). Inside a
    named activation's call (jax.nn.relu is ``max``) it takes the activation's name."""
    ins = _tracked(r, eqn)
    kind = r.called or eqn.primitive.name
    if len(ins) == 1 and ins[0].shape == outs[0].shape:
        r.kernel.pointwise(kind, ins[0], outs)
    else:
        r.kernel.merge(kind, ins, outs[0])


ELEMENTWISE = (
    "add", "add_any", "sub", "mul", "div", "rem", "max", "min", "pow", "atan2", "nextafter",
    "and", "or", "xor", "not", "eq", "ne", "lt", "le", "gt", "ge", "select_n", "clamp",
    "neg", "sign", "floor", "ceil", "round", "abs", "exp", "exp2", "expm1", "log", "log1p",
    "tanh", "logistic", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
    "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "integer_pow", "square", "erf", "erfc",
    "erf_inv", "lgamma", "digamma", "is_finite", "convert_element_type", "reduce_precision",
    "copy", "copy_p", "stop_gradient", "real", "imag", "conj", "optimization_barrier",
    "shift_left", "shift_right_logical", "shift_right_arithmetic", "population_count",
)


# --------------------------------------------------------------------------- windows

def conv(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """``conv_general_dilated``: the kernel from the rhs and the dimension numbers;
    ``lhs_dilation`` > 1 is a transposed convolution (Flax ConvTranspose)."""
    p = eqn.params
    if r.tracked(eqn.invars[1]):
        raise Unknown("conv_general_dilated with an image-dependent kernel")
    dn = p["dimension_numbers"]
    if p.get("batch_group_count", 1) != 1:
        raise Unknown("conv_general_dilated with batch_group_count")
    lhs, rhs, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    rhs_shape = eqn.invars[1].aval.shape
    k = [int(rhs_shape[d]) for d in rhs[2:]]
    dims = list(lhs[2:])
    x = _in(r, eqn)
    stride, lhs_dil = list(p["window_strides"]), list(p["lhs_dilation"])
    pads = [[int(a), int(b)] for a, b in p["padding"]]
    dil = list(p["rhs_dilation"])
    if any(v != 1 for v in lhs_dil):
        if any(v != 1 for v in stride):
            raise Unknown("conv_general_dilated with both lhs_dilation and strides")
        trims, extra = [], []
        for ki, di, (lo, hi) in zip(k, dil, pads):
            span = (ki - 1) * di
            if lo > span:
                raise Unknown("transposed conv_general_dilated padded beyond its kernel")
            trims.append([span - lo, max(span - hi, 0)])
            extra.append(max(hi - span, 0))
        r.kernel.window("conv", x, outs[0], k, lhs_dil, trims, dil, output_padding=extra,
                        dims=dims)
    else:
        x = _crop_negative(r, x, dims, pads)
        r.kernel.window("conv", x, outs[0], k, stride, [[max(a, 0), max(b, 0)] for a, b in pads],
                        dil, dims=dims)
    if tuple(out_spec) != tuple(lhs):  # the output's dims in another order
        node, layout = r.kernel.state.get(outs[0])
        moved = list(layout)
        for a, b in zip(lhs, out_spec):
            moved[b] = layout[a]
        r.kernel.state.bind(outs[0], node, tuple(moved))


def _crop_negative(r: JaxReader, x: T, dims: list[int], pads: list[list[int]]) -> T:
    """Negative padding is a crop, made before the window."""
    if all(a >= 0 and b >= 0 for a, b in pads):
        return x
    cut = {d: (min(a, 0), min(b, 0)) for d, (a, b) in zip(dims, pads)}
    shape = list(x.shape or ())
    for d, (a, b) in cut.items():
        shape[d] += a + b
    cropped = T(("crop", x.key), tuple(shape))
    r.kernel.pad(x, cropped, cut, "constant")
    return cropped


def reduce_window(kind: str) -> Handler:
    def handler(r: JaxReader, eqn: Any, outs: list[T]) -> None:
        p = eqn.params
        x = _operand(r, eqn) if kind != "window" else _window_operand(r, eqn)
        if any(v != 1 for v in p["base_dilation"]):
            raise Unknown(f"{eqn.primitive.name} with base_dilation")
        pads = [[int(a), int(b)] for a, b in p["padding"]]
        dims = list(range(len(pads)))
        x = _crop_negative(r, x, dims, pads)
        r.kernel.window("maxpool" if kind == "max" else "avgpool", x, outs[0],
                        list(p["window_dimensions"]), list(p["window_strides"]),
                        [[max(a, 0), max(b, 0)] for a, b in pads], list(p["window_dilation"]),
                        dims=dims)
    return handler


def _window_operand(r: JaxReader, eqn: Any) -> T:
    """The generic ``reduce_window`` takes operands then init values."""
    n = len(eqn.outvars)
    tracked = [r.t(v) for v in eqn.invars[:n] if r.tracked(v)]
    if len(tracked) != 1 or n != 1:
        raise Unknown("reduce_window over several operands")
    return tracked[0]


def pad(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    x = _operand(r, eqn)
    config = eqn.params["padding_config"]
    layout = r.kernel.state.layout(x)
    if any(interior and layout[d] is not None for d, (_, _, interior) in enumerate(config)):
        raise Unknown("pad with interior padding along a spatial dim")
    r.kernel.pad(x, outs[0], {d: (int(lo), int(hi)) for d, (lo, hi, _) in enumerate(config)},
                 "constant")


# --------------------------------------------------------------------------- moving data

def slice_(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    p = eqn.params
    strides = p["strides"] or (1,) * len(p["start_indices"])
    cuts = {d: (a, b, s) for d, (a, b, s) in
            enumerate(zip(p["start_indices"], p["limit_indices"], strides))}
    x = _operand(r, eqn)
    if r.kernel.state.parts_of(x) is not None and x.shape is not None:
        # tokens: x[:, 1:] keeps the patches, x[:, :1] the class token
        cut = [d for d, c in cuts.items() if slice(*c).indices(x.shape[d]) != (0, x.shape[d], 1)]
        r.kernel.select(x, outs[0], list(range(len(x.shape))), cut, {d: cuts[d] for d in cut})
        return
    r.kernel.slice("slice", x, outs[0], cuts)


def dynamic_slice(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """Starts that are constants: a slice (JAX clamps them so the slice fits)."""
    x = _operand(r, eqn)
    starts = [r.value(v) for v in eqn.invars[1:]]
    if any(s is None for s in starts):
        raise Unknown("dynamic_slice at image-independent but unknown starts")
    sizes = eqn.params["slice_sizes"]
    cuts = {}
    for d, (s, n) in enumerate(zip(starts, sizes)):
        full = x.shape[d] if x.shape else n
        a = min(max(int(np.asarray(s)), 0), full - n)
        cuts[d] = (a, a + n, 1)
    r.kernel.slice("dynamic_slice", x, outs[0], cuts)


def gather(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """Constant indices: which input index each output reads, found by gathering the
    indices themselves, then matched as a slice or a nearest resize."""
    x = _operand(r, eqn)
    indices = r.value(eqn.invars[1])
    if indices is None:
        raise Unknown("gather at image-independent but unknown indices")
    params = dict(eqn.params)
    if "fill_value" in params:
        params["fill_value"] = 0
    node, layout = r.kernel.state.get(x)
    assert x.shape is not None and outs[0].shape is not None
    probes = {}
    for d, axis in enumerate(layout):
        if axis is None:
            continue
        shape = [1] * len(x.shape)
        shape[d] = x.shape[d]
        probe = np.broadcast_to(np.arange(1, x.shape[d] + 1, dtype=np.int32).reshape(shape),
                                x.shape)
        probes[axis] = np.asarray(eqn.primitive.bind(probe, indices, **params))
    _remap(r, "gather", x, outs[0], probes)


def _remap(r: JaxReader, kind: str, x: T, out: T, probes: dict[int, np.ndarray]) -> None:
    """Emit the per-axis rules that ``probes`` (per input axis: the 1-based input index
    each output element holds, 0 for none) show, with the output's layout."""
    node, layout = r.kernel.state.get(x)
    assert x.shape is not None and out.shape is not None
    n_in = r.kernel.state.graph.size_of(node)
    new_layout: list = [None] * len(out.shape)
    specs, n_out = [], []
    for axis in range(r.kernel.state.nd):
        found = probes[axis]
        varying = [d for d in range(found.ndim) if found.shape[d] > 1 and
                   np.any(np.diff(found, axis=d) != 0)]
        if len(varying) != 1 or new_layout[varying[0]] is not None:
            raise Unknown(f"{kind} that moves positions across dims")
        d = varying[0]
        line = np.moveaxis(found, d, 0).reshape(found.shape[d], -1)
        if np.any(line != line[:, :1]) or np.any(line[:, 0] < 1):
            raise Unknown(f"{kind} that moves positions across dims")
        rows: jax_remap.Rows = [(int(i) - 1,) for i in line[:, 0]]
        spec = jax_remap.match(n_in[axis], len(rows), rows)
        if spec is None:
            raise Unknown(f"{kind} with indices rfield cannot follow")
        new_layout[d] = axis
        specs.append(spec)
        n_out.append(len(rows))
    r.kernel.state.emit(kind, O.Remap(n_out, specs), node, tuple(new_layout), out)


def rev(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    x = _operand(r, eqn)
    layout = r.kernel.state.layout(x)
    if any(layout[d] is not None for d in eqn.params["dimensions"]):
        raise Unknown("rev (a flip) along a spatial dim")
    r.kernel.state.bind(outs[0], *r.kernel.state.get(x))


def concatenate(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    # constants (a class token) go in too: the kernel counts them beside a grid
    r.kernel.concat("concatenate", [r.t(v) for v in eqn.invars], outs[0],
                    eqn.params["dimension"])


def split(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    x = _operand(r, eqn)
    axis = eqn.params["axis"]
    if r.kernel.state.layout(x)[axis] is None:
        r.kernel.split("split", x, outs, axis)
        return
    start = 0
    for o, size in zip(outs, eqn.params["sizes"]):
        r.kernel.slice("split", x, o, {axis: (start, start + size, 1)})
        start += size


def broadcast_in_dim(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    x = _operand(r, eqn)
    if r.kernel.state.parts_of(x) is not None:
        return _broadcast_parts(r, x, outs[0], eqn.params["broadcast_dimensions"])
    node, layout = r.kernel.state.get(x)
    out = outs[0]
    assert out.shape is not None and x.shape is not None
    new: list = [None] * len(out.shape)
    grow = False
    for i, d in enumerate(eqn.params["broadcast_dimensions"]):
        new[d] = layout[i]
        grow |= layout[i] is not None and x.shape[i] == 1 and out.shape[d] > 1
    if grow:  # a size-1 spatial dim repeated reads everything there
        size = r.kernel.state.sizes(out.shape, tuple(new))
        if size is not None:
            node = r.kernel.state.add("broadcast", O.Broadcast(size), [node])
    r.kernel.state.bind(out, node, tuple(new))


def _broadcast_parts(r: JaxReader, x: T, out: T, where: tuple) -> None:
    """broadcast_in_dim of tokens or windows: input dim i becomes output dim where[i];
    the new dims, and size-1 dims repeated, hold no position."""
    node, dims, tokens = r.kernel.state.held(x)
    assert out.shape is not None and x.shape is not None
    new: list = [((None, 0, int(n)),) for n in out.shape]
    for i, d in enumerate(where):
        if x.shape[i] == out.shape[d]:
            new[d] = dims[i]
        elif P.spatial(dims[i]):
            raise Unknown("broadcast of a dim holding positions")
    if tokens is not None:
        tokens = tokens.moved(where[tokens.dim])
    r.kernel.state.bind_parts(out, node, P.tidy(tuple(new)), tokens)


def reshape(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    if eqn.params.get("dimensions"):
        raise Unknown("reshape with dimensions")
    r.kernel.view(_operand(r, eqn), outs[0])


def squeeze(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    x = _operand(r, eqn)
    if r.kernel.state.parts_of(x) is not None:
        return r.kernel.view(x, outs[0])  # dims of size 1 dropped: a view
    node, layout = r.kernel.state.get(x)
    drop = {d % len(layout) for d in eqn.params["dimensions"]}
    r.kernel.state.bind(outs[0], node, tuple(a for d, a in enumerate(layout) if d not in drop))


def expand_dims(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    r.kernel.view(_operand(r, eqn), outs[0])


def transpose(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    r.kernel.permute(_operand(r, eqn), outs[0], eqn.params["permutation"])


# --------------------------------------------------------------------------- mixing

def reduce(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    axes = eqn.params.get("axes", eqn.params.get("dimensions"))
    for o in outs:
        r.kernel.reduce(eqn.primitive.name, _tracked(r, eqn)[0], o, list(axes), keep=False)


def along(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """Cumulative sums, sorting: along a spatial dim every position reads others."""
    x = _tracked(r, eqn)[0]
    axis = eqn.params.get("axis", eqn.params.get("dimension", 0))
    if r.kernel.state.layout(x)[axis % len(r.kernel.state.layout(x))] is not None:
        raise Unknown(f"{eqn.primitive.name} along a spatial dim")
    for o in outs:
        r.kernel.state.bind(o, *r.kernel.state.get(x))


def _dot_letters(r: JaxReader, eqn: Any, operands: list, out: T) -> None:
    """dot_general of a tensor with parts (and a constant or another tensor), as an
    einsum (``operands``: the two, None for a constant)."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    a, b = (len(v.aval.shape) for v in eqn.invars[:2])
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    la = [next(letters) for _ in range(a)]
    shared = {j: la[i] for i, j in list(zip(lc, rc)) + list(zip(lb, rb))}
    lb_ = [shared.get(j) or next(letters) for j in range(b)]
    batch = [la[i] for i in lb]
    free_a = [la[i] for i in range(a) if i not in lc and i not in lb]
    free_b = [lb_[j] for j in range(b) if j not in rc and j not in rb]
    equation = f"{''.join(la)},{''.join(lb_)}->{''.join(batch + free_a + free_b)}"
    r.kernel.einsum("dot_general", equation, operands, out)


def dot_general(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """Image x image (attention): global. Image x fixed matrix: over channels a Dense
    (pointwise); over a spatial dim the weights say which positions each output
    reads: a resize's index rule when they match one, else global."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    a, b = eqn.invars[:2]
    if r.tracked(a) and r.tracked(b):
        if any(r.kernel.state.parts_of(r.t(v)) is not None for v in (a, b)):
            return _dot_letters(r, eqn, [r.t(a), r.t(b)], outs[0])  # attention on tokens
        r.kernel.mix("dot_general", [r.t(a), r.t(b)], outs[0])
        return
    left = r.tracked(a)
    x, w = (a, b) if left else (b, a)
    contract, batch = (lc, lb) if left else (rc, rb)
    w_contract = rc if left else lc
    xt = r.t(x)
    if r.kernel.state.parts_of(xt) is not None:  # tokens or windows: by its letters
        return _dot_letters(r, eqn, [xt, None] if left else [None, xt], outs[0])
    node, layout = r.kernel.state.get(xt)
    rank = len(layout)
    free = [d for d in range(rank) if d not in contract and d not in batch]
    w_rank = len(w.aval.shape)
    w_free = [d for d in range(w_rank) if d not in (rb if left else lb) and d not in w_contract]
    held, kept = [layout[d] for d in batch], [layout[d] for d in free]
    spatial = [d for d in contract if layout[d] is not None and xt.shape and xt.shape[d] != 1]
    if not spatial:  # out: batch dims, then lhs free dims, then rhs free dims
        mixed = [None] * len(w_free)
        out_layout = held + kept + mixed if left else held + mixed + kept
        r.kernel.state.bind(outs[0], r.kernel.state.add("dense", O.Pointwise("dense"), [node]),
                      tuple(out_layout))
        return
    weights = r.array(w)
    if weights is None or len(spatial) != 1 or len(contract) != 1 or batch or w_rank != 2:
        r.kernel.state.bind(outs[0], r.kernel.state.add("dense", O.GlobalPool(), [node]),
                      (None,) * (outs[0].rank or 0))
        return
    _resize(r, xt, outs[0], weights, w_contract[0], spatial[0], kept, left)


def _resize(r: JaxReader, x: T, out: T, weights: np.ndarray, w_in: int, dim: int,
            kept: list, left: bool) -> None:
    """A product with a fixed matrix along one spatial dim (``jax.image.resize``)."""
    node, layout = r.kernel.state.get(x)
    axis = layout[dim]
    rows = jax_remap.rows_of_matrix(weights, w_in)
    n_in = r.kernel.state.graph.size_of(node)
    spec = jax_remap.match(n_in[axis], len(rows), rows)
    if spec is None:
        raise Unknown("dot_general with weights rfield cannot follow along a spatial dim")
    specs: list = [None] * r.kernel.state.nd
    specs[axis] = spec
    n_out = list(n_in)
    n_out[axis] = len(rows)
    new = tuple(kept + [axis]) if left else tuple([axis] + kept)
    r.kernel.state.emit("resize", O.Remap(n_out, specs), node, new, out)


def cond(r: JaxReader, eqn: Any, outs: list[T]) -> None:
    """Every branch read, their outputs merged (the union of their fields); an index
    computed from the image is a global path beside them, as a gate is. A constant
    index takes its branch alone. (``while`` and ``scan`` stay unknown: a loop's
    field depends on how often it runs.)"""
    index, operands = eqn.invars[0], eqn.invars[1:]
    branches = list(eqn.params["branches"])
    fixed = r.array(index)
    if fixed is not None:
        branches = [branches[int(np.clip(fixed.reshape(-1)[0], 0, len(branches) - 1))]]
    results = [r.inline(b, operands) for b in branches]
    for i, o in enumerate(outs):
        ins = [r.t(res[i]) for res in results if r.tracked(res[i])]
        if ins and r.tracked(index):
            ins.append(r.t(index))
        if ins:
            r.kernel.merge("cond", ins, o)


HANDLERS: dict[str, Handler] = {
    **{name: elementwise for name in ELEMENTWISE},
    "conv_general_dilated": conv,
    "reduce_window_max": reduce_window("max"), "reduce_window_min": reduce_window("max"),
    "reduce_window_sum": reduce_window("sum"), "reduce_window": reduce_window("window"),
    "pad": pad, "slice": slice_, "dynamic_slice": dynamic_slice, "gather": gather, "rev": rev,
    "concatenate": concatenate, "split": split,
    "broadcast_in_dim": broadcast_in_dim, "reshape": reshape, "squeeze": squeeze,
    "expand_dims": expand_dims, "transpose": transpose,
    "reduce_sum": reduce, "reduce_max": reduce, "reduce_min": reduce, "reduce_prod": reduce,
    "reduce_and": reduce, "reduce_or": reduce, "reduce_xor": reduce, "argmax": reduce,
    "argmin": reduce,
    "cumsum": along, "cumprod": along, "cummax": along, "cummin": along,
    "cumlogsumexp": along, "sort": along,
    "dot_general": dot_general, "cond": cond,
}
