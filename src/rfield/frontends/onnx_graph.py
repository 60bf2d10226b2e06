"""ONNX front-end: a static reading of a ModelProto into a :class:`Graph`.

An ONNX file is untrusted input. rfield needs no weights: external data files
are never opened (only the shapes recorded in the model are read), the file
is parsed as a protobuf and nothing in it is executed. Shapes come from ONNX
shape inference at the requested input size.
"""

from __future__ import annotations

import mmap
import os
from collections import Counter
from fractions import Fraction

from ..core import ops as O
from ..core import rules as R
from ..core.graph import INPUT, Graph
from ..errors import RfieldError, ShapeError, SpecError, TargetError, UnsupportedError, require
from .layout import Broadcast, global_union, match_dims, positionless
from .onnx_wire import strip_weights

MAX_BYTES = 2 * 1024 ** 3
MAX_DIM = 1 << 20

POINTWISE = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Celu", "Softplus", "Softsign", "Gelu", "Mish", "PRelu", "Erf", "Exp", "Log", "Sqrt",
    "Reciprocal", "Neg", "Abs", "Identity", "Dropout", "Cast", "BatchNormalization",
    "InstanceNormalization", "GroupNormalization", "LRN", "ThresholdedRelu", "Floor", "Ceil",
    "Round", "Sign", "Sin", "Cos", "Not", "IsNaN", "IsInf", "Shrink", "QuantizeLinear",
    "DequantizeLinear", "Swish", "CastLike", "LayerNormalization", "LpNormalization",
}
BINARY = {"Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Pow", "Where", "And",
          "Or", "Xor", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Mod",
          "BitShift", "PRelu"}
REDUCE = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin"}


class _Unknown(Exception):
    pass


def _read_model(path: str, onnx):
    if not os.path.exists(path):
        raise TargetError(f"{path}: no such file")
    if os.path.isdir(path):
        raise TargetError(f"{path}: is a directory, not an ONNX file")
    if os.path.getsize(path) > MAX_BYTES:
        raise TargetError(f"{path}: larger than 2 GB; rfield reads models without weights")
    model = onnx.ModelProto()
    try:
        with open(path, "rb") as fh:
            if os.path.getsize(path) == 0:
                raise ValueError("empty file")
            # mapped, not read: the pages that hold weights are never touched
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                stripped = strip_weights(mapped)
        model.ParseFromString(stripped)
    except OSError as exc:
        raise TargetError(f"{path}: cannot be read ({exc.strerror})") from None
    except Exception:
        raise TargetError(f"{path}: not a valid ONNX file (truncated or malformed protobuf)") \
            from None
    if not model.HasField("graph") or not model.graph.node:
        raise TargetError(f"{path}: the ONNX model has no graph nodes")
    return model


def _attrs(node, onnx) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _topo(graph, known: set[str], path: str) -> list:
    """Nodes in dependency order; a cycle or an input nobody makes is an error."""
    producers = {}
    for n in graph.node:
        for o in n.output:
            if o:
                producers[o] = n
    order, state = [], {}

    def visit(n, stack):
        key = id(n)
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise TargetError(f"{path}: the graph has a cycle through node {n.name or n.op_type!r}")
        state[key] = 1
        stack.append(n)
        for i in n.input:
            if not i or i in known:
                continue
            if i not in producers:
                raise TargetError(f"{path}: node {n.name or n.op_type!r} reads {i!r}, which no "
                                  "node, input or initializer provides")
            visit(producers[i], stack)
        stack.pop()
        state[key] = 2
        order.append(n)

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(graph.node) + 1000))
    try:
        for n in graph.node:
            visit(n, [])
    finally:
        sys.setrecursionlimit(limit)
    return order


