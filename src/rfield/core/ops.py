"""Layer kinds: parameters, output sizes and the per-axis rules they bind to.

An op is created with its parameters (checked at once) and bound later to the
sizes of its inputs, when the number of spatial axes is known. ``bind``
returns the output size and one :mod:`rules` object per axis. Parameters may be
one value for every axis or one per axis.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from fractions import Fraction
from math import floor

from ..errors import ShapeError, SpecError, shown
from . import rules as R

Size = tuple[int, ...]


# --------------------------------------------------------------------------- checks

def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_int(value: object, what: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"{what} must be a whole number, got {shown(value)}")
    if value < minimum:
        bound = "positive" if minimum == 1 else f"at least {minimum}"
        raise SpecError(f"{what} must be {bound}, got {value}")
    return value


def per_axis(value: object, ndim: int, what: str, minimum: int) -> tuple[int, ...]:
    """One int for every axis, or a list with one per axis."""
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise SpecError(f"{what} has {len(value)} values but the input has {ndim} axes")
        return tuple(check_int(v, what, minimum) for v in value)
    return (check_int(value, what, minimum),) * ndim


def _check_per_axis_shape(value: object, what: str, minimum: int) -> None:
    """Check values now (before the number of axes is known)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise SpecError(f"{what} is an empty list")
    for v in items:
        check_int(v, what, minimum)


PAD_WORDS = ("same", "valid", "causal", "same_lower")


def _check_padding(value: object) -> None:
    if isinstance(value, str):
        if value.lower() not in PAD_WORDS:
            raise SpecError(f"padding must be a number, a list or one of {', '.join(PAD_WORDS)}; "
                            f"got {shown(value)}")
        return
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise SpecError("padding is an empty list")
    for v in items:
        if isinstance(v, (list, tuple)):
            if len(v) != 2:
                raise SpecError(f"padding per axis is [before, after], got {shown(list(v))}")
            for w in v:
                check_int(w, "padding", 0)
        else:
            check_int(v, "padding", 0)


