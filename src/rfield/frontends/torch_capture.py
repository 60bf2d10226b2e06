"""PyTorch front-end: an ``nn.Module`` -> :class:`Graph`, without running it on data.

How the network is captured, and why:

* A ``TorchFunctionMode`` sees every call at the level users write it
  (``F.conv2d``, ``F.interpolate``, ``torch.cat``, ``x + y``, ``x.view(...)``,
  in-place ops), with its arguments: kernel sizes, strides, modes. That is the
  level where receptive fields are defined; aten-level capture would show
  ``convolution`` with normalised arguments and lose ``interpolate``'s mode.
* The forward runs for real, in Python, so models with control flow
  (googlenet, inception_v3, detection wrappers) just work, unlike
  ``torch.fx`` tracing. It runs on *meta* tensors (the parameters are swapped
  for meta copies with ``torch.func.functional_call``): no arithmetic, no
  memory for activations. A model that makes CPU tensors of its own during
  forward cannot run on meta; it is then run once on zeros on the CPU.
* Forward hooks on every submodule give nodes the user's module names, so
  ``layer4`` or ``backbone.body.layer3`` can be asked for.

Each tensor is tracked with the node that produced it and its *layout*: which
tensor dimension holds which spatial axis of the network input. Permutes and
views move the axes; an operation that mixes positions along an axis (a
reduction over it, attention, a flatten of several positions) makes the node
global.
"""

from __future__ import annotations

from collections import Counter
from functools import partialmethod
from typing import Any

from ..core import ops as O
from ..core.graph import INPUT, Graph
from ..errors import RfieldError, ShapeError, TargetError, UnsupportedError, require
from .layout import Broadcast, global_union, positionless
from .layout import match_dims as _match_dims

Layout = tuple  # per tensor dim: the input axis it holds, or None


class _Unknown(Exception):
    """An operator rfield does not know; handled by the caller."""


def _ints(v, n: int) -> list[int]:
    if isinstance(v, (list, tuple)):
        vals = [int(x) for x in v]
        return vals * n if len(vals) == 1 else vals
    return [int(v)] * n


class Capture:
    """Builds the graph while the model runs under the mode."""

    def __init__(self, torch, input_shape: tuple[int, ...], strict: bool) -> None:
        self.torch = torch
        self.strict = strict
        spatial = tuple(input_shape[2:])
        self.graph = Graph(spatial)
        self.nd = len(spatial)
        self.meta: dict[int, tuple[Any, str, Layout]] = {}  # id -> (tensor, node, layout)
        self.module_stack: list[str] = []
        self.module_outputs: dict[str, str] = {}
        self.module_layouts: dict[str, Layout] = {}
        self.counts: Counter = Counter()
        self.unknown: Counter = Counter()
        self.leaves: set[str] = set()  # module paths without children

    # ------------------------------------------------------------------ bookkeeping

    def track(self, tensor, node: str, layout: Layout) -> None:
        self.meta[id(tensor)] = (tensor, node, layout)

    def lookup(self, tensor):
        entry = self.meta.get(id(tensor))
        if entry is None or entry[0] is not tensor:
            return None
        return entry[1], entry[2]

    def is_tracked(self, x) -> bool:
        return isinstance(x, self.torch.Tensor) and self.lookup(x) is not None

    def name_for(self, kind: str) -> str:
        """The op inside a leaf module takes the module's name; others get scope.kind."""
        scope = self.module_stack[-1] if self.module_stack else ""
        base = scope if scope in self.leaves else (f"{scope}.{kind}" if scope else kind)
        self.counts[base] += 1
        n = self.counts[base]
        name = base if n == 1 else f"{base}_{n - 1}"
        while name in self.graph.nodes:
            name += "_"
        return name

    def add(self, kind: str, op: O.Op, inputs: list[str]) -> str:
        name = self.name_for(kind)
        scope = self.module_stack[-1] if self.module_stack else None
        try:
            self.graph.add(name, op, inputs, module=scope)
        except ShapeError as exc:
            raise ShapeError(f"{exc} (module {scope or 'top level'})") from None
        return name

    def spatial_dims(self, layout: Layout) -> dict[int, int]:
        """axis -> tensor dim."""
        return {ax: d for d, ax in enumerate(layout) if ax is not None}

    def sizes_of(self, tensor, layout: Layout) -> tuple[int, ...] | None:
        dims = self.spatial_dims(layout)
        if len(dims) != self.nd:
            return None
        return tuple(int(tensor.shape[dims[a]]) for a in range(self.nd))


def _window_axes(layout: Layout, ndim_op: int, tensor_ndim: int) -> list[int | None]:
    """The input axis held by each of an op's trailing ``ndim_op`` dims."""
    return list(layout[tensor_ndim - ndim_op:])