class OnnxReader:
    def __init__(self, model, onnx, input_size, strict: bool, path: str) -> None:
        self.onnx, self.strict, self.path = onnx, strict, path
        g = model.graph
        self.inits = {t.name: t for t in g.initializer}
        inputs = [i for i in g.input if i.name not in self.inits]
        if not inputs:
            raise TargetError(f"{path}: the model has no input")
        first = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in first.type.tensor_type.shape.dim]
        if not 3 <= len(dims) <= 5:
            raise TargetError(f"{path}: input {first.name!r} has {len(dims)} dims; rfield reads "
                              "N, C and 1 to 3 spatial dims")
        spatial = dims[2:]
        if input_size is not None:
            size = tuple(int(v) for v in input_size)
            if len(size) == len(spatial) + 1:
                size = size[1:]
            if len(size) != len(spatial):
                raise TargetError(f"--input has {len(size)} values but the model's input "
                                  f"{first.name!r} has {len(spatial)} spatial dims")
        elif any(v is None or v < 1 for v in spatial):
            raise TargetError(f"{path}: the input {first.name!r} has no fixed spatial size; "
                              "give --input")
        else:
            size = tuple(spatial)
        if any(v > MAX_DIM or v < 1 for v in size):
            raise TargetError(f"{path}: input size {list(size)} is absurd")
        channels = dims[1] if dims[1] else 1
        shape = [1, channels, *size]
        for d, v in zip(first.type.tensor_type.shape.dim, shape):
            d.Clear()
            d.dim_value = v
        for extra in inputs[1:]:
            raise TargetError(f"{path}: the model has more than one input "
                              f"({first.name!r}, {extra.name!r}); rfield reads one")
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False,
                                                          data_prop=True)
        except Exception as exc:
            raise TargetError(f"{path}: ONNX shape inference failed at input {shape}: "
                              f"{str(exc).splitlines()[0]}") from None
        self.shapes: dict[str, list[int] | None] = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + \
                list(inferred.graph.input):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                                        for d in t.shape.dim]
        for t in g.initializer:
            self.shapes[t.name] = list(t.dims)
        for name, dims_ in self.shapes.items():
            if any(v is not None and v > MAX_DIM * 64 for v in dims_):
                raise TargetError(f"{path}: tensor {name!r} has an absurd dimension {dims_}")
        self.graph = Graph(size)
        self.graph.input_channels = channels
        self.nd = len(size)
        self.tensors: dict[str, tuple[str, tuple]] = {
            first.name: (INPUT, (None, None) + tuple(range(self.nd)))}
        self.consts: dict[str, object] = {}
        self.unknown: Counter = Counter()
        known = set(self.inits) | {i.name for i in g.input}
        for n in _topo(g, known, path):
            self.read_node(n)
        if not self.graph.nodes:
            raise TargetError(f"{path}: no node of the model depends on its input")
        self.graph.unknown_ops = dict(self.unknown)
        for out in g.output:
            if out.name in self.tensors and self.tensors[out.name][0] != INPUT:
                self.graph.aliases.setdefault(out.name, self.tensors[out.name][0])

    # ------------------------------------------------------------------ helpers

    def const(self, name: str):
        """The value of a constant input (initializer or Constant node), or None."""
        if not name:
            return None
        if name in self.consts:
            return self.consts[name]
        t = self.inits.get(name)
        if t is None:
            return None
        if t.data_location == self.onnx.TensorProto.EXTERNAL:
            raise TargetError(f"{self.path}: {name!r} is stored in an external file, which "
                              "rfield never reads")
        return self.onnx.numpy_helper.to_array(t)

    def shape(self, name: str):
        return self.shapes.get(name)

    def add(self, node, kind: str, op: O.Op, inputs: list[str]) -> str:
        base = node.name or f"{node.op_type}_{node.output[0]}"
        name = base
        k = 1
        while name in self.graph.nodes:
            name = f"{base}_{k}"
            k += 1
        try:
            self.graph.add(name, op, inputs)
        except (ShapeError, SpecError) as exc:
            raise type(exc)(f"{self.path}: {exc}") from None
        self.graph.aliases.setdefault(node.output[0], name)
        return name

    def spatial(self, name: str) -> tuple[str, tuple]:
        node, layout = self.tensors[name]
        return node, layout

    # ------------------------------------------------------------------ nodes

    def read_node(self, n) -> None:
        op = n.op_type
        if op == "Constant":
            a = _attrs(n, self.onnx)
            if "value" in a:
                self.consts[n.output[0]] = self.onnx.numpy_helper.to_array(a["value"])
            return
        live = [i for i in n.input if i in self.tensors]
        if not live:
            return  # does not depend on the network input (shape arithmetic, constants)
        try:
            handler = getattr(self, "op_" + op, None)
            if handler is not None:
                handler(n, _attrs(n, self.onnx))
            elif op in POINTWISE:
                self.pointwise(n)
            elif op in BINARY:
                self.merge(n)
            elif op in REDUCE:
                self.reduce(n, _attrs(n, self.onnx))
            else:
                raise _Unknown(op)
        except _Unknown as exc:
            sources = {self.tensors[i][0] for i in live}
            if len(sources) == 1 and positionless(self.tensors[i][1] for i in live):
                for o in n.output:  # nothing spatial to move: the field is unchanged
                    shape = self.shape(o)
                    self.tensors[o] = (next(iter(sources)), (None,) * len(shape) if shape
                                       else self.tensors[live[0]][1])
                return
            self.unknown_node(n, str(exc), live)

    def unknown_node(self, n, what: str, live) -> None:
        if self.strict:
            raise UnsupportedError(f"{self.path}: operator {what} (node {n.name!r}) is not "
                                   "known to rfield")
        self.unknown[what] += 1
        src, layout = self.tensors[live[0]]
        node = self.add(n, what, O.GlobalPool(), [src])
        out_shape = self.shape(n.output[0])
        if out_shape and len(out_shape) == self.nd + 2 and all(out_shape[2:]):
            node = self.add(n, "broadcast", Broadcast(tuple(out_shape[2:])), [node])
            layout = (None, None) + tuple(range(self.nd))
        else:
            layout = (None,) * (len(out_shape) if out_shape else len(layout))
        for o in n.output:
            self.tensors[o] = (node, layout)

    def pointwise(self, n) -> None:
        src, layout = self.tensors[n.input[0]] if n.input[0] in self.tensors else \
            next(self.tensors[i] for i in n.input if i in self.tensors)
        node = self.add(n, n.op_type, O.Pointwise(n.op_type.lower()), [src])
        self.tensors[n.output[0]] = (node, layout)

    def merge(self, n) -> None:
        out_shape = self.shape(n.output[0])
        inputs, out_layout = [], None
        for i in n.input:
            if i not in self.tensors:
                continue
            src, layout = self.tensors[i]
            shape = self.shape(i)
            if out_shape is not None and shape is not None and len(shape) < len(out_shape):
                layout = (None,) * (len(out_shape) - len(shape)) + tuple(layout)
            if any(a is not None for a in layout):
                if out_shape and shape:
                    pad = len(out_shape) - len(shape)
                    grow = any(a is not None and shape[d - pad] == 1 and out_shape[d] > 1
                               for d, a in enumerate(layout) if d >= pad)
                    if grow:
                        size = tuple(out_shape[d] for d, a in sorted(
                            ((d, a) for d, a in enumerate(layout) if a is not None),
                            key=lambda t: t[1]))
                        src = self.add(n, "broadcast", Broadcast(size), [src])
                out_layout = out_layout or layout
            elif out_shape and len(out_shape) == self.nd + 2:
                src = self.add(n, "broadcast", Broadcast(tuple(out_shape[2:])), [
                    src if src == INPUT or self.graph.nodes[src].global_ else
                    self.add(n, "mixed", O.GlobalPool(), [src])])
            inputs.append(src)
        inputs = list(dict.fromkeys(inputs))
        if out_layout is None:
            out_layout = self.tensors[next(i for i in n.input if i in self.tensors)][1]
        op = O.Merge(n.op_type.lower()) if len(inputs) > 1 else O.Pointwise(n.op_type.lower())
        self.tensors[n.output[0]] = (self.add(n, n.op_type, op, inputs), out_layout)

    def _axes_order(self, layout, nsp: int):
        axes = list(layout[len(layout) - nsp:])
        if any(a is None for a in axes) or sorted(axes) != list(range(self.nd)):
            raise _Unknown("window over non-spatial dims")
        return [axes.index(a) for a in range(self.nd)]

    def _window(self, n, a, kind: str, transposed: bool = False) -> None:
        src, layout = self.tensors[n.input[0]]
        x_shape = self.shape(n.input[0])
        nsp = len(layout) - 2
        if kind in ("conv", "convtranspose"):
            w = self.shape(n.input[1])
            kernel = list(a.get("kernel_shape") or (w[2:] if w else []))
        else:
            kernel = list(a["kernel_shape"])
        if len(kernel) != nsp:
            raise _Unknown(f"{n.op_type} with kernel {kernel}")
        order = self._axes_order(layout, nsp)
        perm = lambda v: [v[i] for i in order]
        strides = perm(list(a.get("strides", [1] * nsp)))
        dil = perm(list(a.get("dilations", [1] * nsp)))
        pads = list(a.get("pads", [0] * (2 * nsp)))
        padding = perm([[pads[i], pads[i + nsp]] for i in range(nsp)])
        kernel = perm(kernel)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if transposed:
            out_pad = perm(list(a.get("output_padding", [0] * nsp)))
            if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
                sizes = perm(list(x_shape[2:]))
                want = perm(list(a["output_shape"][-nsp:])) if "output_shape" in a else \
                    [v * s for v, s in zip(sizes, strides)]
                padding = []
                for i in range(nsp):
                    total = strides[i] * (sizes[i] - 1) + out_pad[i] + \
                        (kernel[i] - 1) * dil[i] + 1 - want[i]
                    if total < 0:
                        out_pad[i] -= total
                        total = 0
                    half = total // 2
                    padding.append([half, total - half] if auto == "SAME_UPPER"
                                   else [total - half, half])
            op = O.ConvTranspose(kernel, strides, padding, out_pad, dil)
        else:
            if auto == "VALID":
                padding = "valid"
            elif auto == "SAME_UPPER":
                padding = "same"
            elif auto == "SAME_LOWER":
                padding = "same_lower"
            op = O.Conv(kernel, strides, padding, dil, ceil_mode=bool(a.get("ceil_mode", 0)))
            op.kind = kind
        node = self.add(n, kind, op, [src])
        self._check_size(n, node, layout)
        self.tensors[n.output[0]] = (node, layout)

    def _check_size(self, n, node, layout) -> None:
        got = self.shape(n.output[0])
        if not got:
            return
        dims = {a: d for d, a in enumerate(layout) if a is not None}
        want = tuple(got[dims[a]] for a in range(self.nd))
        if None not in want and want != self.graph.nodes[node].size:
            raise RfieldError(f"{self.path}: node {n.name!r} ({n.op_type}): rfield computes "
                              f"size {list(self.graph.nodes[node].size)}, ONNX shape "
                              f"inference says {list(want)}")

    def op_Conv(self, n, a):
        self._window(n, a, "conv")

    def op_ConvTranspose(self, n, a):
        self._window(n, a, "convtranspose", transposed=True)

    def op_MaxPool(self, n, a):
        self._window(n, a, "maxpool")

    def op_AveragePool(self, n, a):
        self._window(n, a, "avgpool")

    def op_LpPool(self, n, a):
        self._window(n, a, "lppool")

    def _global(self, n, kind="global"):
        src, layout = self.tensors[n.input[0]]
        self.tensors[n.output[0]] = (self.add(n, kind, O.GlobalPool(), [src]), layout)

    def op_GlobalAveragePool(self, n, a):
        self._global(n)

    op_GlobalMaxPool = op_GlobalAveragePool
    op_GlobalLpPool = op_GlobalAveragePool

    def reduce(self, n, a) -> None:
        src, layout = self.tensors[n.input[0]]
        axes = a.get("axes")
        if axes is None and len(n.input) > 1:
            c = self.const(n.input[1])
            axes = None if c is None else [int(v) for v in c.flatten()]
        rank = len(layout)
        axes = list(range(rank)) if axes is None else [v % rank for v in axes]
        keep = a.get("keepdims", 1)
        shape = self.shape(n.input[0]) or [2] * rank
        hit = any(layout[d] is not None and shape[d] != 1 for d in axes)
        new_layout = tuple(None if d in axes else v for d, v in enumerate(layout)) if keep \
            else tuple(v for d, v in enumerate(layout) if d not in axes)
        node = self.add(n, n.op_type, O.GlobalPool(), [src]) if hit else src
        self.tensors[n.output[0]] = (node, new_layout if not hit else
                                     tuple(None for _ in new_layout))

    def op_Softmax(self, n, a):
        src, layout = self.tensors[n.input[0]]
        axis = a.get("axis", -1) % len(layout)
        op = O.GlobalMix() if layout[axis] is not None else O.Pointwise("softmax")
        self.tensors[n.output[0]] = (self.add(n, "softmax", op, [src]), layout)

    op_LogSoftmax = op_Softmax
    op_Hardmax = op_Softmax

    def op_Resize(self, n, a):
        src, layout = self.tensors[n.input[0]]
        nsp = len(layout) - 2
        order = self._axes_order(layout, nsp)
        mode = a.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = a.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        nearest = a.get("nearest_mode", b"round_prefer_floor")
        nearest = nearest.decode() if isinstance(nearest, bytes) else nearest
        if n.op_type == "Upsample":
            ctm, nearest = "asymmetric", "floor"
        if a.get("antialias"):
            raise _Unknown("Resize(antialias=1)")
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"):
            raise _Unknown(f"Resize(coordinate_transformation_mode={ctm})")
        if a.get("axes") is not None and len(a["axes"]) != len(layout):
            axes = [int(v) % len(layout) for v in a["axes"]]
        else:
            axes = list(range(len(layout)))
        scales = None
        if n.op_type == "Upsample":
            scales = a.get("scales")
            if scales is None and len(n.input) > 1:
                scales = self.const(n.input[1])
        else:
            if len(n.input) > 2:
                scales = self.const(n.input[2])
            if scales is not None and len(scales) == 0:
                scales = None
        in_shape, out_shape = self.shape(n.input[0]), self.shape(n.output[0])
        if not in_shape or not out_shape or None in out_shape[2:]:
            raise _Unknown("Resize with unknown output size")
        rules_in = [in_shape[2 + i] for i in order]
        rules_out = [out_shape[2 + i] for i in order]
        per_scale = [None] * nsp
        if scales is not None:
            full = [1.0] * len(layout)
            for ax, s in zip(axes, [float(v) for v in scales]):
                full[ax] = s
            per_scale = [Fraction(full[2 + i]) for i in order]
        op = OnnxResize(rules_in, rules_out, per_scale, mode, ctm, nearest)
        node = self.add(n, "resize", op, [src])
        self.tensors[n.output[0]] = (node, layout)

    op_Upsample = op_Resize

    def op_Pad(self, n, a):
        src, layout = self.tensors[n.input[0]]
        pads = a.get("pads")
        if pads is None and len(n.input) > 1:
            c = self.const(n.input[1])
            if c is None:
                raise _Unknown("Pad with computed pads")
            pads = [int(v) for v in c.flatten()]
        rank = len(layout)
        axes = list(range(rank))
        if len(n.input) > 3 and n.input[3]:
            c = self.const(n.input[3])
            axes = [int(v) % rank for v in c.flatten()]
        k = len(axes)
        per_dim = {ax: (pads[i], pads[i + k]) for i, ax in enumerate(axes)}
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        mode = {"edge": "replicate", "wrap": "circular"}.get(mode, mode)
        dims = {ax: d for d, ax in enumerate(layout) if ax is not None}
        padding = [list(per_dim.get(dims[ax], (0, 0))) for ax in range(self.nd)]
        if any(b < 0 or e < 0 for b, e in padding):
            src = self.add(n, "crop", O.Crop([[-min(b, 0), -min(e, 0)] for b, e in padding]),
                           [src])
            padding = [[max(b, 0), max(e, 0)] for b, e in padding]
        node = self.add(n, "pad", O.Pad(padding, mode), [src])
        self.tensors[n.output[0]] = (node, layout)

    def op_Slice(self, n, a):
        src, layout = self.tensors[n.input[0]]
        rank = len(layout)
        if "starts" in a:  # opset < 10
            starts, ends = a["starts"], a["ends"]
            axes = a.get("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            vals = [self.const(i) if i else None for i in n.input[1:5]]
            if vals[0] is None or vals[1] is None:
                raise _Unknown("Slice with computed bounds")
            starts, ends = [int(v) for v in vals[0]], [int(v) for v in vals[1]]
            axes = [int(v) for v in vals[2]] if len(vals) > 2 and vals[2] is not None \
                else list(range(len(starts)))
            steps = [int(v) for v in vals[3]] if len(vals) > 3 and vals[3] is not None \
                else [1] * len(starts)
        shape = self.shape(n.input[0])
        st, sp, stp = [0] * self.nd, [None] * self.nd, [1] * self.nd
        touched = False
        for s, e, ax, step in zip(starts, ends, axes, steps):
            d = ax % rank
            if layout[d] is None:
                continue
            if step < 1:
                raise _Unknown("Slice with a negative step")
            size = shape[d] if shape else None
            e = None if size is not None and e >= size else e
            st[layout[d]], sp[layout[d]], stp[layout[d]] = int(s), e, int(step)
            touched = True
        if touched:
            node = self.add(n, "slice", O.Slice(st, sp, stp), [src])
        else:
            node = src
        self.tensors[n.output[0]] = (node, layout)

    def op_Concat(self, n, a):
        live = [i for i in n.input if i in self.tensors]
        axis = a.get("axis", 1)
        _, layout = self.tensors[live[0]]
        if layout[axis % len(layout)] is not None:
            raise _Unknown("Concat along a spatial axis")
        nodes = list(dict.fromkeys(self.tensors[i][0] for i in live))
        op = O.Merge("concat") if len(nodes) > 1 else O.Pointwise("concat")
        self.tensors[n.output[0]] = (self.add(n, "concat", op, nodes), layout)

    def op_Split(self, n, a):
        src, layout = self.tensors[n.input[0]]
        axis = a.get("axis", 0) % len(layout)
        if layout[axis] is not None:
            raise _Unknown("Split along a spatial axis")
        for o in n.output:
            self.tensors[o] = (src, layout)

    def op_Transpose(self, n, a):
        src, layout = self.tensors[n.input[0]]
        perm = a.get("perm", list(reversed(range(len(layout)))))
        # a tensor with no shape from inference may carry a layout of the wrong rank;
        # it holds no spatial axis (its positions were mixed upstream), so extra dims are None
        self.tensors[n.output[0]] = (src, tuple(layout[p] if p < len(layout) else None
                                                for p in perm))

    def _view(self, n, a=None) -> None:
        src, layout = self.tensors[n.input[0]]
        in_shape, out_shape = self.shape(n.input[0]), self.shape(n.output[0])
        if not in_shape or not out_shape or None in in_shape or None in out_shape:
            raise _Unknown(f"{n.op_type} with unknown shapes")
        new = match_dims(in_shape, out_shape, layout)
        if new is not None:
            self.tensors[n.output[0]] = (src, new)
            return
        dims = [d for d, v in enumerate(layout) if v is not None]
        if all(in_shape[d] == 1 for d in dims):
            self.tensors[n.output[0]] = (src, (None,) * len(out_shape))
            return
        if len(dims) == self.nd:
            # positions merged or split: not followed, said so (as in the torch front-end)
            raise _Unknown("view that merges or splits spatial dims")
        self.tensors[n.output[0]] = (src, (None,) * len(out_shape))

    op_Reshape = _view
    op_Squeeze = _view
    op_Unsqueeze = _view

    op_Flatten = _view

    def op_Gemm(self, n, a):
        self._matmul(n)

    def op_MatMul(self, n, a):
        self._matmul(n)

    def _matmul(self, n) -> None:
        live = [i for i in n.input[:2] if i in self.tensors]
        src, layout = self.tensors[live[0]]
        shape = self.shape(live[0]) or []
        contracted = layout[-1] if live[0] == n.input[0] else (layout[-2] if len(layout) > 1
                                                               else layout[-1])
        if len(live) > 1 or (contracted is not None and (not shape or shape[-1] != 1)):
            node = global_union(lambda kind, op, ins: self.add(n, kind, op, ins), "matmul",
                                [self.tensors[i][0] for i in live])
            out = self.shape(n.output[0]) or layout
            self.tensors[n.output[0]] = (node, (None,) * len(out))
            return
        self.tensors[n.output[0]] = (self.add(n, "matmul", O.Pointwise("matmul"), [src]),
                                     layout)

    def _blocks(self, n, a, op_class) -> None:
        src, layout = self.tensors[n.input[0]]
        if tuple(layout[2:]) != tuple(range(self.nd)):
            raise _Unknown(f"{n.op_type} on permuted dims")
        node = self.add(n, n.op_type.lower(), op_class(int(a["blocksize"])), [src])
        self.tensors[n.output[0]] = (node, layout)

    def op_DepthToSpace(self, n, a):
        self._blocks(n, a, O.PixelShuffle)

    def op_SpaceToDepth(self, n, a):
        self._blocks(n, a, O.PixelUnshuffle)

    def op_Shape(self, n, a):
        return  # a shape is not data

    op_Size = op_Shape


class OnnxResize(O.Op):
    """ONNX Resize/Upsample: sizes known from shape inference, coordinates per mode."""

    kind = "resize"

    def __init__(self, n_in, n_out, scales, mode, ctm, nearest) -> None:
        self.n_in, self.n_out, self.scales = list(n_in), list(n_out), scales
        self.mode, self.ctm, self.nearest = mode, ctm, nearest

    def bind(self, sizes):
        (n_in,) = sizes
        rules = []
        for n, m, s in zip(n_in, self.n_out, self.scales):
            scale = s if s is not None else Fraction(m, n)
            if self.ctm == "align_corners":
                a_, b_ = (Fraction(n - 1, m - 1) if m > 1 else Fraction(0)), Fraction(0)
            elif self.ctm == "asymmetric":
                a_, b_ = 1 / scale, Fraction(0)
            elif self.ctm == "pytorch_half_pixel" and m == 1:
                a_, b_ = Fraction(0), Fraction(0)
            else:
                a_, b_ = 1 / scale, 1 / scale / 2 - Fraction(1, 2)
            if self.mode == "nearest":
                kind = self.nearest
            else:
                kind = "cubic" if self.mode == "cubic" else "linear"
            rules.append(R.Resample(n, m, a_, b_, kind, clamp_low=kind == "linear"))
        return tuple(self.n_out), rules


def graph_from_onnx(path, input_size=None, strict: bool = False, **_ignored) -> Graph:
    """Read an ONNX file (no weights, no external data) into a Graph."""
    onnx = require("onnx", "onnx")
    path = os.fspath(path)
    model = _read_model(path, onnx)
    return OnnxReader(model, onnx, input_size, strict, path).graph