def resolve_padding(value: object, ndim: int, n_in: Size, kernel: Size, stride: Size,
                    dilation: Size) -> list[tuple[int, int]]:
    """Padding as (before, after) per axis; "same" keeps ceil(n / stride) outputs."""
    if isinstance(value, str):
        word = value.lower()
        out = []
        for n, k, s, d in zip(n_in, kernel, stride, dilation):
            span = (k - 1) * d
            if word == "valid":
                out.append((0, 0))
            elif word == "causal":
                out.append((span, 0))
            else:
                total = max((-(-n // s) - 1) * s + span + 1 - n, 0)
                small, big = total // 2, total - total // 2
                out.append((big, small) if word == "same_lower" else (small, big))
        return out
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise SpecError(f"padding has {len(value)} values but the input has {ndim} axes")
        return [(v[0], v[1]) if isinstance(v, (list, tuple)) else (v, v) for v in value]
    return [(value, value)] * ndim  # type: ignore[list-item]  # checked at construction


def _size_error(n_in: Size, n_out: Sequence[int]) -> ShapeError:
    return ShapeError(f"output size {list(n_out)} is below 1 (input size {list(n_in)})")


# --------------------------------------------------------------------------- ops

class Op(ABC):
    """A layer kind. ``arity`` is the number of inputs, or None for any number >= 1."""

    kind = "op"
    arity: int | None = 1
    #: Whether inputs centred differently are worth a warning (a branch off by half a
    #: jump); attention merges a query with its window's keys, off-centre by design.
    aligned = True

    @abstractmethod
    def bind(self, sizes: list[Size]) -> tuple[Size, list[R.AxisRule]]:
        """The output size and one rule per axis, for inputs of ``sizes``."""

    def describe(self) -> dict:
        """Parameters as given, for reports."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"{type(self).__name__}({args})"


class Conv(Op):
    """Convolution or pooling window. ``ceil_mode`` follows PyTorch's rule for the last window."""

    kind = "conv"

    def __init__(self, kernel, stride=1, padding=0, dilation=1, ceil_mode: bool = False):
        _check_per_axis_shape(kernel, "kernel", 1)
        _check_per_axis_shape(stride, "stride", 1)
        _check_per_axis_shape(dilation, "dilation", 1)
        _check_padding(padding)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.dilation, self.ceil_mode = dilation, bool(ceil_mode)

    def bind(self, sizes):
        (n_in,) = sizes
        nd = len(n_in)
        k = per_axis(self.kernel, nd, "kernel", 1)
        s = per_axis(self.stride, nd, "stride", 1)
        d = per_axis(self.dilation, nd, "dilation", 1)
        pads = resolve_padding(self.padding, nd, n_in, k, s, d)
        out, rules = [], []
        for n, ki, si, di, (pb, pa) in zip(n_in, k, s, d, pads):
            span = n + pb + pa - di * (ki - 1) - 1
            if self.ceil_mode:
                m = -(-span // si) + 1
                if (m - 1) * si >= n + pb:
                    m -= 1
            else:
                m = span // si + 1
            out.append(m)
            rules.append(R.Window(n, m, ki, si, pb, di))
        if min(out) < 1:
            raise _size_error(n_in, out)
        return tuple(out), rules


class MaxPool(Conv):
    kind = "maxpool"

    def __init__(self, kernel, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__(kernel, kernel if stride is None else stride, padding, dilation,
                         ceil_mode)


class AvgPool(MaxPool):
    kind = "avgpool"


class LpPool(MaxPool):
    """ONNX LpPool: a window like average pooling."""

    kind = "lppool"


class ConvTranspose(Op):
    kind = "convtranspose"

    def __init__(self, kernel, stride=1, padding=0, output_padding=0, dilation=1):
        _check_per_axis_shape(kernel, "kernel", 1)
        _check_per_axis_shape(stride, "stride", 1)
        _check_per_axis_shape(dilation, "dilation", 1)
        _check_per_axis_shape(output_padding, "output_padding", 0)
        _check_padding(padding)
        if isinstance(padding, str) and padding.lower() != "valid":
            raise SpecError("a transposed convolution takes padding as numbers or 'valid'")
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.output_padding, self.dilation = output_padding, dilation

    def bind(self, sizes):
        (n_in,) = sizes
        nd = len(n_in)
        k = per_axis(self.kernel, nd, "kernel", 1)
        s = per_axis(self.stride, nd, "stride", 1)
        d = per_axis(self.dilation, nd, "dilation", 1)
        op = per_axis(self.output_padding, nd, "output_padding", 0)
        pads = resolve_padding(self.padding, nd, n_in, k, s, d)
        out, rules = [], []
        for n, ki, si, di, opi, (pb, pa) in zip(n_in, k, s, d, op, pads):
            m = (n - 1) * si - pb - pa + di * (ki - 1) + opi + 1
            out.append(m)
            rules.append(R.Transposed(n, m, ki, si, pb, di))
        if min(out) < 1:
            raise _size_error(n_in, out)
        return tuple(out), rules


UPSAMPLE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic",
                  "cubic")


def _fraction(value: object, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise SpecError(f"{what} must be a number, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{what} must be a finite number, got {value}")
    if value <= 0:
        raise SpecError(f"{what} must be positive, got {value}")
    return Fraction(value)


class Upsample(Op):
    """Resize by a scale factor or to a size, as torch.nn.functional.interpolate does."""

    kind = "upsample"

    def __init__(self, scale=None, size=None, mode: str = "nearest",
                 align_corners: bool = False, antialias: bool = False):
        if (scale is None) == (size is None):
            raise SpecError("upsample takes either scale or size")
        if mode not in UPSAMPLE_MODES:
            raise SpecError(f"upsample mode must be one of {', '.join(UPSAMPLE_MODES)}; "
                            f"got {shown(mode)}")
        if scale is not None:
            for v in scale if isinstance(scale, (list, tuple)) else [scale]:
                _fraction(v, "scale")
        if size is not None:
            _check_per_axis_shape(size, "size", 1)
        self.scale, self.size, self.mode = scale, size, mode
        self.align_corners = bool(align_corners)
        self.antialias = bool(antialias)
        if self.antialias and (self.align_corners or "linear" not in mode and "cubic" not in mode):
            raise SpecError("antialias is for linear and cubic modes without align_corners")

    def bind(self, sizes):
        (n_in,) = sizes
        nd = len(n_in)
        if self.scale is not None:
            sc = self.scale if isinstance(self.scale, (list, tuple)) else [self.scale] * nd
            if len(sc) != nd:
                raise SpecError(f"scale has {len(sc)} values but the input has {nd} axes")
            factors = [_fraction(v, "scale") for v in sc]
            out = [floor(n * f) for n, f in zip(n_in, factors)]
            ratios = [1 / f for f in factors]
        else:
            out = list(per_axis(self.size, nd, "size", 1))
            ratios = [Fraction(n, m) for n, m in zip(n_in, out)]
        if min(out) < 1:
            raise _size_error(n_in, out)
        return tuple(out), [self._rule(n, m, r) for n, m, r in zip(n_in, out, ratios)]

    def _rule(self, n: int, m: int, ratio: Fraction) -> R.AxisRule:
        if self.mode == "nearest":
            return R.Resample(n, m, ratio, Fraction(0), "floor")
        if self.mode == "nearest-exact":
            return R.Resample(n, m, ratio, ratio / 2, "floor")
        kind = "cubic" if "cubic" in self.mode else "linear"
        if self.align_corners:
            scale = Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
            return R.Resample(n, m, scale, Fraction(0), kind)
        return R.Resample(n, m, ratio, ratio / 2 - Fraction(1, 2), kind,
                          clamp_low=kind == "linear" and not self.antialias,
                          antialias=ratio if self.antialias else Fraction(0))


class Resize(Op):
    """ONNX Resize/Upsample: sizes known from shape inference, coordinates per mode.

    ``ctm`` is the coordinate transformation mode (half_pixel, pytorch_half_pixel,
    align_corners, asymmetric) and ``nearest`` the rounding of nearest mode.
    """

    kind = "resize"

    def __init__(self, n_out, scales, mode: str, ctm: str, nearest: str,
                 antialias: bool = False, roi=None) -> None:
        self.n_out, self.scales = list(n_out), list(scales)
        self.mode, self.ctm, self.nearest = mode, ctm, nearest
        self.antialias = antialias and mode in ("linear", "cubic")
        self.roi = roi  # per axis (start, end) as fractions of the input: tf_crop_and_resize

    @staticmethod
    def source(ctm: str, n: int, m: int, scale: Fraction, roi=None) -> tuple[Fraction, Fraction]:
        """Output unit o samples input coordinate a*o + b under the coordinate mode."""
        if ctm == "align_corners":
            return (Fraction(n - 1, m - 1) if m > 1 else Fraction(0)), Fraction(0)
        if ctm == "asymmetric":
            return 1 / scale, Fraction(0)
        if ctm == "pytorch_half_pixel" and m == 1:
            return Fraction(0), Fraction(0)
        if ctm == "tf_crop_and_resize":
            lo, hi = roi
            if m == 1:
                return Fraction(0), (hi - lo) * (n - 1) / 2 + lo * (n - 1)
            return (hi - lo) * Fraction(n - 1, m - 1), lo * (n - 1)
        offset = Fraction(0)
        if ctm == "half_pixel_symmetric":  # centres the output on the input
            offset = Fraction(n, 2) * (1 - m / (scale * n))
        return 1 / scale, 1 / scale / 2 - Fraction(1, 2) + offset

    def bind(self, sizes: list[Size]) -> tuple[Size, list[R.AxisRule]]:
        (n_in,) = sizes
        if min(self.n_out) < 1:
            raise _size_error(n_in, self.n_out)
        if any(s is not None and s <= 0 for s in self.scales):
            raise ShapeError(f"scales {[str(s) for s in self.scales]} must be positive")
        rules: list[R.AxisRule] = []
        for axis, (n, m, s) in enumerate(zip(n_in, self.n_out, self.scales)):
            scale = s if s is not None else Fraction(m, n)
            a_, b_ = self.source(self.ctm, n, m, scale, self.roi and self.roi[axis])
            if self.mode == "nearest":
                kind = self.nearest
            else:
                kind = "cubic" if self.mode == "cubic" else "linear"
            stretch = 1 / scale if self.antialias else Fraction(0)  # the rule keeps >= 1
            rules.append(R.Resample(n, m, a_, b_, kind, antialias=stretch,
                                    clamp_low=kind == "linear" and not self.antialias))
        return tuple(self.n_out), rules


class Remap(Op):
    """Per-axis index rules read off a framework's own operator (a JAX gather's
    constant indices, the weight matrix of ``jax.image.resize``).

    ``axes`` holds, per axis, None (as it is), ``("slice", start, step)`` or
    ``("resample", scale, offset, kind, clamp_low, antialias)``: the arguments of a
    :class:`~rfield.core.rules.Resample` the front-end matched against the operator.
    """

    kind = "remap"

    def __init__(self, n_out, axes) -> None:
        self.n_out, self.axes = list(n_out), list(axes)

    def bind(self, sizes):
        (n_in,) = sizes
        rules = []
        for n, m, spec in zip(n_in, self.n_out, self.axes):
            if spec is None:
                if n != m:
                    raise ShapeError(f"remap keeps an axis of {n} as it is but makes {m}")
                rules.append(R.Identity(n, m))
            elif spec[0] == "slice":
                rules.append(R.Window(n, m, 1, spec[2], -spec[1]))
            else:
                rules.append(R.Resample(n, m, *spec[1:]))
        return tuple(self.n_out), rules


class AdaptivePool(Op):
    kind = "adaptivepool"

    def __init__(self, size):
        _check_per_axis_shape(size, "size", 1)
        self.size = size

    def bind(self, sizes):
        (n_in,) = sizes
        out = per_axis(self.size, len(n_in), "size", 1)
        return out, [R.Adaptive(n, m) for n, m in zip(n_in, out)]


class GlobalPool(Op):
    """Global pooling, flatten + linear: one output unit that reads the whole input."""

    kind = "global"

    def bind(self, sizes):
        (n_in,) = sizes
        return (1,) * len(n_in), [R.Global(n, 1) for n in n_in]


class Broadcast(Op):
    """A size-1 axis repeated to a larger size: every unit reads the one unit there."""

    kind = "broadcast"

    def __init__(self, size) -> None:
        self.size = tuple(size)

    def bind(self, sizes):
        (n_in,) = sizes
        rules = [R.Identity(n, m) if n == m else R.Global(n, m)
                 for n, m in zip(n_in, self.size)]
        return self.size, rules


class GlobalMix(Op):
    """Attention over all positions: keeps the size, every unit reads every input."""

    kind = "attention"

    def bind(self, sizes):
        (n_in,) = sizes
        return n_in, [R.Global(n, n) for n in n_in]


class WindowMix(Op):
    """Attention inside windows (Swin) or across a grid (MaxViT): per axis, the index
    digits every unit reads all values of (see :class:`~rfield.core.rules.DigitMix`);
    an empty tuple leaves the axis as it is."""

    kind = "window attention"
    aligned = False

    def __init__(self, mixed) -> None:
        self.mixed = [tuple(tuple(d) for d in digits) for digits in mixed]

    def bind(self, sizes):
        (n_in,) = sizes
        if len(self.mixed) != len(n_in):
            raise SpecError(f"mixed digits for {len(self.mixed)} axes, the input has {len(n_in)}")
        rules: list[R.AxisRule] = []
        for n, digits in zip(n_in, self.mixed):
            top = max((s * c for s, c in digits), default=1)
            if n % top:
                raise ShapeError(f"windows of {top} do not tile an axis of {n}")
            rules.append(R.DigitMix(n, n, digits) if digits else R.Identity(n, n))
        return tuple(n_in), rules


class Roll(Op):
    """A circular shift per axis (``torch.roll``): a translation whose wrap is real."""

    kind = "roll"
    aligned = False

    def __init__(self, shifts) -> None:
        self.shifts = [int(s) for s in shifts]

    def bind(self, sizes):
        (n_in,) = sizes
        # the translation most units see: the shift nearest to 0 modulo n
        near = [(s + n // 2) % n - n // 2 for n, s in zip(n_in, self.shifts)]
        rules: list[R.AxisRule] = [R.Roll(n, n, s) if s else R.Identity(n, n)
                                   for n, s in zip(n_in, near)]
        return tuple(n_in), rules


class Crop(Op):
    """Remove ``crop`` = (before, after) units on each axis."""

    kind = "crop"

    def __init__(self, crop):
        _check_padding(crop)
        if isinstance(crop, str):
            raise SpecError("crop takes numbers, not words")
        self.crop = crop

    def bind(self, sizes):
        (n_in,) = sizes
        nd = len(n_in)
        cuts = resolve_padding(self.crop, nd, n_in, (1,) * nd, (1,) * nd, (1,) * nd)
        out = [n - b - a for n, (b, a) in zip(n_in, cuts)]
        if min(out) < 1:
            raise _size_error(n_in, out)
        return tuple(out), [R.Window(n, m, 1, 1, -b) for n, m, (b, _) in zip(n_in, out, cuts)]


class Slice(Op):
    """Python slicing per axis: start, stop (None for the end) and step."""

    kind = "slice"

    def __init__(self, start=0, stop=None, step=1):
        _check_per_axis_shape(step, "step", 1)
        for v in start if isinstance(start, (list, tuple)) else [start]:
            if not _is_int(v):
                raise SpecError(f"start must be a whole number, got {shown(v)}")
        for v in stop if isinstance(stop, (list, tuple)) else [stop]:
            if v is not None and not _is_int(v):
                raise SpecError(f"stop must be a whole number or null, got {shown(v)}")
        self.start, self.stop, self.step = start, stop, step

    def bind(self, sizes):
        (n_in,) = sizes
        nd = len(n_in)
        listed = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * nd
        starts, stops, steps = listed(self.start), listed(self.stop), listed(self.step)
        for what, vals in (("start", starts), ("stop", stops), ("step", steps)):
            if len(vals) != nd:
                raise SpecError(f"{what} has {len(vals)} values but the input has {nd} axes")
        out, rules = [], []
        for n, a, b, st in zip(n_in, starts, stops, steps):
            r = range(n)[slice(a, b, st)]
            out.append(len(r))
            rules.append(R.Window(n, len(r), 1, st, -r.start if len(r) else 0))
        if min(out) < 1:
            raise _size_error(n_in, out)
        return tuple(out), rules


PAD_MODES = ("constant", "zeros", "reflect", "replicate", "circular")


class Pad(Op):
    kind = "pad"

    def __init__(self, padding, mode: str = "constant"):
        _check_padding(padding)
        if isinstance(padding, str):
            raise SpecError("pad takes numbers, not words")
        if mode not in PAD_MODES:
            raise SpecError(f"pad mode must be one of {', '.join(PAD_MODES)}; got {shown(mode)}")
        self.padding, self.mode = padding, mode

    def bind(self, sizes):
        (n_in,) = sizes
        nd = len(n_in)
        pads = resolve_padding(self.padding, nd, n_in, (1,) * nd, (1,) * nd, (1,) * nd)
        out = tuple(n + b + a for n, (b, a) in zip(n_in, pads))
        if self.mode in ("constant", "zeros"):
            rules = [R.Window(n, m, 1, 1, b) for n, m, (b, _) in zip(n_in, out, pads)]
        else:
            rules = [R.PadBorder(n, m, b, self.mode) for n, m, (b, _) in zip(n_in, out, pads)]
        return out, rules


class _Factor(Op):
    """An op with one integer factor per axis."""

    def __init__(self, factor):
        _check_per_axis_shape(factor, "factor", 1)
        self.factor = factor

    def factors(self, n_in: Size) -> tuple[int, ...]:
        return per_axis(self.factor, len(n_in), "factor", 1)


class PixelShuffle(_Factor):
    """Channels to space: output o reads input o // factor."""

    kind = "pixelshuffle"

    def bind(self, sizes):
        (n_in,) = sizes
        f = self.factors(n_in)
        out = tuple(n * r for n, r in zip(n_in, f))
        return out, [R.Resample(n, m, Fraction(1, r), Fraction(0), "floor")
                     for n, m, r in zip(n_in, out, f)]


class PixelUnshuffle(_Factor):
    """Space to channels: output o reads input [o*factor, o*factor + factor)."""

    kind = "pixelunshuffle"

    def bind(self, sizes):
        (n_in,) = sizes
        f = self.factors(n_in)
        for n, r in zip(n_in, f):
            if n % r:
                raise ShapeError(f"input size {list(n_in)} is not divisible by factor {r}")
        out = tuple(n // r for n, r in zip(n_in, f))
        return out, [R.Window(n, m, r, r, 0) for n, m, r in zip(n_in, out, f)]


class Pointwise(Op):
    """Activations, norms, dropout, 1x1 convolutions: index o reads index o."""

    kind = "identity"

    def __init__(self, kind: str = "identity"):
        self.kind = kind

    def describe(self) -> dict:
        return {}

    def bind(self, sizes):
        (n_in,) = sizes
        return n_in, [R.Identity(n, n) for n in n_in]


class Merge(Op):
    """Add, multiply, concatenate along channels: all inputs must have one size."""

    arity = None

    def __init__(self, kind: str = "add", aligned: bool = True):
        self.kind, self.aligned = kind, aligned

    def describe(self) -> dict:
        return {}

    def bind(self, sizes):
        first = sizes[0]
        for other in sizes[1:]:
            if other != first:
                raise ShapeError("inputs have different sizes: "
                                 + ", ".join(str(list(s)) for s in sizes))
        return first, [R.Identity(n, n) for n in first]
