"""ONNX front-end: a static reading of a ModelProto into a :class:`Graph`.

An ONNX file is untrusted input. rfield needs no weights: external data files
are never opened (only the shapes recorded in the model are read), the file
is parsed as a protobuf and nothing in it is executed. Shapes come from ONNX
shape inference at the requested input size.

This module is the adapter: it reads the file and turns each node into one
call of the shared kernel (:mod:`.kernel`), through the table :data:`HANDLERS`,
keyed by operator and by the opset version where its semantics changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from ..core import ops as O
from ..core.graph import INPUT, Graph
from ..errors import RfieldError, TargetError, require, shown
from ..safeio import check_regular
from .kernel import Kernel, T, Unknown
from .onnx_fold import FOLD, fold
from .onnx_input import LAYOUTS, choose_input, dims_of, spatial_dims
from .onnx_model import (
    MAX_BYTES,
    inferred_shapes,
    module_scopes,
    opset,
    outer_reads,
    read_model,
    topo,
)
from .onnx_model import input_size as input_size_of

MAX_NESTING = 16  # If branches inside If branches (protobuf allows about 30)
#: shape inference re-run with what the last pass folded, until nothing more folds
MAX_FOLD_PASSES = 64


class OnnxReader:
    """Reads one model: the input, shapes from inference, then each node in order."""

    def __init__(self, model, onnx, input_size, strict: bool, path: str,
                 layout: str | None = None, input_name: str | None = None) -> None:
        self.onnx, self.path = onnx, path
        self.opset = opset(model)
        g = model.graph
        self.inits = {t.name: t for t in g.initializer}
        inputs = [i for i in g.input if i.name not in self.inits]
        if not inputs:
            raise TargetError(f"{path}: the model has no input")
        first = choose_input(inputs, input_name, path)
        dims = dims_of(first)
        spatial = spatial_dims(g, first.name, len(dims), layout, path)
        size = input_size_of(dims, spatial, input_size, first.name, path)
        shape = [1] + [v or 1 for v in dims[1:]]
        for axis, d in enumerate(spatial):
            shape[d] = size[axis]
        channels = next((shape[d] for d in range(1, len(dims)) if d not in spatial), 1)
        for d, v in zip(first.type.tensor_type.shape.dim, shape):
            d.Clear()
            d.dim_value = v
        input_layout: list[int | None] = [None] * len(dims)
        for axis, d in enumerate(spatial):
            input_layout[d] = axis
        self.node: Any = None  # the ONNX node being read, for names and messages
        self.consts: dict[str, Any] = {}
        order = topo(g, set(self.inits) | {i.name for i in g.input}, path)
        self.shapes = self._shapes_with_constants(model, order, shape)
        self.kernel = Kernel(size, strict, "ONNX shape inference", self._naming, self._where)
        self.kernel.state.bind(T(first.name), INPUT, tuple(input_layout))
        self.aliases: dict[str, str] = {}
        self.known = set(self.inits) | {i.name for i in g.input} | \
            {o for n in g.node for o in n.output if o}
        self.depth = 0  # of If branches being read
        for n in order:
            self.read_node(n)
        if not self.kernel.state.graph.nodes:
            raise TargetError(f"{path}: no node of the model depends on its input")
        self.graph = self.kernel.state.finish(source="onnx", input_channels=channels,
                                        aliases=self.aliases)

    def _shapes_with_constants(self, model, order: list, shape: list) -> dict:
        """Shapes from ONNX shape inference, re-run with the input-independent subgraphs
        folded to constants (a Reshape to a shape computed from the input's shape has
        no inferred shape until its target is a constant; YOLO's C2f blocks each slice
        at a size computed from the last one's shape, so each pass settles one more)."""
        shapes = inferred_shapes(model, self.onnx, self.path, shape)
        for _ in range(MAX_FOLD_PASSES):  # a pass settles a block's shapes for the next
            before = len(self.consts)
            for n in order:
                self.node = n
                self._fold(n, shapes)
            if len(self.consts) == before:
                break
            shapes = inferred_shapes(self._with_constants(model), self.onnx, self.path, shape)
        return shapes

    def _with_constants(self, model):
        """A copy of the model (for shape inference only) whose folded tensors are
        initializers instead of nodes."""
        folded = {k: v for k, v in self.consts.items() if isinstance(v, np.ndarray)}
        copy = self.onnx.ModelProto()
        copy.CopyFrom(model)
        nodes = [n for n in copy.graph.node if not (n.output and all(
            o in folded for o in n.output if o))]
        del copy.graph.node[:]
        copy.graph.node.extend(nodes)
        copy.graph.initializer.extend(self.onnx.numpy_helper.from_array(v, k)
                                      for k, v in folded.items() if k not in self.inits)
        return copy

    # ------------------------------------------------------------------ helpers

    def _naming(self, kind: str) -> tuple[str, str | None]:
        n = self.node
        return (n.name or f"{n.op_type}_{n.output[0]}"), None

    def _where(self) -> str:
        n = self.node
        return f"{self.path}, node {n.name or n.output[0]!r} ({n.op_type})"

    def t(self, name: str) -> T:
        shape = self.shapes.get(name)
        return T(name, None if shape is None else tuple(shape))

    def tracked(self, name: str) -> bool:
        return bool(name) and self.kernel.state.has(T(name))

    def const(self, name: str):
        """The value of a constant input (initializer, Constant node or a folded
        input-independent subgraph), or None."""
        if not name:
            return None
        value = self.consts.get(name)
        if value is None:
            value = self.inits.get(name)
        if value is None or isinstance(value, np.ndarray):
            return value
        return self._tensor_value(name, value)

    def _tensor_value(self, name: str, t):
        """A TensorProto's array, never from a file the model names."""
        if t.data_location == self.onnx.TensorProto.EXTERNAL or len(t.external_data):
            raise TargetError(f"{self.path}: {name!r} is stored in an external file, which "
                              "rfield never reads")
        try:
            value = self.onnx.numpy_helper.to_array(t)
        except Exception as exc:
            raise TargetError(f"{self.path}: tensor {name!r} is malformed "
                              f"({type(exc).__name__})") from None
        self.consts[name] = value
        return value

    def ints(self, name: str, what: str) -> list[int] | None:
        """A constant input as ints; None when the input is absent."""
        if not name:
            return None
        c = self.const(name)
        if c is None:
            raise Unknown(f"{what} with computed values")
        return [int(v) for v in c.flatten()]

    def _fold(self, n, shapes: dict) -> None:
        """Constants, and a node's value when it is shape arithmetic rfield can compute
        from constants and inferred shapes (weights, never read, are not folded)."""
        if not n.output or n.output[0] in self.consts or (
                n.op_type not in FOLD and n.op_type not in ("Constant", "Shape", "Size")):
            return
        a = self._attrs(n)
        if n.op_type == "Constant":
            return self._constant(n, a)
        if n.op_type in ("Shape", "Size"):
            return self.shape_of(n, a, shapes)
        values = []
        for i in n.input:
            try:
                values.append(self.const(i))
            except TargetError:  # external or stripped: not a constant to compute with
                return
            if i and values[-1] is None:
                return
        folded = fold(n.op_type, a, values)
        if folded is not None:
            self.consts[n.output[0]] = folded

    def _constant(self, n, a: dict) -> None:
        """A Constant node: its tensor is read when a handler asks for it (a weight
        stored in an external file is never opened)."""
        if "value" in a:
            self.consts[n.output[0]] = a["value"]
        for key in ("value_ints", "value_floats", "value_int", "value_float"):
            if key in a:
                self.consts[n.output[0]] = np.asarray(a[key])

    def shape_of(self, n, a: dict, shapes: dict | None = None) -> None:
        """Shape and Size of a tensor read no data: their values are the shapes that
        inference gives at the input size, constants for what follows."""
        shape = (self.shapes if shapes is None else shapes).get(n.input[0])
        if shape is None or None in shape:
            return
        if n.op_type == "Size":
            self.consts[n.output[0]] = np.asarray(int(np.prod(shape)), np.int64)
        else:
            start, end = a.get("start", 0), a.get("end")
            self.consts[n.output[0]] = np.asarray(shape[start:end], np.int64)

    def handler(self, op_type: str):
        versions = HANDLERS.get(op_type, {})
        usable = [v for v in versions if v <= self.opset] or sorted(versions)[:1]
        return versions[max(usable)] if usable else None

    # ------------------------------------------------------------------ nodes

    def _attrs(self, n) -> dict:
        try:
            return {x.name: self.onnx.helper.get_attribute_value(x) for x in n.attribute}
        except Exception:
            raise TargetError(f"{self._where()}: an attribute is malformed") from None

    def read_branch(self, g) -> list[str]:
        """Read the nodes of an If branch in the current scope; its output names."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise TargetError(f"{self._where()}: If branches nest over {MAX_NESTING} deep")
        self.inits.update((t.name, t) for t in g.initializer)
        for n in topo(g, self.known | {t.name for t in g.initializer}, self.path):
            self.node = n
            self._fold(n, self.shapes)
            self.read_node(n)
            self.known.update(o for o in n.output if o)
        self.depth -= 1
        return [o.name for o in g.output]

    def read_node(self, n) -> None:
        self.node = n
        live = [self.t(i) for i in list(n.input) + outer_reads(n) if self.tracked(i)]
        if not live:  # does not depend on the network input: folded before, if it can be
            return
        a = self._attrs(n)
        handler = self.handler(n.op_type)
        try:
            if handler is None:
                raise Unknown(n.op_type)
            handler(self, n, a)
        except Unknown as exc:
            self.kernel.state.unknown(str(exc), live, [self.t(o) for o in n.output if o], n.op_type)
        except RfieldError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError,
                OverflowError, AttributeError) as exc:
            raise TargetError(f"{self._where()} is malformed: {type(exc).__name__}: "
                              f"{shown(str(exc), 80)}") from None
        made = [(o + suffix, node) for o in n.output if self.kernel.state.entry(o)
                for suffix, node, _ in self.kernel.state.pieces(self.t(o)) if node != INPUT]
        for o, node in made:
            self.aliases.setdefault(o, node)
        for scope in module_scopes(n) if made else ():
            self.aliases[scope] = made[0][1]  # the last node inside a module makes its output


def _word(a: dict, key: str, default: str) -> str:
    v = a.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


# --------------------------------------------------------------------------- handlers
# Each takes (reader, node, attributes) and makes one kernel call.

Handler = Callable[[OnnxReader, Any, dict], None]


def _io(r: OnnxReader, n) -> tuple[T, T]:
    return r.t(n.input[0]), r.t(n.output[0])


def pointwise(r: OnnxReader, n, a: dict) -> None:
    src = n.input[0] if r.tracked(n.input[0]) else next(i for i in n.input if r.tracked(i))
    r.kernel.pointwise(n.op_type.lower(), r.t(src), [r.t(n.output[0])])


def merge(r: OnnxReader, n, a: dict) -> None:
    ins = [r.t(i) for i in n.input if r.tracked(i)]
    r.kernel.merge(n.op_type.lower(), ins, r.t(n.output[0]))


def _window(r: OnnxReader, n, a: dict, kind: str) -> None:
    x, out = _io(r, n)
    nsp = r.kernel.state.rank(x) - 2
    if kind in ("conv", "convtranspose") and "kernel_shape" not in a:
        w = r.shapes.get(n.input[1])
        kernel = list(w[2:]) if w else []
    else:
        kernel = list(a["kernel_shape"])
    if len(kernel) != nsp:
        raise Unknown(f"{n.op_type} with kernel {kernel}")
    strides = list(a.get("strides", [1] * nsp))
    dil = list(a.get("dilations", [1] * nsp))
    pads = list(a.get("pads", [0] * (2 * nsp)))
    padding: Any = [[pads[i], pads[i + nsp]] for i in range(nsp)]
    auto = _word(a, "auto_pad", "NOTSET")
    if kind == "convtranspose":
        out_pad = list(a.get("output_padding", [0] * nsp))
        if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
            padding = _transposed_padding(x, a, auto, kernel, strides, dil, out_pad)
        r.kernel.window(kind, x, out, kernel, strides, padding, dil, output_padding=out_pad)
        return
    padding = {"VALID": "valid", "SAME_UPPER": "same", "SAME_LOWER": "same_lower"}.get(
        auto, padding)
    r.kernel.window(kind, x, out, kernel, strides, padding, dil,
                    ceil_mode=bool(a.get("ceil_mode", 0)))


def _transposed_padding(x: T, a: dict, auto: str, kernel, strides, dil, out_pad) -> list:
    """Pads that give the requested output_shape (or input * stride under SAME_*);
    ``out_pad`` grows where they would be negative, as the spec says."""
    nsp = len(kernel)
    if x.shape is None or None in x.shape[2:]:
        raise Unknown("ConvTranspose with an unknown input size")
    sizes = list(x.shape[2:])
    want = list(a["output_shape"][-nsp:]) if "output_shape" in a else \
        [v * s for v, s in zip(sizes, strides)]
    padding = []
    for i in range(nsp):
        total = strides[i] * (sizes[i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 - want[i]
        if total < 0:
            out_pad[i] -= total
            total = 0
        half = total // 2
        padding.append([half, total - half] if auto == "SAME_UPPER" else [total - half, half])
    return padding


def conv(r, n, a):
    _window(r, n, a, "conv")


def conv_transpose(r, n, a):
    _window(r, n, a, "convtranspose")


def max_pool(r, n, a):
    _window(r, n, a, "maxpool")


def avg_pool(r, n, a):
    _window(r, n, a, "avgpool")


def lp_pool(r, n, a):
    _window(r, n, a, "lppool")


def global_pool(r, n, a):
    r.kernel.global_pool("global", *_io(r, n))


def _reduce(r: OnnxReader, n, a: dict, axes) -> None:
    x, out = _io(r, n)
    r.kernel.reduce(n.op_type, x, out, axes, bool(a.get("keepdims", 1)))


def reduce_attr(r, n, a):
    """Reduce* up to opset 12 (ReduceSum) or 17 (the others): axes as an attribute."""
    _reduce(r, n, a, a.get("axes"))


def reduce_input(r, n, a):
    """Reduce* from opset 13 (ReduceSum) or 18: axes as an input; none given reduces all,
    or nothing with noop_with_empty_axes."""
    axes = r.ints(n.input[1] if len(n.input) > 1 else "", "Reduce axes")
    if not axes and a.get("noop_with_empty_axes", 0):
        x, out = _io(r, n)
        r.kernel.state.copy(x, out)
        return
    _reduce(r, n, a, axes or None)


def arg_reduce(r, n, a):
    """ArgMax/ArgMin: one axis (default 0)."""
    _reduce(r, n, a, [a.get("axis", 0)])


def softmax_v1(r, n, a):
    """Softmax before opset 13: the input is flattened from ``axis`` (default 1) on."""
    x, out = _io(r, n)
    rank = r.kernel.state.rank(x)
    r.kernel.along(n.op_type.lower(), x, out, range(a.get("axis", 1) % rank, rank))


def softmax(r, n, a):
    r.kernel.along(n.op_type.lower(), *_io(r, n), [a.get("axis", -1)])


def _resize(r: OnnxReader, n, a: dict, scales, ctm: str, nearest: str) -> None:
    x, out = _io(r, n)
    node, layout, _ = r.kernel.window_order(x, r.kernel.state.rank(x) - 2, n.op_type)
    mode = _word(a, "mode", "nearest")
    if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                   "half_pixel_symmetric", "tf_crop_and_resize"):
        raise Unknown(f"Resize(coordinate_transformation_mode={ctm})")
    size = r.kernel.state.sizes(out.shape, layout)
    if size is None:
        raise Unknown("Resize with unknown output size")
    dims = {ax: d for d, ax in enumerate(layout) if ax is not None}
    axes = [int(v) % len(layout) for v in a["axes"]] if a.get("axes") is not None \
        else list(range(len(layout)))
    per_axis: list = [None] * r.kernel.state.nd
    if scales is not None and len(scales):
        full = [1.0] * len(layout)
        for d, s in zip(axes, [float(v) for v in scales]):
            full[d] = s
        per_axis = [Fraction(full[dims[ax]]) for ax in range(r.kernel.state.nd)]
    elif _word(a, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise Unknown("Resize to sizes keeping the aspect ratio")
    roi = _roi(r, n, x, axes, dims, size) if ctm == "tf_crop_and_resize" else None
    op = O.Resize(size, per_axis, mode, ctm, nearest, antialias=bool(a.get("antialias")),
                  roi=roi)
    r.kernel.state.emit("resize", op, node, layout, out)


def _roi(r: OnnxReader, n, x: T, axes: list[int], dims: dict, size) -> list:
    """Per spatial axis, the (start, end) of the crop, as fractions of the input; a crop
    that samples outside the input (where the extrapolation value is written instead) is
    not followed."""
    values = r.const(n.input[1]) if len(n.input) > 1 and n.input[1] else None
    if values is None or x.shape is None:
        raise Unknown("Resize(tf_crop_and_resize) with a computed roi")
    values = [Fraction(float(v)) for v in values.flatten()]
    rank = len(x.shape)
    full = [(Fraction(0), Fraction(1))] * rank
    for i, d in enumerate(axes):
        full[d] = (values[i], values[i + len(axes)])
    roi = [full[dims[ax]] for ax in range(len(size))]
    for ax, (lo_hi, m) in enumerate(zip(roi, size)):
        length = x.shape[dims[ax]]
        a_, b_ = O.Resize.source("tf_crop_and_resize", length, m, Fraction(0), lo_hi)
        if a_ < 0:
            raise Unknown("Resize(tf_crop_and_resize) with a mirrored roi")
        if not (0 <= b_ <= length - 1 and 0 <= a_ * (m - 1) + b_ <= length - 1):
            raise Unknown("Resize(tf_crop_and_resize) sampling outside the input")
    return roi


def upsample_attr(r, n, a):
    """Upsample at opset 7: scales as an attribute; asymmetric, nearest floor."""
    _resize(r, n, a, a.get("scales"), "asymmetric", "floor")


def upsample_input(r, n, a):
    """Upsample from opset 9, and Resize at opset 10: scales as the second input."""
    _resize(r, n, a, r.const(n.input[1]) if len(n.input) > 1 else None, "asymmetric", "floor")


def resize(r, n, a):
    """Resize from opset 11: roi, scales, sizes inputs and the coordinate modes."""
    scales = r.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
    _resize(r, n, a, scales, _word(a, "coordinate_transformation_mode", "half_pixel"),
            _word(a, "nearest_mode", "round_prefer_floor"))


def _pad(r: OnnxReader, n, a: dict, pads: list[int], axes: list[int] | None) -> None:
    x, out = _io(r, n)
    rank = r.kernel.state.rank(x)
    axes = list(range(rank)) if axes is None else [v % rank for v in axes]
    k = len(axes)
    per_dim = {d: (pads[i], pads[i + k]) for i, d in enumerate(axes)}
    mode = _word(a, "mode", "constant")
    r.kernel.pad(x, out, per_dim, {"edge": "replicate", "wrap": "circular"}.get(mode, mode))


def pad_attr(r, n, a):
    """Pad before opset 11: pads (paddings at opset 1) as an attribute."""
    _pad(r, n, a, list(a.get("pads", a.get("paddings", []))), None)


def pad_input(r, n, a):
    """Pad from opset 11: pads as an input; from 18, optional axes."""
    pads = r.ints(n.input[1], "Pad")
    axes = r.ints(n.input[3], "Pad axes") if len(n.input) > 3 else None
    _pad(r, n, a, pads or [], axes)


def _slice(r: OnnxReader, n, starts, ends, axes, steps) -> None:
    x, out = _io(r, n)
    rank = r.kernel.state.rank(x)
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    cuts = {ax % rank: (s, e, st) for s, e, ax, st in zip(starts, ends, axes, steps)}
    if r.kernel.state.parts_of(x) is not None:  # tokens: the class token or the patches
        sizes = x.shape or (None,) * rank
        cut = [d for d, c in cuts.items()
               if sizes[d] is None or slice(*c).indices(sizes[d]) != (0, sizes[d], 1)]
        r.kernel.select(x, out, list(range(rank)), cut, {d: cuts[d] for d in cut})
        return
    r.kernel.slice("slice", x, out, cuts)


def slice_attr(r, n, a):
    """Slice before opset 10: starts, ends, axes as attributes."""
    _slice(r, n, a["starts"], a["ends"], a.get("axes"), None)


def slice_input(r, n, a):
    """Slice from opset 10: starts, ends, axes, steps as inputs."""
    vals = [r.ints(n.input[i] if len(n.input) > i else "", "Slice") for i in range(1, 5)]
    _slice(r, n, *vals)


def concat(r, n, a):
    # constants (a class token) go in too: the kernel counts them beside a grid
    r.kernel.concat("concat", [r.t(i) for i in n.input if i], r.t(n.output[0]),
                    a.get("axis", 1))


def split(r, n, a):
    r.kernel.split("Split", r.t(n.input[0]), [r.t(o) for o in n.output if o],
                   a.get("axis", 0))


def transpose(r, n, a):
    x, out = _io(r, n)
    perm = a.get("perm", list(reversed(range(r.kernel.state.rank(x)))))
    r.kernel.permute(x, out, list(perm))


def view(r, n, a):
    r.kernel.view(*_io(r, n))


def matmul(r, n, a):
    x, y = (r.t(i) if r.tracked(i) else None for i in n.input[:2])
    r.kernel.matmul("matmul", x, y, r.t(n.output[0]))


def expand(r, n, a):
    """Expand: size-1 dims repeated (a spatial one of size 1 then reads its one unit)."""
    x, out = _io(r, n)
    r.kernel.expand(x, out)


def gather(r, n, a):
    """Gather with constant indices along a dim holding no position (qkv[0], a head)."""
    x, out = _io(r, n)
    idx = r.const(n.input[1])
    if idx is None or np.ndim(idx) > 1:
        raise Unknown("Gather with computed or nested indices")
    rank = r.kernel.state.rank(x)
    axis = a.get("axis", 0) % rank
    first = int(np.ravel(idx)[0]) if np.size(idx) else 0
    if np.ndim(idx) == 1:
        picks = {axis: (first, first + 1, 1)} if np.size(idx) == 1 else None
        r.kernel.select(x, out, list(range(rank)), [axis], picks)
    else:  # one index: the class token of a token dim
        r.kernel.select(x, out, [d for d in range(rank) if d != axis], [], {axis: first})


def einsum(r, n, a):
    """Read by its letters; an equation with an ellipsis reads every position."""
    eq = a["equation"].decode() if isinstance(a["equation"], bytes) else a["equation"]
    operands = [r.t(i) if r.tracked(i) else None for i in n.input]
    r.kernel.einsum("Einsum", eq, operands, r.t(n.output[0]))


def shape_of(r, n, a):
    r.shape_of(n, a)


def norm_over_space(r, n, a):
    """InstanceNormalization, GroupNormalization: statistics over the dims after C."""
    x, out = _io(r, n)
    r.kernel.normalize(n.op_type, x, out, range(2, r.kernel.state.rank(x)))


def layer_norm(r, n, a):
    """LayerNormalization: statistics over the dims from ``axis`` (default -1) on."""
    x, out = _io(r, n)
    rank = r.kernel.state.rank(x)
    r.kernel.normalize(n.op_type, x, out, range(a.get("axis", -1) % rank, rank))


def depth_to_space(r, n, a):
    r.kernel.blocks(*_io(r, n), O.PixelShuffle(int(a["blocksize"])))


def space_to_depth(r, n, a):
    r.kernel.blocks(*_io(r, n), O.PixelUnshuffle(int(a["blocksize"])))


# operator -> {opset version where these semantics begin: handler}
def if_node(r: OnnxReader, n, a: dict) -> None:
    """Both branches, their outputs merged (the union of their fields), when the
    condition is not a constant; the condition, if it depends on the input, is a global
    path like a gate. A constant condition takes its branch alone."""
    cond = r.const(n.input[0])
    branches = [a["then_branch"], a["else_branch"]]
    if cond is not None:
        if cond.size != 1:
            raise TargetError(f"{r._where()}: the condition has {cond.size} values")
        branches = branches[:1] if bool(cond.flatten()[0]) else branches[1:]
    results = [r.read_branch(g) for g in branches]
    r.node = n
    for i, out in enumerate(n.output):
        ins = [r.t(names[i]) for names in results if i < len(names) and r.tracked(names[i])]
        if r.tracked(n.input[0]) and ins:
            ins.append(r.t(n.input[0]))
        if ins:
            r.kernel.merge("if", ins, r.t(out))


HANDLERS: dict[str, dict[int, Handler]] = {
    "Gather": {1: gather}, "Einsum": {12: einsum}, "Expand": {8: expand},
    "Conv": {1: conv}, "ConvTranspose": {1: conv_transpose},
    "MaxPool": {1: max_pool}, "AveragePool": {1: avg_pool}, "LpPool": {1: lp_pool},
    "GlobalAveragePool": {1: global_pool}, "GlobalMaxPool": {1: global_pool},
    "GlobalLpPool": {1: global_pool},
    "Resize": {10: upsample_input, 11: resize},
    "Upsample": {7: upsample_attr, 9: upsample_input},
    "Pad": {1: pad_attr, 11: pad_input},
    "Slice": {1: slice_attr, 10: slice_input},
    "Concat": {1: concat}, "Split": {1: split},
    "Transpose": {1: transpose}, "Reshape": {1: view}, "Flatten": {1: view},
    "Squeeze": {1: view, 13: view}, "Unsqueeze": {1: view, 13: view},
    "Gemm": {1: matmul}, "MatMul": {1: matmul},
    "Softmax": {1: softmax_v1, 13: softmax}, "LogSoftmax": {1: softmax_v1, 13: softmax},
    "Hardmax": {1: softmax_v1, 13: softmax},
    "DepthToSpace": {1: depth_to_space}, "SpaceToDepth": {1: space_to_depth},
    "Shape": {1: shape_of}, "Size": {1: shape_of},
    "ReduceSum": {1: reduce_attr, 13: reduce_input},
    "ReduceMean": {1: reduce_attr, 18: reduce_input},
    "ReduceMax": {1: reduce_attr, 18: reduce_input},
    "ReduceMin": {1: reduce_attr, 18: reduce_input},
    "ReduceProd": {1: reduce_attr, 18: reduce_input},
    "ReduceL1": {1: reduce_attr, 18: reduce_input},
    "ReduceL2": {1: reduce_attr, 18: reduce_input},
    "ReduceLogSum": {1: reduce_attr, 18: reduce_input},
    "ReduceLogSumExp": {1: reduce_attr, 18: reduce_input},
    "ReduceSumSquare": {1: reduce_attr, 18: reduce_input},
    "ArgMax": {1: arg_reduce}, "ArgMin": {1: arg_reduce},
    # elementwise over several inputs, with broadcasting
    "Add": {1: merge}, "Sub": {1: merge}, "Mul": {1: merge}, "Div": {1: merge},
    "Sum": {1: merge}, "Max": {1: merge}, "Min": {1: merge}, "Mean": {1: merge},
    "Pow": {1: merge}, "Where": {1: merge}, "And": {1: merge}, "Or": {1: merge},
    "Xor": {1: merge}, "Equal": {1: merge}, "Greater": {1: merge}, "Less": {1: merge},
    "GreaterOrEqual": {1: merge}, "LessOrEqual": {1: merge}, "Mod": {1: merge},
    "BitShift": {1: merge},
    # index o reads index o: activations, per-channel norms, casts
    "Relu": {1: pointwise}, "LeakyRelu": {1: pointwise}, "Sigmoid": {1: pointwise},
    "Tanh": {1: pointwise}, "Clip": {1: pointwise}, "HardSigmoid": {1: pointwise},
    "HardSwish": {1: pointwise}, "Elu": {1: pointwise}, "Selu": {1: pointwise},
    "Celu": {1: pointwise}, "Softplus": {1: pointwise}, "Softsign": {1: pointwise},
    "Gelu": {1: pointwise}, "Mish": {1: pointwise}, "PRelu": {1: pointwise},
    "Erf": {1: pointwise}, "Exp": {1: pointwise}, "Log": {1: pointwise},
    "Sqrt": {1: pointwise}, "Reciprocal": {1: pointwise}, "Neg": {1: pointwise},
    "Abs": {1: pointwise}, "Identity": {1: pointwise}, "Dropout": {1: pointwise},
    "If": {1: if_node},
    "Cast": {1: pointwise}, "CastLike": {1: pointwise}, "BatchNormalization": {1: pointwise},
    "InstanceNormalization": {1: norm_over_space}, "GroupNormalization": {1: norm_over_space},
    "LayerNormalization": {1: layer_norm}, "LpNormalization": {1: pointwise},
    "LRN": {1: pointwise}, "ThresholdedRelu": {1: pointwise}, "Floor": {1: pointwise},
    "Ceil": {1: pointwise}, "Round": {1: pointwise}, "Sign": {1: pointwise},
    "Sin": {1: pointwise}, "Cos": {1: pointwise}, "Not": {1: pointwise},
    "IsNaN": {1: pointwise}, "IsInf": {1: pointwise}, "Shrink": {1: pointwise},
    "QuantizeLinear": {1: pointwise}, "DequantizeLinear": {1: pointwise},
    "Swish": {1: pointwise},
}


def graph_from_onnx(path, input_size=None, strict: bool = False, layout: str | None = None,
                    input_name: str | None = None, **_ignored) -> Graph:
    """Read an ONNX file (no weights, no external data) into a Graph.

    The image input is the only image-like one (or ``input_name``); its spatial dims
    are read from how the graph uses it, or from ``layout`` ("nchw" or "nhwc").
    """
    path = os.fspath(path)
    check_regular(path, "ONNX file", MAX_BYTES)  # a FIFO or a device: said before onnx
    onnx = require("onnx", "onnx")
    if layout is not None and layout not in LAYOUTS:
        raise TargetError(f"layout must be one of {', '.join(LAYOUTS)}, got {shown(layout)}")
    model = read_model(path, onnx)
    return OnnxReader(model, onnx, input_size, strict, path, layout, input_name).graph
