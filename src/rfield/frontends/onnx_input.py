"""Which graph input is the image, and which of its dims are spatial.

PyTorch exports NCHW; Keras, tf2onnx and jax2onnx keep the input NHWC and
transpose it before the first convolution (or pool in NHWC). Reading dims 2..
of an NHWC input as spatial would answer for a 224x3 "image" with confidence,
so the layout is read from how the graph uses the input: its dims are followed
through transposes and layout-keeping operators to the first convolution or
pooling, whose trailing dims are spatial. Where no such use is found and the
user gave no ``layout=``, the input is refused in one line.
"""

from __future__ import annotations

from collections import deque

from ..errors import TargetError

# operators that ONNX defines on N, C, spatial...: their input's trailing dims are spatial
WINDOWS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "DepthToSpace",
           "SpaceToDepth", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
# operators that keep every dim of their (first) input where it is
KEEP = {"Cast", "Identity", "Relu", "Clip", "Add", "Sub", "Mul", "Div", "Neg", "Abs",
        "BatchNormalization", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "Pad", "Slice",
        "QuantizeLinear", "DequantizeLinear", "Dropout", "CastLike", "Sqrt", "Pow", "Max",
        "Min", "Where", "Resize", "Upsample", "Concat", "Split", "Elu", "Selu", "Gelu",
        "Mish", "Softplus", "HardSigmoid", "PRelu", "InstanceNormalization", "LRN"}
LAYOUTS = ("nchw", "nhwc")


def dims_of(value_info) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def _image_like(dims: list[int | None]) -> bool:
    """N, C and 1 to 3 spatial dims with extent. A normalisation's mean or scale
    ([1, 1, 1, 3]) has fewer dims over 1 than spatial dims: a constant, not an image."""
    if not 3 <= len(dims) <= 5:
        return False
    extent = sum(1 for v in dims[1:] if v is None or v > 1)
    return extent >= len(dims) - 2


def choose_input(inputs: list, name: str | None, path: str):
    """The image input: the one named, or the only image-like one."""
    if name is not None:
        match = [i for i in inputs if i.name == name]
        if not match:
            raise TargetError(f"{path}: no input named {name!r}; the inputs are "
                              + ", ".join(repr(i.name) for i in inputs))
        return match[0]
    images = [i for i in inputs if _image_like(dims_of(i))]
    if len(images) > 1:
        raise TargetError(f"{path}: the model has {len(images)} image inputs ("
                          + ", ".join(repr(i.name) for i in images)
                          + "); choose one with input_name=")
    if not images:
        raise TargetError(f"{path}: no input looks like an image (N, C and 1 to 3 spatial "
                          "dims); choose one with input_name=")
    return images[0]


#: operators that move or merge dims: after one, ONNX's NCHW convention says nothing
MOVE = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Einsum", "MatMul",
        "Gemm", "Gather"}


def spatial_dims(graph, name: str, rank: int, layout: str | None, path: str) -> list[int]:
    """The input's spatial dims, in input-axis order, from how the graph uses it.

    A convolution or pooling reached through transposes and layout-keeping operators
    tells them. Where none is reached and nothing moves the input's dims, they are
    where ONNX's operators put them (N, C, spatial); where something moves them and no
    window tells, only ``layout`` can.
    """
    seen, moved = _traced(graph, name, rank)
    if seen is None and not moved:
        seen = list(range(2, rank))
    if layout is not None:
        given = list(range(2, rank)) if layout == "nchw" else list(range(1, rank - 1))
        if seen and seen != given:
            raise TargetError(f"{path}: the graph reads input {name!r} as "
                              f"{_word(seen, rank)}, not as {layout} (layout=)")
        return given
    if seen is None:
        raise TargetError(f"{path}: cannot tell which dims of input {name!r} are spatial "
                          "(no convolution or pooling reads it through transposes); give "
                          "layout='nchw' or layout='nhwc'")
    return seen


def _word(dims: list[int], rank: int) -> str:
    if dims == list(range(2, rank)):
        return "nchw"
    if dims == list(range(1, rank - 1)):
        return "nhwc"
    return f"spatial dims {dims}"


def _traced(graph, name: str, rank: int) -> tuple[list[int] | None, bool]:
    """Follow the input's dims (labels 0..rank-1) to the windows that read them: the
    spatial dims if every window agrees (else None), and whether an operator that
    moves dims was met on the way."""
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    found: set[tuple[int, ...]] = set()
    moved = False
    queue = deque([(name, tuple(range(rank)))])
    seen: set[str] = set()
    while queue and len(seen) < 10_000:
        tensor, labels = queue.popleft()
        if tensor in seen:
            continue
        seen.add(tensor)
        for n in consumers.get(tensor, []):
            if n.op_type in WINDOWS and n.input and n.input[0] == tensor:
                found.add(labels[2:])
            elif n.op_type == "Transpose":
                moved = True
                perm = next((list(a.ints) for a in n.attribute if a.name == "perm"),
                            list(reversed(range(len(labels)))))
                if sorted(perm) == list(range(len(labels))):
                    queue.append((n.output[0], tuple(labels[p] for p in perm)))
            elif n.op_type in KEEP and n.output:
                queue.append((n.output[0], labels))
            elif n.op_type in MOVE:
                moved = True
    if len(found) != 1:
        return None, moved
    dims = list(next(iter(found)))
    return (dims if 0 not in dims else None), moved
