"""Reading an ONNX file as untrusted input: the protobuf (weights skipped, never
opened from outside), nodes in dependency order, the opset, the input's size and
ONNX shape inference at it. The adapter (:mod:`.onnx_graph`) reads what this
module gives."""

from __future__ import annotations

import ast
import mmap
import sys

from ..errors import TargetError
from ..safeio import check_regular
from .onnx_wire import strip_weights

MAX_BYTES = 2 * 1024 ** 3
MAX_DIM = 1 << 20


def read_model(path: str, onnx):
    size = check_regular(path, "ONNX file", MAX_BYTES)
    model = onnx.ModelProto()
    try:
        with open(path, "rb") as fh:
            if size == 0:
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


def subgraphs(n) -> list:
    """The graphs an If, Loop or Scan node carries in its attributes."""
    return [a.g for a in n.attribute if a.HasField("g")] + \
        [g for a in n.attribute for g in a.graphs]


def outer_reads(n) -> list[str]:
    """Tensors a node's subgraphs read from the scopes around them: inputs too, though
    not listed in ``n.input``."""
    reads: list[str] = []
    for g in subgraphs(n):
        made = {i.name for i in g.input} | {t.name for t in g.initializer} | \
            {o for m in g.node for o in m.output}
        for m in g.node:
            reads += [i for i in list(m.input) + outer_reads(m) if i and i not in made]
    return list(dict.fromkeys(reads))


def topo(graph, known: set[str], path: str) -> list:
    """Nodes in dependency order; a cycle or an input nobody makes is an error."""
    producers = {o: n for n in graph.node for o in n.output if o}
    order: list = []
    state: dict[int, int] = {}

    def visit(n) -> None:
        key = id(n)
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise TargetError(f"{path}: the graph has a cycle through node {n.name or n.op_type!r}")
        state[key] = 1
        for i in list(n.input) + outer_reads(n):
            if not i or i in known:
                continue
            if i not in producers:
                raise TargetError(f"{path}: node {n.name or n.op_type!r} reads {i!r}, which no "
                                  "node, input or initializer provides")
            visit(producers[i])
        state[key] = 2
        order.append(n)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(graph.node) + 1000))
    try:
        for n in graph.node:
            visit(n)
    finally:
        sys.setrecursionlimit(limit)
    return order


def input_size(dims: list, spatial: list[int], input_size, name: str,
                path: str) -> tuple[int, ...]:
    """The spatial size to read the input at: given, or the model's own static one."""
    if input_size is not None:
        size = tuple(int(v) for v in input_size)
        if len(size) == len(spatial) + 1:
            size = size[1:]
        if len(size) != len(spatial):
            raise TargetError(f"input_size has {len(size)} values but the model's input "
                              f"{name!r} has {len(spatial)} spatial dims")
    elif any(dims[d] is None or dims[d] < 1 for d in spatial):
        raise TargetError(f"{path}: the input {name!r} has no fixed spatial size; "
                          "give input_size=(224, 224)")
    else:
        size = tuple(int(dims[d]) for d in spatial)
    if any(v > MAX_DIM or v < 1 for v in size):
        raise TargetError(f"{path}: input size {list(size)} is absurd")
    return size


def inferred_shapes(model, onnx, path: str, shape: list) -> dict[str, list | None]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise TargetError(f"{path}: ONNX shape inference failed at input {shape}: "
                          f"{str(exc).splitlines()[0]}") from None
    shapes: dict[str, list | None] = {}
    graphs = [inferred.graph]
    while graphs:  # the graph and, for If/Loop nodes, the graphs inside
        g = graphs.pop()
        for vi in list(g.value_info) + list(g.output) + list(g.input):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                                   for d in t.shape.dim]
        for init in g.initializer:
            shapes[init.name] = list(init.dims)
        graphs += [sub for n in g.node for sub in subgraphs(n)]
    for name, dims in shapes.items():
        if any(v is not None and v > MAX_DIM * 64 for v in dims or ()):
            raise TargetError(f"{path}: tensor {name!r} has an absurd dimension {dims}")
    return shapes


def opset(model) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else 1


def module_scopes(n) -> list[str]:
    """The torch module paths a node ran in, from the metadata torch's dynamo exporter
    writes (its node names lose them): layer1, layer1.0, layer1.0.conv1."""
    raw = next((p.value for p in n.metadata_props
                if p.key == "pkg.torch.onnx.name_scopes"), None)
    if not raw:
        return []
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return []
    paths: list[str] = []
    for name in names[1:] if isinstance(names, list) else []:
        if not isinstance(name, str) or (paths and not name.startswith(paths[-1] + ".")):
            break
        paths.append(name)
    return paths


