"""Layers that reach a target receptive field (``rfield design``).

Two kinds of stack, each checked by rfield's own analysis before it is shown:

- **Dilated** (jump 1: audio, time series; WaveNet, TCN). A layer of kernel k and
  dilation d adds k taps d apart to what the layers before it cover. When those
  cover a run of S positions without a hole, the new layer keeps the run whole if
  and only if d <= S, and makes it S + (k - 1) d long; so each layer takes
  d = S (capped by ``max_dilation``), the last only what the target still needs.
  That is the fewest layers any hole-free stack can have: each layer multiplies
  the positions it can reach by at most k. With k = 2 this is WaveNet's doubling
  (1, 2, 4, ...), which satisfies Wang et al. 2018's hybrid dilated convolution
  rule (dilations share no factor above 1 and leave no gap wider than the kernel).
- **Strided** (a jump above 1: image backbones). The jump's prime factors, largest
  first, each a conv whose kernel is at least its stride (no position skipped);
  then convs of stride 1, each adding (k - 1) x jump, until the field is reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from .core.analysis import Analysis
from .errors import RfieldError

MAX_LAYERS = 10_000


class DesignError(RfieldError):
    """A target no stack of the asked kind reaches; the message says why."""


@dataclass(frozen=True)
class Target:
    """What the stack must reach: a field of at least ``rf`` per axis at ``jump``."""

    rf: int
    jump: int = 1
    dims: int = 2
    kernel: int = 3
    causal: bool = False
    max_dilation: int | None = None
    max_layers: int | None = None


@dataclass(frozen=True)
class Design:
    target: Target
    layers: list[dict]  # the layer dicts, as a spec file holds them
    line: str  # the one-line form: rfield analyze "<line>" reads it back
    input_size: tuple[int, ...]
    analysis: Analysis

    @property
    def rf(self) -> int:
        field = self.analysis.field()
        assert field.rf is not None
        return field.rf[0]


def _check(t: Target) -> None:
    for name, value, low in (("--rf", t.rf, 1), ("--jump", t.jump, 1), ("--kernel", t.kernel, 1),
                             ("--max-dilation", t.max_dilation, 1),
                             ("--max-layers", t.max_layers, 1)):
        if value is not None and value < low:
            raise DesignError(f"{name} must be at least {low}, got {value}")
    if t.dims not in (1, 2, 3):
        raise DesignError(f"--dims must be 1, 2 or 3, got {t.dims}")
    if t.kernel == 1 and t.rf > t.jump:
        raise DesignError("a kernel of 1 never grows the field: give --kernel 2 or more")


def dilations(t: Target) -> list[int]:
    """The dilation of each layer of the fewest-layer hole-free stack of kernel k."""
    k, covered, out = t.kernel, 1, []
    while covered < t.rf:
        d = covered if t.max_dilation is None else min(covered, t.max_dilation)
        d = min(d, ceil((t.rf - covered) / (k - 1)))  # the last: what is still needed
        out.append(d)
        covered += (k - 1) * d
        if len(out) > MAX_LAYERS:
            raise DesignError(f"more than {MAX_LAYERS} layers would be needed")
    return out


def strides(t: Target) -> list[tuple[int, int]]:
    """(kernel, stride) per layer: the jump's prime factors, then stride 1 to the rf."""
    factors, n, p = [], t.jump, 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    out, rf, jump = [], 1, 1
    for s in sorted(factors, reverse=True):
        k = max(t.kernel, s)
        out.append((k, s))
        rf, jump = rf + (k - 1) * jump, jump * s
    while rf < t.rf:
        out.append((t.kernel, 1))
        rf += (t.kernel - 1) * jump
        if len(out) > MAX_LAYERS:
            raise DesignError(f"more than {MAX_LAYERS} layers would be needed")
    return out


def _layer(i: int, kernel: int, stride: int, dilation: int, causal: bool) -> dict:
    layer: dict = {"name": f"conv{i + 1}", "op": "conv", "kernel": kernel}
    if stride > 1:
        layer["stride"] = stride
    if dilation > 1:
        layer["dilation"] = dilation
    layer["padding"] = "causal" if causal else "same"
    return layer


def _line(layers: list[dict]) -> str:
    def one(layer: dict) -> str:
        args = [str(layer["kernel"])] + [f"{key[0]}={layer[key]}" for key in
                                         ("stride", "dilation", "padding") if key in layer]
        return f"conv({','.join(args)})"
    return "; ".join(one(layer) for layer in layers)


def design(t: Target) -> Design:
    """The stack reaching ``t``, checked by the analysis; else one DesignError line."""
    from .api import analyze

    _check(t)
    if t.jump == 1:
        plan = [(t.kernel, 1, d) for d in dilations(t)]
    else:
        plan = [(k, s, 1) for k, s in strides(t)]
    if not plan:
        plan = [(1, 1, 1)]  # a field of 1: one pointwise layer
    if t.max_layers is not None and len(plan) > t.max_layers:
        cap = f", with dilations of at most {t.max_dilation}" if t.max_dilation else ""
        why = (f"each layer of kernel {t.kernel} at most multiplies the positions "
               f"reached by {t.kernel}{cap}") if t.jump == 1 else \
            f"the downsampling to jump {t.jump} and stride-1 layers of kernel {t.kernel}"
        raise DesignError(f"a field of {t.rf} takes {len(plan)} layers ({why}); "
                          f"--max-layers is {t.max_layers}")
    layers = [_layer(i, k, s, d, t.causal) for i, (k, s, d) in enumerate(plan)]
    field, jump = 1, 1
    for k, stride, dilation in plan:
        field, jump = field + (k - 1) * dilation * jump, jump * stride
    side = 2 * field + (4 * t.jump if t.jump > 1 else 0)  # units whose field is whole
    side += -side % t.jump
    size = (side,) * t.dims
    a = analyze({"input": list(size), "layers": layers})
    f = a.field()
    holes = [c for c in (f.coverage or ()) if c is not None and c < 1]
    if f.rf is None or min(f.rf) < t.rf or f.jump != (t.jump,) * t.dims or holes \
            or not f.is_exact:  # never shown: the arithmetic above and the analysis disagree
        raise RfieldError(f"the design does not check out (rf {f.rf}, jump {f.jump}, "
                          f"coverage {f.coverage}); please report this target")
    return Design(t, layers, _line(layers), size, a)


def describe(d: Design) -> str:
    """The line under the table: what was reached and why it has no hole."""
    t, f = d.target, d.analysis.field()
    assert f.rf is not None
    n = len(d.layers)
    text = (f"design: field {f.rf[0]} (target {t.rf}) at jump {t.jump}, {n} layer"
            f"{'s' if n > 1 else ''}, no holes (every position inside the field is read)")
    if t.jump == 1 and n > 1:
        text += (f"; dilations {', '.join(str(layer.get('dilation', 1)) for layer in d.layers)}"
                 ", each at most the run covered before it (the fewest layers: each "
                 f"multiplies the positions reached by at most {t.kernel})")
    return text
