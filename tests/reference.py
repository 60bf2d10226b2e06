"""Brute-force receptive fields: shares no code with rfield's engine.

For each layer and axis it lists, naively, which input indices every output
index reads (written from PyTorch's documented formulas), then propagates
sets of indices from one unit back to the network input. A unit is
"interior" when no read at any layer falls outside its tensor or is clamped
at a border: such units see what they would see on an unbounded input.

Layers are dicts with full parameter names and canonical op names, each with
a "name" and optional "inputs" (default: the layer before; the first reads
"input").
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor

MERGES = {"add", "mul", "concat", "sub", "max", "min", "mean", "sum"}
POINTWISE = {"identity", "relu", "bn", "batchnorm", "dropout", "sigmoid", "gelu"}


def _axis(v, a):
    return v[a] if isinstance(v, (list, tuple)) else v


def _pads(layer, a, n, k, s, d):
    p = layer.get("padding", 0)
    if p == "valid":
        return 0, 0
    if p == "causal":
        return (k - 1) * d, 0
    if p in ("same", "same_lower"):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        lo, hi = total // 2, total - total // 2
        return (hi, lo) if p == "same_lower" else (lo, hi)
    v = _axis(p, a)
    return (v[0], v[1]) if isinstance(v, (list, tuple)) else (v, v)


def layer_reads(layer, a, n):
    """(output size, reads) for one axis: reads(o) -> (list of in-range indices, border?)."""
    op = layer["op"]
    if op in POINTWISE or op in MERGES:
        return n, lambda o: ([o], False)
    if op in ("conv", "maxpool", "avgpool"):
        k = _axis(layer["kernel"], a)
        default_s = 1 if op == "conv" else k
        s = _axis(layer.get("stride", default_s) or default_s, a)
        d = _axis(layer.get("dilation", 1), a)
        pb, pa = _pads(layer, a, n, k, s, d)
        if layer.get("ceil_mode"):
            m = ceil((n + pb + pa - d * (k - 1) - 1) / s) + 1
            if (m - 1) * s >= n + pb:
                m -= 1
        else:
            m = floor((n + pb + pa - d * (k - 1) - 1) / s) + 1

        def reads(o):
            idx = [o * s - pb + t * d for t in range(k)]
            inside = [i for i in idx if 0 <= i < n]
            return inside, len(inside) < len(idx)
        return m, reads
    if op == "convtranspose":
        k = _axis(layer["kernel"], a)
        s = _axis(layer.get("stride", 1), a)
        d = _axis(layer.get("dilation", 1), a)
        pb, pa = _pads(layer, a, n, k, s, d)
        op_ = _axis(layer.get("output_padding", 0), a)
        m = (n - 1) * s - pb - pa + d * (k - 1) + op_ + 1

        def reads(o):
            hits, border = [], False
            for t in range(k):
                num = o + pb - t * d
                if num % s == 0:
                    i = num // s
                    if 0 <= i < n:
                        hits.append(i)
                    else:
                        border = True
            return hits, border
        return m, reads
    if op == "upsample":
        mode = layer.get("mode", "nearest")
        ac = layer.get("align_corners", False)
        if "scale" in layer and layer["scale"] is not None:
            f = Fraction(_axis(layer["scale"], a))
            m = floor(n * f)
            r = 1 / f
        else:
            m = _axis(layer["size"], a)
            r = Fraction(n, m)
        if mode == "nearest":
            return m, lambda o: ([min(floor(o * r), n - 1)], floor(o * r) > n - 1)
        if mode == "nearest-exact":
            return m, lambda o: ([min(floor((o + Fraction(1, 2)) * r), n - 1)],
                                 floor((o + Fraction(1, 2)) * r) > n - 1)
        if ac:
            r = Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
        if mode in ("cubic", "bicubic"):
            def cubic(o):
                # PyTorch: four taps around floor(src), src not clamped, taps clamped
                # into the input; a tap whose weight is exactly 0 (src whole) is not read
                src = o * r if ac else (o + Fraction(1, 2)) * r - Fraction(1, 2)
                i0 = floor(src)
                taps = [i0] if src == i0 else [i0 - 1, i0, i0 + 1, i0 + 2]
                return (sorted({min(max(i, 0), n - 1) for i in taps}),
                        any(i < 0 or i > n - 1 for i in taps))
            return m, cubic

        def reads(o):
            src = o * r if ac else (o + Fraction(1, 2)) * r - Fraction(1, 2)
            border = src < 0
            src = max(src, Fraction(0))
            i0 = floor(src)
            lam = src - i0
            out = [min(i0, n - 1)]
            border = border or i0 > n - 1
            if lam != 0:
                if i0 + 1 <= n - 1:
                    out.append(i0 + 1)
                else:
                    border = True
            return out, border
        return m, reads
    if op == "slice":
        kept = range(n)[slice(_axis(layer.get("start", 0), a), _axis(layer.get("stop"), a),
                              _axis(layer.get("step", 1), a))]
        return len(kept), lambda o: ([kept[o]], False)
    if op == "adaptivepool":
        m = _axis(layer["size"], a)
        return m, lambda o: (list(range(floor(o * n / m), ceil((o + 1) * n / m))), False)
    if op == "global":
        return 1, lambda o: (list(range(n)), True)
    if op == "crop":
        b, e = _pads({"padding": layer["crop"]}, a, n, 1, 1, 1)
        return n - b - e, lambda o: ([o + b], False)
    if op == "pad":
        b, e = _pads(layer, a, n, 1, 1, 1)
        mode = layer.get("mode", "constant")

        def reads(o):
            i = o - b
            if 0 <= i < n:
                return [i], False
            if mode == "constant":
                return [], True
            if mode == "replicate":
                return [min(max(i, 0), n - 1)], True
            if mode == "circular":
                return [i % n], True
            period = 2 * (n - 1)
            j = i % period if period else 0
            return [j if j < n else period - j], True
        return n + b + e, reads
    if op == "pixelshuffle":
        r = _axis(layer["factor"], a)
        return n * r, lambda o: ([o // r], False)
    if op == "pixelunshuffle":
        r = _axis(layer["factor"], a)
        return n // r, lambda o: (list(range(o * r, o * r + r)), False)
    raise ValueError(f"reference does not know {op}")


class Reference:
    """Per-axis dependency sets of every unit of every layer."""

    def __init__(self, layers, input_size):
        self.input_size = tuple(input_size)
        self.sizes = {"input": self.input_size}
        self.reads = {}
        self.inputs = {}
        prev = "input"
        for layer in layers:
            name = layer["name"]
            ins = layer.get("inputs") or [prev]
            ins = [ins] if isinstance(ins, str) else list(ins)
            self.inputs[name] = ins
            n_in = self.sizes[ins[0]]
            out, rd = [], []
            for a, n in enumerate(n_in):
                m, f = layer_reads(layer, a, n)
                out.append(m)
                rd.append(f)
            self.sizes[name] = tuple(out)
            self.reads[name] = rd
            prev = name
        self._memo = {}

    def deps(self, name, axis, unit):
        """(set of input indices, border?) that unit depends on along one axis."""
        key = (name, axis, unit)
        if key in self._memo:
            return self._memo[key]
        if name == "input":
            return {unit}, False
        idx, border = self.reads[name][axis](unit)
        out = set()
        for src in self.inputs[name]:
            for i in idx:
                s, b = self.deps(src, axis, i)
                out |= s
                border = border or b
        self._memo[key] = (out, border)
        return out, border

    def box(self, name, axis, unit):
        s, _ = self.deps(name, axis, unit)
        return (min(s), max(s)) if s else None

    def coverage(self, name, axis, unit):
        s, _ = self.deps(name, axis, unit)
        return Fraction(len(s), max(s) - min(s) + 1) if s else Fraction(0)

    def interior(self, name, axis):
        return [o for o in range(self.sizes[name][axis]) if not self.deps(name, axis, o)[1]]