class TorchFrontend:
    """Maps torch calls to graph nodes. One instance per capture."""

    POINTWISE = {
        "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "gelu",
        "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardswish_",
        "hardsigmoid", "hardsigmoid_", "mish", "elu", "elu_", "selu", "celu", "softplus",
        "prelu", "rrelu", "glu_channels", "dropout", "dropout_", "dropout1d", "dropout2d",
        "dropout3d", "alpha_dropout", "feature_alpha_dropout", "batch_norm", "instance_norm",
        "group_norm", "layer_norm", "local_response_norm", "clone", "contiguous", "detach",
        "to", "float", "double", "half", "type", "type_as", "abs", "neg", "exp", "log",
        "sqrt", "rsqrt", "square", "pow", "clamp", "clamp_", "clip", "clamp_min",
        "clamp_max", "sign", "erf", "reciprocal", "__neg__", "__abs__", "__pow__",
        "__rpow__", "__invert__", "requires_grad_", "cpu",
        "cuda", "bfloat16", "nan_to_num", "logit", "sin", "cos", "exp_", "floor", "ceil",
        "round", "trunc", "frac", "identity", "channel_shuffle", "native_channel_shuffle",
        "log_softmax_channels", "tril", "triu",
    }
    BINARY = {
        "add", "__add__", "__radd__", "__iadd__", "sub", "__sub__", "__rsub__", "__isub__",
        "mul", "__mul__", "__rmul__", "__imul__", "div", "__truediv__", "__rtruediv__",
        "__itruediv__", "true_divide", "maximum", "minimum", "max_elementwise", "where",
        "add_", "sub_", "mul_", "div_", "addcmul", "addcdiv", "lerp", "__and__", "__or__",
        "__floordiv__", "fmod", "remainder", "eq", "ne", "lt", "gt", "le", "ge", "masked_fill",
        "masked_fill_", "copy_", "__matmul_pointwise__",
    }
    IGNORE = {"size", "dim", "numel", "__get__", "__len__", "__iter__", "__bool__", "__index__",
              "__int__", "__float__", "__format__", "__repr__", "__hash__", "__eq__bool",
              "element_size", "stride", "is_contiguous", "data_ptr", "__setstate__", "item",
              "tolist", "is_floating_point", "get_device", "is_complex", "storage_offset",
              "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "zeros_like",
              "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "__contains__",
              "__reduce_ex__", "has_names", "_has_compatible_shallow_copy_type", "__deepcopy__",
              "numpy", "untyped_storage", "dtype", "shape", "device", "is_cuda", "ndim"}

    def __init__(self, cap: Capture) -> None:
        self.cap = cap
        self.torch = cap.torch

    # ------------------------------------------------------------------ dispatch

    def handle(self, func, args, kwargs, out) -> None:
        """Record ``out = func(*args, **kwargs)``; called after the real call."""
        name = getattr(func, "__name__", str(func))
        if name in ("__setitem__",):
            return self.setitem(args)
        tracked = [a for a in _flat(args, kwargs) if self.cap.is_tracked(a)]
        if not tracked:
            return  # nothing that depends on the input
        outs = [o for o in _flat_out(out) if isinstance(o, self.torch.Tensor)]
        if not outs or name in self.IGNORE:
            return
        method = getattr(self, "op_" + name.strip("_").rstrip("_"), None)
        try:
            if method is not None:
                return method(args, kwargs, out)
            if name in self.POINTWISE or name.rstrip("_") in self.POINTWISE:
                return self.pointwise(name.strip("_"), tracked[0], outs)
            if name in self.BINARY:
                return self.merge(name.strip("_").rstrip("_"), args, kwargs, outs[0])
            raise _Unknown(name)
        except _Unknown as exc:
            sources = {self.cap.lookup(t)[0] for t in tracked}
            if len(sources) == 1 and positionless(self.cap.lookup(t)[1] for t in tracked):
                for o in outs:  # nothing spatial to move: the field is unchanged
                    self.cap.track(o, next(iter(sources)),
                                   (None,) * o.dim())
                return
            self.unknown(str(exc), tracked, outs)

    def unknown(self, what: str, tracked, outs) -> None:
        """An operator rfield does not know: a global node, reported once with a count."""
        scope = self.cap.module_stack[-1] if self.cap.module_stack else "top level"
        if self.cap.strict:
            raise UnsupportedError(
                f"operator {what} (in {scope}) is not known to rfield; run without --strict "
                "to treat it as reading the whole input, or check the model with "
                "'rfield verify', which measures the field by back-propagation")
        self.cap.unknown[what] += 1
        node = self._global(what.strip("_"), sorted({self.cap.lookup(t)[0] for t in tracked}))
        for o in outs:
            layout = self._layout_like(o, tracked[0])
            size = self.cap.sizes_of(o, layout)
            if size is not None:  # global, on the grid the output really has
                self.cap.track(o, self.cap.add("broadcast", Broadcast(size), [node]), layout)
            else:
                self.cap.track(o, node, layout)

    def _global(self, kind: str, nodes) -> str:
        return global_union(self.cap.add, kind, nodes)

    def _layout_like(self, out, ref) -> Layout:
        _, layout = self.cap.lookup(ref)
        if out.dim() == len(layout):
            return layout
        return (None,) * out.dim()

    # ------------------------------------------------------------------ generic kinds

    def pointwise(self, kind, src, outs) -> None:
        node, layout = self.cap.lookup(src)
        for o in outs:
            if o.dim() == len(layout) and tuple(o.shape) == tuple(src.shape):
                new = self.cap.add(kind, O.Pointwise(kind), [node])
                self.cap.track(o, new, layout)
            else:
                raise _Unknown(kind)

    def merge(self, kind, args, kwargs, out) -> None:
        """Elementwise ops of several tensors, with broadcasting."""
        sources = [a for a in _flat(args, kwargs) if self.cap.is_tracked(a)]
        out_layout = None
        inputs = []
        spatial_layouts = [self.cap.lookup(s)[1] for s in sources
                           if any(a is not None for a in self.cap.lookup(s)[1])
                           and s.dim() == out.dim()]
        for src in sources:
            node, layout = self.cap.lookup(src)
            if spatial_layouts and not any(a is not None for a in layout):
                # positions mixed upstream (attention): global, broadcast onto the grid
                size = self.cap.sizes_of(out, spatial_layouts[0])
                if size is not None:
                    if not self.cap.graph.nodes.get(node) or \
                            not self.cap.graph.nodes[node].global_:
                        node = self.cap.add("mixed", O.GlobalPool(), [node])
                    inputs.append(self.cap.add("broadcast", Broadcast(size), [node]))
                    continue
            if src.dim() != out.dim():
                # broadcasting adds leading dims
                layout = (None,) * (out.dim() - src.dim()) + tuple(layout)
            sizes_src = self.cap.sizes_of(src, layout[out.dim() - src.dim():]) \
                if src.dim() == out.dim() else None
            node = self._broadcast(node, src, layout, out)
            if out_layout is None or (sizes_src is not None):
                out_layout = layout
            inputs.append(node)
        inputs = list(dict.fromkeys(inputs))
        if len(inputs) == 1:
            new = self.cap.add(kind, O.Pointwise(kind), inputs)
        else:
            new = self.cap.add(kind, O.Merge(kind), inputs)
        self.cap.track(out, new, out_layout)

    def _broadcast(self, node: str, src, layout: Layout, out) -> str:
        """A size-1 spatial axis broadcast against a larger one reads everything there."""
        grow = False
        for d, ax in enumerate(layout):
            if ax is None:
                continue
            d_src = d - (out.dim() - src.dim())
            if d_src >= 0 and src.shape[d_src] == 1 and out.shape[d] > 1:
                grow = True
        if not grow:
            return node
        size = self.cap.sizes_of(out, layout)
        return self.cap.add("broadcast", Broadcast(size), [node])

    # ------------------------------------------------------------------ windows

    def spatial(self, x) -> tuple[str, Layout]:
        """Node and layout of a tensor used as N, C, *spatial.

        A tensor whose positions were mixed (window partitions, attention
        reshapes) has lost its spatial dims: it is global, and is broadcast
        back onto the grid its shape says it has.
        """
        node, layout = self.cap.lookup(x)
        if any(a is not None for a in layout) or x.dim() != self.cap.nd + 2:
            return node, layout
        size = tuple(int(n) for n in x.shape[2:])
        if not self.cap.graph.nodes.get(node) or not self.cap.graph.nodes[node].global_:
            if node != INPUT:
                node = self.cap.add("mixed", O.GlobalPool(), [node])
        new = self.cap.add("broadcast", Broadcast(size), [node])
        layout = (None, None) + tuple(range(self.cap.nd))
        self.cap.track(x, new, layout)
        return new, layout

    def _window(self, kind, x, nsp: int, kernel, stride, padding, dilation, ceil=False,
                transposed=False, output_padding=0):
        node, layout = self.spatial(x)
        axes = _window_axes(layout, nsp, x.dim())
        if any(a is None for a in axes) or len(set(axes)) != nsp or nsp != self.cap.nd:
            raise _Unknown(f"{kind} over non-spatial dims")
        order = [axes.index(a) for a in range(self.cap.nd)]
        k, s, d = _ints(kernel, nsp), _ints(stride, nsp), _ints(dilation, nsp)
        k, s, d = [k[i] for i in order], [s[i] for i in order], [d[i] for i in order]
        if isinstance(padding, str):
            pad = padding
        else:
            p = _ints(padding, nsp)
            pad = [p[i] for i in order]
        if transposed:
            op_ = _ints(output_padding, nsp)
            op = O.ConvTranspose(k, s, pad, [op_[i] for i in order], d)
        elif kind == "conv":
            op = O.Conv(k, s, pad, d)
        else:
            op = O.Conv(k, s, pad, d, ceil_mode=bool(ceil))
            op.kind = kind
        return node, layout, op

    def _conv(self, args, kwargs, out, nsp, transposed=False):
        names = (["input", "weight", "bias", "stride", "padding", "output_padding", "groups",
                  "dilation"] if transposed else
                 ["input", "weight", "bias", "stride", "padding", "dilation", "groups"])
        a = _bind(names, args, kwargs)
        x, w = a["input"], a["weight"]
        if self.cap.is_tracked(w):
            raise _Unknown("conv with an input-dependent weight")
        kernel = list(w.shape[2:])
        kind = "convtranspose" if transposed else "conv"
        node, layout, op = self._window(
            kind, x, nsp, kernel, a.get("stride", 1), a.get("padding", 0), a.get("dilation", 1),
            transposed=transposed, output_padding=a.get("output_padding", 0))
        self._emit(kind, op, node, layout, out)

    def _emit(self, kind, op, node, layout, out):
        new = self.cap.add(kind, op, [node])
        got = self.cap.sizes_of(out, layout)
        want = self.cap.graph.nodes[new].size
        if got != want:
            raise RfieldError(f"rfield computed size {list(want)} for {new} but torch made "
                              f"{list(got)}; please report this model")
        self.cap.track(out, new, layout)

    op_conv1d = partialmethod(_conv, nsp=1)
    op_conv2d = partialmethod(_conv, nsp=2)
    op_conv3d = partialmethod(_conv, nsp=3)
    op_conv_transpose1d = partialmethod(_conv, nsp=1, transposed=True)
    op_conv_transpose2d = partialmethod(_conv, nsp=2, transposed=True)
    op_conv_transpose3d = partialmethod(_conv, nsp=3, transposed=True)

    def _pool(self, args, kwargs, out, nsp, kind):
        if kind == "maxpool":
            names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                     "return_indices"]
        else:
            names = ["input", "kernel_size", "stride", "padding", "ceil_mode",
                     "count_include_pad", "divisor_override"]
        a = _bind(names, args, kwargs)
        stride = a.get("stride") or a["kernel_size"]
        if isinstance(stride, (list, tuple)) and len(stride) == 0:
            stride = a["kernel_size"]
        node, layout, op = self._window(kind, a["input"], nsp, a["kernel_size"], stride,
                                        a.get("padding", 0), a.get("dilation", 1),
                                        ceil=a.get("ceil_mode", False))
        first = out[0] if isinstance(out, tuple) else out
        self._emit(kind, op, node, layout, first)

    op_max_pool1d = op_max_pool1d_with_indices = partialmethod(_pool, nsp=1, kind="maxpool")
    op_max_pool2d = op_max_pool2d_with_indices = partialmethod(_pool, nsp=2, kind="maxpool")
    op_max_pool3d = op_max_pool3d_with_indices = partialmethod(_pool, nsp=3, kind="maxpool")
    op_avg_pool1d = partialmethod(_pool, nsp=1, kind="avgpool")
    op_avg_pool2d = partialmethod(_pool, nsp=2, kind="avgpool")
    op_avg_pool3d = partialmethod(_pool, nsp=3, kind="avgpool")

    def _lp_pool(self, args, kwargs, out, nsp):
        a = _bind(["input", "norm_type", "kernel_size", "stride", "ceil_mode"], args, kwargs)
        self._pool((a["input"], a["kernel_size"], a.get("stride")), {"ceil_mode": a.get(
            "ceil_mode", False)}, out, nsp, "avgpool")

    op_lp_pool1d = partialmethod(_lp_pool, nsp=1)
    op_lp_pool2d = partialmethod(_lp_pool, nsp=2)

    def _adaptive(self, args, kwargs, out, nsp):
        a = _bind(["input", "output_size", "return_indices"], args, kwargs)
        x = a["input"]
        node, layout = self.spatial(x)
        axes = _window_axes(layout, nsp, x.dim())
        if any(ax is None for ax in axes) or nsp != self.cap.nd:
            raise _Unknown("adaptive pooling over non-spatial dims")
        first = out[0] if isinstance(out, tuple) else out
        size = self.cap.sizes_of(first, layout)
        if all(n == 1 for n in size):
            op = O.GlobalPool()
            op.kind = "global"
        else:
            op = O.AdaptivePool(list(size))
        self._emit("adaptivepool" if size != (1,) * nsp else "avgpool", op, node, layout, first)

    op_adaptive_avg_pool1d = op_adaptive_max_pool1d = op_adaptive_max_pool1d_with_indices = \
        partialmethod(_adaptive, nsp=1)
    op_adaptive_avg_pool2d = op_adaptive_max_pool2d = op_adaptive_max_pool2d_with_indices = \
        partialmethod(_adaptive, nsp=2)
    op_adaptive_avg_pool3d = op_adaptive_max_pool3d = op_adaptive_max_pool3d_with_indices = \
        partialmethod(_adaptive, nsp=3)

    def op_interpolate(self, args, kwargs, out):
        a = _bind(["input", "size", "scale_factor", "mode", "align_corners",
                   "recompute_scale_factor", "antialias"], args, kwargs)
        x = a["input"]
        node, layout = self.spatial(x)
        nsp = x.dim() - 2
        axes = _window_axes(layout, nsp, x.dim())
        if any(ax is None for ax in axes) or nsp != self.cap.nd:
            raise _Unknown("interpolate over non-spatial dims")
        mode = a.get("mode", "nearest")
        if a.get("antialias"):
            raise _Unknown(f"interpolate(mode={mode}, antialias=True)")
        order = [axes.index(ax) for ax in range(nsp)]
        out_size = self.cap.sizes_of(out, layout)
        if mode == "area":
            return self._emit("upsample", O.AdaptivePool(list(out_size)), node, layout, out)
        scale = a.get("scale_factor")
        if scale is not None and not a.get("recompute_scale_factor"):
            sc = scale if isinstance(scale, (list, tuple)) else [scale] * nsp
            op = O.Upsample(scale=[float(sc[i]) for i in order], mode=mode,
                            align_corners=bool(a.get("align_corners")))
        else:
            op = O.Upsample(size=list(out_size), mode=mode,
                            align_corners=bool(a.get("align_corners")))
        self._emit("upsample", op, node, layout, out)

    def op_upsample(self, args, kwargs, out):
        self.op_interpolate(args, kwargs, out)

    def op_pixel_shuffle(self, args, kwargs, out):
        self._shuffle(args, kwargs, out, O.PixelShuffle)

    def op_pixel_unshuffle(self, args, kwargs, out):
        self._shuffle(args, kwargs, out, O.PixelUnshuffle)

    def _shuffle(self, args, kwargs, out, cls):
        x, r = args[0], args[1] if len(args) > 1 else next(iter(kwargs.values()))
        node, layout = self.cap.lookup(x)
        if tuple(layout[-2:]) != (0, 1) or self.cap.nd != 2:
            raise _Unknown(cls.kind)
        self._emit(cls.kind, cls(int(r)), node, layout, out)

    def op_pad(self, args, kwargs, out):
        a = _bind(["input", "pad", "mode", "value"], args, kwargs)
        x, pad = a["input"], list(a["pad"])
        node, layout = self.cap.lookup(x)
        per_dim = {x.dim() - 1 - i: (pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)}
        spatial = self.cap.spatial_dims(layout)
        pads = []
        for ax in range(self.cap.nd):
            pads.append(list(per_dim.get(spatial.get(ax, -1), (0, 0))))
        for d, (b, e) in per_dim.items():
            if layout[d] is None and (b or e):
                pass  # padding a channel or batch dim: no spatial effect
        if any(b < 0 or e < 0 for b, e in pads):
            crop = [[-min(b, 0), -min(e, 0)] for b, e in pads]
            node = self.cap.add("crop", O.Crop(crop), [node])
            pads = [[max(b, 0), max(e, 0)] for b, e in pads]
        mode = a.get("mode", "constant")
        self._emit("pad", O.Pad(pads, mode), node, layout, out)

    # ------------------------------------------------------------------ merges and shape

    def op_cat(self, args, kwargs, out):
        a = _bind(["tensors", "dim"], args, kwargs)
        tensors, dim = list(a["tensors"]), a.get("dim", 0)
        tracked = [t for t in tensors if self.cap.is_tracked(t)]
        ref_layout = self.cap.lookup(tracked[0])[1]
        dim = dim % out.dim()
        if ref_layout[dim] is not None:
            raise _Unknown("cat along a spatial dim")
        nodes = list(dict.fromkeys(self.cap.lookup(t)[0] for t in tracked))
        if len(nodes) == 1:
            new = self.cap.add("cat", O.Pointwise("concat"), nodes)
        else:
            new = self.cap.add("cat", O.Merge("concat"), nodes)
        self.cap.track(out, new, ref_layout)

    op_concat = op_cat
    op_concatenate = op_cat

    def op_stack(self, args, kwargs, out):
        a = _bind(["tensors", "dim"], args, kwargs)
        tensors = list(a["tensors"])
        tracked = [t for t in tensors if self.cap.is_tracked(t)]
        layout = list(self.cap.lookup(tracked[0])[1])
        dim = a.get("dim", 0) % out.dim()
        layout.insert(dim, None)
        nodes = list(dict.fromkeys(self.cap.lookup(t)[0] for t in tracked))
        op = O.Merge("stack") if len(nodes) > 1 else O.Pointwise("stack")
        self.cap.track(out, self.cap.add("stack", op, nodes), tuple(layout))

    def _split(self, args, kwargs, out, kind):
        x = args[0]
        dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
        node, layout = self.cap.lookup(x)
        dim = dim % x.dim()
        if layout[dim] is not None:
            raise _Unknown(f"{kind} along a spatial dim")
        for o in out:
            self.cap.track(o, node, layout)

    def op_chunk(self, args, kwargs, out):
        self._split(args, kwargs, out, "chunk")

    def op_split(self, args, kwargs, out):
        self._split(args, kwargs, out, "split")

    def op_unbind(self, args, kwargs, out):
        x = args[0]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0) % x.dim()
        node, layout = self.cap.lookup(x)
        if layout[dim] is not None:
            raise _Unknown("unbind along a spatial dim")
        new_layout = tuple(v for i, v in enumerate(layout) if i != dim)
        for o in out:
            self.cap.track(o, node, new_layout)

    def op_permute(self, args, kwargs, out):
        x = args[0]
        dims = args[1:] if len(args) > 1 else kwargs.get("dims")
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = dims[0]
        node, layout = self.cap.lookup(x)
        self.cap.track(out, node, tuple(layout[d % x.dim()] for d in dims))

    def op_transpose(self, args, kwargs, out):
        x = args[0]
        d0, d1 = (args[1], args[2]) if len(args) > 2 else (kwargs["dim0"], kwargs["dim1"])
        node, layout = self.cap.lookup(x)
        layout = list(layout)
        d0, d1 = d0 % x.dim(), d1 % x.dim()
        layout[d0], layout[d1] = layout[d1], layout[d0]
        self.cap.track(out, node, tuple(layout))

    op_swapaxes = op_transpose
    op_swapdims = op_transpose

    def op_movedim(self, args, kwargs, out):
        x = args[0]
        src, dst = args[1], args[2]
        src = [src] if isinstance(src, int) else list(src)
        dst = [dst] if isinstance(dst, int) else list(dst)
        node, layout = self.cap.lookup(x)
        perm = [None] * x.dim()
        src = [s % x.dim() for s in src]
        dst = [d % x.dim() for d in dst]
        for s, d in zip(src, dst):
            perm[d] = s
        rest = iter(i for i in range(x.dim()) if i not in src)
        perm = [p if p is not None else next(rest) for p in perm]
        self.cap.track(out, node, tuple(layout[p] for p in perm))

    def _reshape(self, x, out):
        """Views that keep every spatial dim whole (channel shuffles, flatten of 1x1) are
        free; views that merge or split positions read several positions at once."""
        node, layout = self.cap.lookup(x)
        spatial = self.cap.spatial_dims(layout)
        in_shape, out_shape = list(x.shape), list(out.shape)
        new_layout = _match_dims(in_shape, out_shape, layout)
        if new_layout is not None:
            self.cap.track(out, node, new_layout)
            return
        if all(in_shape[d] == 1 for d in spatial.values()):
            self.cap.track(out, node, (None,) * out.dim())  # nothing spatial left to lose
            return
        if len(spatial) == self.cap.nd:
            # positions merged or split (tokens, window partitions): rfield cannot follow
            # them, so the result reads everything, and the user is told
            raise _Unknown("view that merges or splits spatial dims")
        self.cap.track(out, node, (None,) * out.dim())

    def op_view(self, args, kwargs, out):
        self._reshape(args[0], out)

    op_reshape = op_view
    op_flatten = op_view
    op_unflatten = op_view
    op_view_as = op_view
    op_reshape_as = op_view
    op_squeeze = op_view
    op_unsqueeze = op_view
    op_expand_as = op_view

    def op_expand(self, args, kwargs, out):
        x = args[0]
        node, layout = self.cap.lookup(x)
        layout = (None,) * (out.dim() - x.dim()) + tuple(layout)
        self.cap.track(out, self._broadcast(node, x, layout, out), layout)

    def op_getitem(self, args, kwargs, out):
        x, index = args[0], args[1]
        node, layout = self.cap.lookup(x)
        if not isinstance(index, tuple):
            index = (index,)
        if any(isinstance(i, self.torch.Tensor) for i in index):
            raise _Unknown("indexing with a tensor")
        # expand Ellipsis
        if Ellipsis in index:
            pos = index.index(Ellipsis)
            fill = x.dim() - (len([i for i in index if i is not None]) - 1)
            index = index[:pos] + (slice(None),) * fill + index[pos + 1:]
        new_layout, starts, d = [], [], 0
        for item in index:
            if item is None:
                new_layout.append(None)
                continue
            ax = layout[d]
            if isinstance(item, int):
                if ax is not None:
                    raise _Unknown("indexing one position of a spatial dim")
            elif isinstance(item, slice):
                if ax is not None and item != slice(None):
                    starts.append((ax, item))
                new_layout.append(ax)
            else:
                raise _Unknown(f"indexing with {type(item).__name__}")
            d += 1
        new_layout += list(layout[d:])
        if starts:
            sl = {ax: item for ax, item in starts}
            st = [sl[a].start or 0 if a in sl else 0 for a in range(self.cap.nd)]
            sp = [sl[a].stop if a in sl else None for a in range(self.cap.nd)]
            stp = [sl[a].step or 1 if a in sl else 1 for a in range(self.cap.nd)]
            new = self.cap.add("slice", O.Slice(st, sp, stp), [node])
            self.cap.track(out, new, tuple(new_layout))
        else:
            self.cap.track(out, node, tuple(new_layout))

    def op_narrow(self, args, kwargs, out):
        a = _bind(["input", "dim", "start", "length"], args, kwargs)
        x = a["input"]
        node, layout = self.cap.lookup(x)
        dim = a["dim"] % x.dim()
        axis = layout[dim]
        if axis is None:  # a channel crop
            self.cap.track(out, node, layout)
            return
        start = int(a["start"]) % x.shape[dim] if int(a["start"]) < 0 else int(a["start"])
        st = [start if ax == axis else 0 for ax in range(self.cap.nd)]
        sp = [start + int(a["length"]) if ax == axis else None for ax in range(self.cap.nd)]
        self._emit("narrow", O.Slice(st, sp, [1] * self.cap.nd), node, layout, out)

    def _reduce(self, args, kwargs, out, kind):
        x = args[0]
        node, layout = self.cap.lookup(x)
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
        dims = list(range(x.dim())) if dim is None else (
            [dim] if isinstance(dim, int) else list(dim))
        dims = [d % x.dim() for d in dims]
        first = out[0] if isinstance(out, tuple) else out
        spatial_hit = any(layout[d] is not None and x.shape[d] > 1 for d in dims)
        new_layout = tuple(None if d in dims else v for d, v in enumerate(layout)) if keep \
            else tuple(v for d, v in enumerate(layout) if d not in dims)
        if spatial_hit:
            new = self.cap.add(kind, O.GlobalPool(), [node])
            self.cap.track(first, new, tuple(None for _ in new_layout))
        else:
            self.cap.track(first, node, new_layout)

    op_mean = partialmethod(_reduce, kind="mean")
    op_sum = partialmethod(_reduce, kind="sum")
    op_amax = partialmethod(_reduce, kind="amax")
    op_std = partialmethod(_reduce, kind="std")
    op_var = partialmethod(_reduce, kind="var")
    op_logsumexp = partialmethod(_reduce, kind="logsumexp")

    def op_max(self, a, k, out):
        if len(a) > 1 and isinstance(a[1], self.torch.Tensor):
            return self.merge("max", a, k, out)
        self._reduce(a, k, out, "max")

    def op_min(self, a, k, out):
        if len(a) > 1 and isinstance(a[1], self.torch.Tensor):
            return self.merge("min", a, k, out)
        self._reduce(a, k, out, "min")

    def _along(self, args, kwargs, out, kind):
        """softmax and friends: global along their dim if it is spatial."""
        x = args[0]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        node, layout = self.cap.lookup(x)
        if dim is None or layout[dim % x.dim()] is not None:
            new = self.cap.add(kind, O.GlobalMix(), [node])
        else:
            new = self.cap.add(kind, O.Pointwise(kind), [node])
        self.cap.track(out, new, layout)

    op_softmax = partialmethod(_along, kind="softmax")
    op_log_softmax = partialmethod(_along, kind="log_softmax")
    op_cumsum = partialmethod(_along, kind="cumsum")

    def op_linear(self, args, kwargs, out):
        x, w = args[0], args[1] if len(args) > 1 else kwargs["weight"]
        node, layout = self.cap.lookup(x)
        if self.cap.is_tracked(w):
            raise _Unknown("linear with an input-dependent weight")
        if layout[-1] is not None and x.shape[-1] > 1:  # mixes positions: global
            new = self.cap.add("linear", O.GlobalPool(), [node])
            self.cap.track(out, new, (None,) * out.dim())
            return
        new = self.cap.add("linear", O.Pointwise("linear"), [node])  # over channels
        self.cap.track(out, new, layout)

    def _matmul(self, args, kwargs, out, kind):
        x, y = args[0], args[1]
        tx, ty = self.cap.is_tracked(x), self.cap.is_tracked(y)
        if tx and ty:  # attention-style product of two input-dependent tensors
            new = self._global(kind, [self.cap.lookup(x)[0], self.cap.lookup(y)[0]])
            self.cap.track(out, new, (None,) * out.dim())
            return
        src = x if tx else y
        node, layout = self.cap.lookup(src)
        contracted = layout[-1] if tx else (layout[-2] if src.dim() >= 2 else layout[-1])
        if contracted is not None and src.shape[-1 if tx else -2] > 1:
            new = self.cap.add(kind, O.GlobalPool(), [node])
            self.cap.track(out, new, (None,) * out.dim())
            return
        new_layout = layout if out.dim() == len(layout) else (None,) * out.dim()
        self.cap.track(out, self.cap.add(kind, O.Pointwise(kind), [node]), new_layout)

    def op_matmul(self, a, k, out):
        self._matmul(a, k, out, "matmul")

    op_bmm = op_matmul
    op_mm = op_matmul

    def op_einsum(self, args, kwargs, out):
        tensors = [t for t in _flat(args[1:], {}) if self.cap.is_tracked(t)]
        new = self._global("einsum", [self.cap.lookup(t)[0] for t in tensors])
        self.cap.track(out, new, (None,) * out.dim())

    def op_scaled_dot_product_attention(self, args, kwargs, out):
        tensors = [t for t in args[:3] if self.cap.is_tracked(t)]
        new = self._global("attention", [self.cap.lookup(t)[0] for t in tensors])
        self.cap.track(out, new, (None,) * out.dim())

    def op_multi_head_attention_forward(self, args, kwargs, out):
        self.op_scaled_dot_product_attention(args, kwargs,
                                             out[0] if isinstance(out, tuple) else out)

    def op_roll(self, args, kwargs, out):
        x = args[0]
        node, layout = self.cap.lookup(x)
        dims = kwargs.get("dims", args[2] if len(args) > 2 else None)
        if dims is None:
            raise _Unknown("roll over the flattened tensor")
        dims = [dims] if isinstance(dims, int) else list(dims)
        if any(layout[d % x.dim()] is not None for d in dims):
            raise _Unknown("roll along a spatial dim")
        self.cap.track(out, node, layout)

    def op_dropout(self, args, kwargs, out):
        self.pointwise("dropout", args[0], [out])

    def setitem(self, args) -> None:
        """x[idx] = y writes input-dependent values at positions rfield does not follow."""
        target, value = args[0], args[2]
        if self.cap.is_tracked(value):
            tracked = [t for t in (target, value) if self.cap.is_tracked(t)]
            self.unknown("__setitem__", tracked, [target])


