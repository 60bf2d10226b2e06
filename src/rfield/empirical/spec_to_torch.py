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


def build(graph: Graph):
    """An nn.Module computing the graph, and the submodule path of every node."""
    torch = require("torch", "torch")
    nn, F = torch.nn, torch.nn.functional
    nd = graph.ndim
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1]
    tconvs = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[nd - 1]

    def ones(module):
        with torch.no_grad():
            module.weight.fill_(1.0)
        return module

    def pad_list(pairs):
        """F.pad's order: last dim first."""
        out = []
        for before, after in reversed(pairs):
            out += [before, after]
        return out

    class Step(nn.Module):
        def __init__(self, node):
            super().__init__()
            self.node = node
            op, rules = node.op, node.rules
            if isinstance(op, O.ConvTranspose):
                self.conv = ones(tconvs(1, 1, [r.kernel for r in rules],
                                        [r.stride for r in rules],
                                        dilation=[r.dilation for r in rules], bias=False))
            elif isinstance(op, O.Conv):
                # pooling too: a window of ones reads what a pool reads
                self.conv = ones(convs(1, 1, [r.kernel for r in rules],
                                       [r.stride for r in rules],
                                       dilation=[r.dilation for r in rules], bias=False))

        def forward(self, *xs):
            node, op, rules = self.node, self.node.op, self.node.rules
            if len(xs) > 1:
                return sum(xs)
            x = xs[0]
            if node.pointwise:
                return x * 1.0
            if isinstance(op, O.ConvTranspose):
                y = self.conv(x)  # full output; keep what padding and output_padding leave
                need = [r.pad_before + r.n_out for r in rules]
                grow = [max(0, n - y.shape[2 + i]) for i, n in enumerate(need)]
                if any(grow):
                    y = F.pad(y, pad_list([(0, g) for g in grow]))
                return y[(slice(None), slice(None)) + tuple(
                    slice(r.pad_before, r.pad_before + r.n_out) for r in rules)]
            if isinstance(op, O.Conv):
                after = [max(0, (r.n_out - 1) * r.stride + (r.kernel - 1) * r.dilation + 1
                             - r.n_in - r.pad_before) for r in rules]
                y = self.conv(F.pad(x, pad_list([(r.pad_before, a)
                                                 for r, a in zip(rules, after)])))
                return y[(slice(None), slice(None)) + tuple(slice(0, r.n_out) for r in rules)]
            if isinstance(op, O.Upsample):
                mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(
                    op.mode, op.mode)
                if mode == "linear":
                    mode = ("linear", "bilinear", "trilinear")[nd - 1]
                elif mode == "cubic":
                    if nd != 2:
                        raise RfieldError("bicubic upsampling is 2-D only in torch")
                    mode = "bicubic"
                kw = {"align_corners": op.align_corners} if "linear" in mode or \
                    "cubic" in mode else {}
                if op.scale is not None:
                    sc = op.scale if isinstance(op.scale, (list, tuple)) else [op.scale] * nd
                    return F.interpolate(x, scale_factor=[float(v) for v in sc], mode=mode,
                                         **kw)
                return F.interpolate(x, size=list(node.size), mode=mode, **kw)
            if isinstance(op, O.AdaptivePool):
                return (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
                        F.adaptive_avg_pool3d)[nd - 1](x, list(node.size))
            if isinstance(op, O.GlobalPool):
                return x.mean(dim=tuple(range(2, 2 + nd)), keepdim=True)
            if isinstance(op, O.GlobalMix):
                return x.mean(dim=tuple(range(2, 2 + nd)), keepdim=True).expand_as(x) * 1.0
            if isinstance(op, O.Pad):
                mode = {"zeros": "constant"}.get(op.mode, op.mode)
                pairs = [(r.pad_before, m - n - r.pad_before)
                         for r, n, m in zip(rules, (r.n_in for r in rules), node.size)]
                return F.pad(x, pad_list(pairs), mode=mode)
            if isinstance(op, (O.Crop, O.Slice)):
                return x[(slice(None), slice(None)) + tuple(
                    slice(-r.pad_before, -r.pad_before + (r.n_out - 1) * r.stride + 1, r.stride)
                    for r in rules)]
            if isinstance(op, O.PixelShuffle):
                for axis, (n, m) in enumerate(zip((r.n_in for r in rules), node.size)):
                    x = x.repeat_interleave(m // n, dim=2 + axis)
                return x
            if isinstance(op, O.PixelUnshuffle):
                k = [r.kernel for r in rules]
                return (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1](x, k, k)
            raise RfieldError(f"rfield cannot build layer {node.name!r} ({op.kind}) in torch "
                              "to verify it")

    class Net(nn.Module):
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
