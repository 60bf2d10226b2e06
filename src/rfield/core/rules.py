"""Per-axis index rules: which input indices one output index reads.

Every layer, once bound to concrete sizes, is one rule per spatial axis. A rule
answers two questions about output index ``o``:

* ``reads(o)``: the input indices it reads on an unbounded input (no borders,
  no clamping). Used for the theoretical field, which is periodic in ``o``:
  ``reads(o + period) == [r + shift for r in reads(o)]``.
* ``taps(o_array)``: the exact reads on the concrete input, vectorised. Each
  tap is ``(index, present)``: ``present`` is False where the tap reads nothing
  (an interpolation weight of exactly 0, a transposed-conv tap that does not
  land); a present index outside ``[0, n_in)`` reads padding.

Indices are integers and ratios are Fractions, so everything is exact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor, gcd

import numpy as np

Tap = tuple[np.ndarray, np.ndarray]


class AxisRule(ABC):
    """What one axis of a layer reads: the interface every rule implements.
    Subclasses set n_in, n_out, period and shift."""

    n_in: int
    n_out: int
    period: int = 1
    shift: int = 1
    is_global: bool = False
    is_identity: bool = False

    @abstractmethod
    def reads(self, o: int) -> list[int]:
        """The input indices output ``o`` reads."""

    @abstractmethod
    def taps(self, o: np.ndarray) -> list[Tap]:
        """Per tap, the input index each output in ``o`` reads and a mask of the
        outputs that read one there."""

    def border(self, o: np.ndarray) -> np.ndarray | None:
        """Units that read padding values copied from inside (reflect, replicate); else None."""
        return None

    @property
    def jump(self) -> Fraction:
        """Input indices advanced per output index."""
        return Fraction(self.shift, self.period)


def _all(o: np.ndarray) -> np.ndarray:
    return np.ones(o.shape, dtype=bool)


@dataclass
class Identity(AxisRule):
    """Pointwise layers and merges: output o reads input o."""

    n_in: int
    n_out: int
    is_identity = True

    def reads(self, o: int) -> list[int]:
        return [o]

    def taps(self, o: np.ndarray) -> list[Tap]:
        return [(o, _all(o))]


@dataclass
class Window(AxisRule):
    """A sliding window (conv, pooling, crop, slice, unshuffle).

    Output o reads ``o*stride - pad_before + t*dilation`` for t < kernel.
    """

    n_in: int
    n_out: int
    kernel: int
    stride: int
    pad_before: int
    dilation: int = 1

    def __post_init__(self) -> None:
        self.shift = self.stride

    def reads(self, o: int) -> list[int]:
        base = o * self.stride - self.pad_before
        return [base + t * self.dilation for t in range(self.kernel)]

    def taps(self, o: np.ndarray) -> list[Tap]:
        base = o * self.stride - self.pad_before
        return [(base + t * self.dilation, _all(o)) for t in range(self.kernel)]


@dataclass
class PadBorder(AxisRule):
    """Padding with reflect, replicate or circular values: border reads are real."""

    n_in: int
    n_out: int
    pad_before: int
    mode: str

    def reads(self, o: int) -> list[int]:
        return [o - self.pad_before]

    def taps(self, o: np.ndarray) -> list[Tap]:
        i = o - self.pad_before
        n = self.n_in
        if self.mode == "replicate":
            i = np.clip(i, 0, n - 1)
        elif self.mode == "circular":
            i = np.mod(i, n)
        else:  # reflect, without repeating the edge
            if n == 1:
                i = np.zeros_like(i)
            else:
                m = np.mod(i, 2 * (n - 1))
                i = np.where(m < n, m, 2 * (n - 1) - m)
        return [(i, _all(o))]

    def border(self, o: np.ndarray) -> np.ndarray:
        i = o - self.pad_before
        return (i < 0) | (i >= self.n_in)


@dataclass
class Transposed(AxisRule):
    """A transposed convolution: input i, tap t writes output i*stride - pad + t*dilation."""

    n_in: int
    n_out: int
    kernel: int
    stride: int
    pad_before: int
    dilation: int = 1

    def __post_init__(self) -> None:
        self.period = self.stride
        self.shift = 1

    def reads(self, o: int) -> list[int]:
        out = []
        for t in range(self.kernel):
            num = o + self.pad_before - t * self.dilation
            if num % self.stride == 0:
                out.append(num // self.stride)
        return out

    def taps(self, o: np.ndarray) -> list[Tap]:
        result = []
        for t in range(self.kernel):
            num = o + self.pad_before - t * self.dilation
            result.append((np.floor_divide(num, self.stride), np.mod(num, self.stride) == 0))
        return result


@dataclass
class Resample(AxisRule):
    """Upsampling, resizing and pixel shuffle: output o samples input at ``o*scale + offset``.

    ``kind`` is how the source coordinate becomes reads: "floor" (nearest),
    "round_prefer_floor", "round_prefer_ceil", "ceil" (ONNX nearest modes),
    "linear" (two neighbours) or "cubic" (four). A neighbour whose weight is
    exactly 0 is not read. ``clamp_low`` clamps a negative source coordinate
    to 0 before interpolating, as PyTorch and ONNX do for linear modes.

    ``antialias`` (linear and cubic; 0 for none) is the declared scale's shrink factor,
    whatever the coordinate mode; the filter is stretched by L = max(it, 1): every
    index within L of the source (2L for cubic) is read,
    except, for cubic, those exactly L away (the filter's zero there); indices past
    the border read the edge (ONNX) or are dropped (PyTorch): the same reads.
    """

    n_in: int
    n_out: int
    scale: Fraction
    offset: Fraction
    kind: str
    clamp_low: bool = False
    antialias: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            self.period, self.shift = 1, 0
        else:
            self.period, self.shift = self.scale.denominator, self.scale.numerator

    def _source(self, o: int) -> Fraction:
        return o * self.scale + self.offset

    def _nearest(self, src: Fraction) -> int:
        if self.kind == "floor":
            return floor(src)
        if self.kind == "ceil":
            return -floor(-src)
        base = floor(src)
        frac = src - base
        if frac == Fraction(1, 2):
            return base if self.kind == "round_prefer_floor" else base + 1
        return base + (1 if frac > Fraction(1, 2) else 0)

    def _stretch(self) -> tuple[Fraction, Fraction]:
        """Antialias: the stretch L and the reach (L, or 2L for cubic)."""
        stretch = max(Fraction(1), self.antialias)
        return stretch, stretch * (2 if self.kind == "cubic" else 1)

    def reads(self, o: int) -> list[int]:
        src = self._source(o)
        if self.antialias:
            stretch, reach = self._stretch()
            return [i for i in range(floor(src - reach), floor(src + reach) + 1)
                    if abs(i - src) < reach and not (self.kind == "cubic"
                                                     and abs(i - src) == stretch)]
        if self.kind in ("linear", "cubic"):
            base = floor(src)
            if src == base:
                return [base]
            if self.kind == "linear":
                return [base, base + 1]
            return [base - 1, base, base + 1, base + 2]
        return [self._nearest(src)]

    def _source_arrays(self, o: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact floor and remainder of the source coordinate: src = base + rem/den."""
        den = self.scale.denominator * self.offset.denominator
        num = (o * (self.scale.numerator * self.offset.denominator)
               + self.offset.numerator * self.scale.denominator)
        if self.clamp_low:
            num = np.maximum(num, 0)
        return np.floor_divide(num, den), np.mod(num, den), np.full(o.shape, den)

    def taps(self, o: np.ndarray) -> list[Tap]:
        last = self.n_in - 1
        base, rem, den = self._source_arrays(o)
        if self.antialias:
            stretch, reach = self._stretch()
            d = int(den.flat[0]) if den.size else 1  # one denominator for every unit
            within = ceil(reach * d) - 1  # |index - source| * d <= within: inside the reach
            zero = stretch * d  # the cubic filter's zero, if it falls on a whole number
            slots = []
            for j in range(-ceil(reach) - 1, ceil(reach) + 2):
                away = np.abs(j * d - rem)  # |index - source| * d, exact
                read = away <= within
                if self.kind == "cubic" and zero.denominator == 1:
                    read &= away != zero.numerator
                slots.append((np.clip(base + j, 0, last), read))
            return slots
        if self.kind == "linear":
            base = np.minimum(base, last)
            second = (rem != 0) & (base < last)
            return [(base, _all(o)), (np.minimum(base + 1, last), second)]
        if self.kind == "cubic":
            exact = rem == 0
            clamp = lambda i: np.clip(i, 0, last)
            return [(clamp(base - 1), ~exact), (clamp(base), _all(o)),
                    (clamp(base + 1), ~exact), (clamp(base + 2), ~exact)]
        if self.kind == "floor":
            idx = base
        elif self.kind == "ceil":
            idx = base + (rem != 0)
        else:
            twice = 2 * rem
            up = (twice > den) | ((twice == den) & (self.kind == "round_prefer_ceil"))
            idx = base + up
        return [(np.clip(idx, 0, last), _all(o))]


@dataclass
class Adaptive(AxisRule):
    """Adaptive pooling: output o pools input [floor(o*n/m), ceil((o+1)*n/m))."""

    n_in: int
    n_out: int

    def __post_init__(self) -> None:
        g = gcd(self.n_in, self.n_out)
        self.period, self.shift = self.n_out // g, self.n_in // g
        self.width = -(-self.n_in // self.n_out) + 1

    def _bounds(self, o):
        return (o * self.n_in) // self.n_out, -((-(o + 1) * self.n_in) // self.n_out)

    def reads(self, o: int) -> list[int]:
        lo, hi = self._bounds(o)
        return list(range(lo, hi))

    def taps(self, o: np.ndarray) -> list[Tap]:
        lo, hi = self._bounds(o)
        return [(np.minimum(lo + t, self.n_in - 1), lo + t < hi) for t in range(self.width)]


@dataclass
class Global(AxisRule):
    """Global pooling, flatten + linear, attention: every output reads every input."""

    n_in: int
    n_out: int
    is_global = True

    def reads(self, o: int) -> list[int]:
        raise TypeError("a global rule has no finite reads")

    def taps(self, o: np.ndarray) -> list[Tap]:
        raise TypeError("a global rule has no finite taps")


@dataclass
class DigitMix(AxisRule):
    """Attention inside windows (or across a grid): every unit reads the units that
    differ from it only in some digits of its index.

    An axis of ``n_in`` units split into windows of w is two digits, o = w*q + r;
    attention within a window reads every r for its own q, so ``mixed`` is
    ``((1, w),)``: (stride, count) pairs, one per mixed digit. Grid attention
    (MaxViT) mixes the high digit instead: ``((n/g, g),)``. The pattern repeats
    above the highest mixed digit.
    """

    n_in: int
    n_out: int
    mixed: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        self.period = self.shift = max(s * c for s, c in self.mixed)
        self.offsets = [0]
        for s, c in self.mixed:
            self.offsets = [b + k * s for b in self.offsets for k in range(c)]

    def _base(self, o):
        for s, c in self.mixed:
            o = o - ((o // s) % c) * s
        return o

    def reads(self, o: int) -> list[int]:
        base = self._base(o)
        return sorted(base + k for k in self.offsets)

    def taps(self, o: np.ndarray) -> list[Tap]:
        base = self._base(o)
        return [(base + k, _all(o)) for k in self.offsets]


@dataclass
class Roll(AxisRule):
    """``torch.roll``: output o reads input o - shift, wrapping around the axis.

    On an unbounded input it is a translation; the wrap is a border effect, as for
    circular padding, and only the real units (``taps``) see it.
    """

    n_in: int
    n_out: int
    by: int

    def reads(self, o: int) -> list[int]:
        return [o - self.by]

    def taps(self, o: np.ndarray) -> list[Tap]:
        return [(np.mod(o - self.by, self.n_in), _all(o))]