def _bind(names, args, kwargs) -> dict:
    out = dict(zip(names, args))
    out.update(kwargs)
    return out


def _flat(args, kwargs):
    """Every leaf of the arguments, in order."""
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, (list, tuple)):
            yield from _flat(a, {})
        elif isinstance(a, dict):
            yield from _flat(list(a.values()), {})
        else:
            yield a


def _flat_out(out):
    if isinstance(out, (list, tuple)):
        for o in out:
            yield from _flat_out(o)
    else:
        yield out


# --------------------------------------------------------------------------- entry point

def channel_candidates(model) -> list[int]:
    """Input channel counts to try, most likely first: the in_channels of the first
    convolution, then of the others, then 3 and 1."""
    torch = require("torch", "torch")
    convs = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d,
             torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    found = [int(m.in_channels) for m in model.modules() if isinstance(m, convs)]
    return list(dict.fromkeys(found + [3, 1]))


def input_channels(model) -> int | None:
    """The in_channels of the first convolution in registration order."""
    found = channel_candidates(model)
    return found[0] if found else None


def graph_from_module(model, input_size=None, channels: int | None = None,
                      strict: bool = False, prefix: str = "", **_ignored) -> Graph:
    """Capture ``model`` at ``input_size`` into a Graph.

    ``input_size`` is the spatial size, or (C, *spatial) as torch shapes go; the
    channel count is read from the first convolution unless ``channels`` is given.
    ``prefix`` is put before module names (a detection model's ``backbone``).
    """
    torch = require("torch", "torch")
    if not isinstance(model, torch.nn.Module):
        raise TargetError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if input_size is None:
        raise TargetError("a model needs an input size: --input 224,224 "
                          "(or input_size=(3, 224, 224) in Python)")
    if isinstance(input_size, int):
        input_size = (input_size,)
    size = tuple(int(v) for v in input_size)
    candidates = [channels] if channels is not None else channel_candidates(model)
    spatial = size
    if channels is None and len(size) >= 2 and size[0] in candidates and \
            _conv_ndim(model) == len(size) - 1:
        spatial = size[1:]  # (C, H, W), as torch shapes go
        candidates = [size[0]]
    if not 1 <= len(spatial) <= 3 or min(spatial) < 1:
        raise TargetError(f"input size must be 1 to 3 positive numbers, got {list(spatial)}")
    first_error = None
    for ch in candidates:  # capture on meta is cheap: try the likely channel counts
        try:
            return _capture(torch, model, (1, ch, *spatial), strict, prefix)
        except TargetError as exc:
            first_error = first_error or exc
    raise first_error


