"""A torch network equivalent to a layer spec, so that specs can be verified too.

One channel everywhere and weights of ones: only which input positions reach
which output positions matters. Every op is computed by torch's own functions
(convolutions, ``F.interpolate``, ``F.adaptive_avg_pool``, ``F.pad``, slicing),
never by rfield's index rules, so the measurement stays independent of the
analysis. Each node is a submodule ``steps.n<i>`` that the measurement can hook.
"""

from __future__ import annotations

from ..core import ops as O
from ..core.graph import INPUT, Graph
from ..errors import RfieldError, require


def _pad_list(pairs) -> list[int]:
    """F.pad's order: last dim first."""
    out: list[int] = []
    for before, after in reversed(pairs):
        out += [before, after]
    return out


def _transposed(F, node, x, conv):
    y = conv(x)  # the full output; keep what padding and output_padding leave
    rules = node.rules
    need = [r.pad_before + r.n_out for r in rules]
    grow = [max(0, n - y.shape[2 + i]) for i, n in enumerate(need)]
    if any(grow):
        y = F.pad(y, _pad_list([(0, g) for g in grow]))
    return y[(slice(None), slice(None)) + tuple(
        slice(r.pad_before, r.pad_before + r.n_out) for r in rules)]


def _window(F, node, x, conv):
    rules = node.rules
    after = [max(0, (r.n_out - 1) * r.stride + (r.kernel - 1) * r.dilation + 1
                 - r.n_in - r.pad_before) for r in rules]
    y = conv(F.pad(x, _pad_list([(r.pad_before, a) for r, a in zip(rules, after)])))
    return y[(slice(None), slice(None)) + tuple(slice(0, r.n_out) for r in rules)]


def _upsample(F, node, x, conv):
    op, nd = node.op, len(node.size)
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(
        op.mode, op.mode)
    if mode == "linear":
        mode = ("linear", "bilinear", "trilinear")[nd - 1]
    elif mode == "cubic":
        if nd != 2:
            raise RfieldError("bicubic upsampling is 2-D only in torch")
        mode = "bicubic"
    kw = {"align_corners": op.align_corners} if "linear" in mode or "cubic" in mode else {}
    if op.scale is not None:
        sc = op.scale if isinstance(op.scale, (list, tuple)) else [op.scale] * nd
        return F.interpolate(x, scale_factor=[float(v) for v in sc], mode=mode, **kw)
    return F.interpolate(x, size=list(node.size), mode=mode, **kw)


def _adaptive(F, node, x, conv):
    pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
    return pool[len(node.size) - 1](x, list(node.size))


def _global(F, node, x, conv):
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def _mix(F, node, x, conv):
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True).expand_as(x) * 1.0


def _pad(F, node, x, conv):
    mode = {"zeros": "constant"}.get(node.op.mode, node.op.mode)
    pairs = [(r.pad_before, m - r.n_in - r.pad_before) for r, m in zip(node.rules, node.size)]
    return F.pad(x, _pad_list(pairs), mode=mode)


def _slice(F, node, x, conv):
    return x[(slice(None), slice(None)) + tuple(
        slice(-r.pad_before, -r.pad_before + (r.n_out - 1) * r.stride + 1, r.stride)
        for r in node.rules)]


def _shuffle(F, node, x, conv):
    for axis, (r, m) in enumerate(zip(node.rules, node.size)):
        x = x.repeat_interleave(m // r.n_in, dim=2 + axis)
    return x


def _unshuffle(F, node, x, conv):
    k = [r.kernel for r in node.rules]
    return (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(node.size) - 1](x, k, k)


# op class -> its computation in torch, first match wins (pooling is a Conv: a window
# of ones reads what a pool reads)
FORWARD = [(O.ConvTranspose, _transposed), (O.Conv, _window), (O.Upsample, _upsample),
           (O.AdaptivePool, _adaptive), (O.GlobalPool, _global), (O.GlobalMix, _mix),
           (O.Pad, _pad), ((O.Crop, O.Slice), _slice), (O.PixelShuffle, _shuffle),
           (O.PixelUnshuffle, _unshuffle)]


def build(graph: Graph):
    """An nn.Module computing the graph, and the submodule path of every node."""
    torch = require("torch", "torch")
    nn, F = torch.nn, torch.nn.functional
    nd = graph.ndim

    def ones_conv(node):
        rules = node.rules
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[nd - 1] \
            if isinstance(node.op, O.ConvTranspose) else (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1]
        conv = cls(1, 1, [r.kernel for r in rules], [r.stride for r in rules],
                   dilation=[r.dilation for r in rules], bias=False)
        with torch.no_grad():
            conv.weight.fill_(1.0)
        return conv

    class Step(nn.Module):  # type: ignore[name-defined]  # torch is imported lazily
        def __init__(self, node):
            super().__init__()
            self.node = node
            self.compute = next((f for cls, f in FORWARD if isinstance(node.op, cls)), None)
            if isinstance(node.op, (O.Conv, O.ConvTranspose)):
                self.conv = ones_conv(node)

        def forward(self, *xs):
            node = self.node
            if len(xs) > 1:
                return sum(xs)
            if node.pointwise:
                return xs[0] * 1.0
            if self.compute is None:
                raise RfieldError(f"rfield cannot build layer {node.name!r} ({node.op.kind}) "
                                  "in torch to verify it")
            return self.compute(F, node, xs[0], getattr(self, "conv", None))

    class Net(nn.Module):  # type: ignore[name-defined]
        def __init__(self):
            super().__init__()
            self.steps = nn.ModuleList(Step(node) for node in graph.nodes.values())
            self.paths = {name: f"steps.{i}" for i, name in enumerate(graph.nodes)}

        def forward(self, x):
            values = {INPUT: x}
            for step, (name, node) in zip(self.steps, graph.nodes.items()):
                values[name] = step(*[values[s] for s in node.inputs])
            return values[graph.last()]

    net = Net()
    return net, net.paths