def _conv_ndim(model) -> int | None:
    torch = require("torch", "torch")
    for m in model.modules():
        for n, cls in ((1, torch.nn.Conv1d), (2, torch.nn.Conv2d), (3, torch.nn.Conv3d)):
            if isinstance(m, cls):
                return n
    return None


def _capture(torch, model, shape, strict, prefix: str = "") -> Graph:
    from torch.overrides import TorchFunctionMode

    cap = Capture(torch, shape, strict)
    fe = TorchFrontend(cap)

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = _meta_shortcut(torch, func, args, kwargs)
            if out is None:
                out = func(*args, **kwargs)
            fe.handle(func, args, kwargs, out)
            return out

    names = {m: ".".join(p for p in (prefix, n) if p) for n, m in model.named_modules()}
    cap.leaves = {names[m] for m in model.modules() if not any(True for _ in m.children())}
    kinds = {names[m]: type(m).__name__ for m in model.modules()}
    hooks = []

    def pre(mod, _inp):
        cap.module_stack.append(names.get(mod, type(mod).__name__))

    def post(mod, _inp, out):
        path = cap.module_stack.pop() if cap.module_stack else None
        first = out
        while isinstance(first, (list, tuple)) and first:
            first = first[0]
        if isinstance(out, dict):
            first = next(iter(out.values()), None)
        if path and isinstance(first, torch.Tensor) and cap.is_tracked(first):
            node, layout = cap.lookup(first)
            if node != INPUT and path not in cap.module_outputs:
                # a module called twice names its first output
                cap.module_outputs[path] = node
                cap.module_layouts[path] = tuple(layout)

    for m in model.modules():
        if m is model and not prefix:
            continue
        hooks.append(m.register_forward_pre_hook(pre))
        hooks.append(m.register_forward_hook(post))
    was_training = model.training
    model.eval()
    try:
        _run(torch, model, shape, cap, Mode)
    except RfieldError:
        raise
    except Exception as exc:  # the user's model failed: say where, no traceback
        where = (f"module {cap.module_stack[-1]!r}, {kinds.get(cap.module_stack[-1], '')}"
                 if cap.module_stack else "the model's forward")
        raise TargetError(
            f"the model could not be run on an input of shape {list(shape)}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            f"(in {where}). If the model needs another input size, give --input; if it "
            "cannot be captured, 'rfield verify' measures the field by back-propagation"
        ) from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    g = cap.graph
    if not g.nodes:
        raise TargetError("the model did no operation rfield could see on its input")
    g.unknown_ops = dict(cap.unknown)
    g.input_channels = shape[1]
    g.aliases = dict(cap.module_outputs)
    g.alias_layouts = dict(cap.module_layouts)
    g.module_types = {p: kinds[p] for p in g.aliases if p in kinds}
    return g


# Elementwise ops whose output has their first input's shape. On meta tensors PyTorch
# computes their shapes in Python (reference decompositions): slower than a real CPU
# forward for small models. The capture needs only the shape, so it makes it directly.
_SAME_SHAPE = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "gelu",
    "silu", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardsigmoid", "mish",
    "elu", "selu", "batch_norm", "layer_norm", "group_norm", "instance_norm", "dropout",
    "clamp", "clamp_",
}
_BROADCAST = {"add", "__add__", "__radd__", "sub", "__sub__", "__rsub__", "mul", "__mul__",
              "__rmul__", "div", "__truediv__", "__rtruediv__"}
_IN_PLACE = {"add_", "__iadd__", "sub_", "__isub__", "mul_", "__imul__", "div_",
             "__itruediv__"}


def _meta_shortcut(torch, func, args, kwargs):
    """The result of an elementwise op on meta tensors, by shape alone (else None)."""
    name = getattr(func, "__name__", "")
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, torch.Tensor) or x.device.type != "meta":
        return None
    if name in ("contiguous", "clone"):  # a fresh dense tensor, whatever x's strides
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if name in _SAME_SHAPE:
        inplace = name.endswith("_") or kwargs.get("inplace") or (
            name in ("relu", "hardtanh", "leaky_relu", "silu", "hardswish", "elu", "selu",
                     "relu6", "dropout") and len(args) > 1 and args[-1] is True)
        return x if inplace else torch.empty_like(x)
    if name in _BROADCAST or name in _IN_PLACE:
        others = [a for a in args[1:2] if isinstance(a, torch.Tensor)]
        if any(o.device.type != "meta" or o.dtype != x.dtype for o in others) or \
                (len(args) > 1 and not isinstance(args[1], (torch.Tensor, int, float))):
            return None
        if name in _IN_PLACE:
            return x
        shape = torch.broadcast_shapes(x.shape, *(o.shape for o in others))
        return torch.empty(shape, dtype=x.dtype, device="meta")
    return None


def _run(torch, model, shape, cap, Mode) -> None:
    """Run forward on meta tensors; if the model cannot, on zeros on the CPU."""
    from torch.func import functional_call

    def go(device):
        cap.meta.clear()
        cap.graph.nodes.clear()
        cap.counts.clear()
        cap.unknown.clear()
        cap.module_outputs.clear()
        cap.module_layouts.clear()
        cap.module_stack.clear()
        x = torch.zeros(shape, device=device)
        cap.track(x, INPUT, (None, None) + tuple(range(len(shape) - 2)))
        with torch.no_grad():
            if device == "meta":
                state = {k: v.to("meta") for k, v in
                         list(model.named_parameters()) + list(model.named_buffers())}
                with Mode():
                    functional_call(model, state, (x,), strict=False)
            else:
                with Mode():
                    model(x)

    on_meta = all(p.device.type == "meta" for p in model.parameters()) and \
        any(True for _ in model.parameters())
    try:
        go("meta")
        cap.graph.captured_on = "meta"
    except (RfieldError, RecursionError):
        raise
    except Exception:
        if on_meta:
            raise
        go("cpu")
        cap.graph.captured_on = "cpu"
