"""Receptive fields measured by back-propagation through the real network.

This shares no code with the analysis: it asks the network itself. A copy of
the model gets positive weights, loses its nonlinearities (activations, norms
and gates become identities), has max pooling replaced by average pooling and
runs in float64 on an input of ones. Every path from an input pixel to a unit
then carries a positive product, so the input gradient of one unit is
non-zero exactly on the pixels the unit depends on (an interpolation weight
of exactly 0 stays 0, as in the analysis).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from ..core.graph import Digits
from ..errors import RfieldError, require
from ..models.torch_models import input_tensor_shape

# functional calls that become the identity in the measurement copy
IDENTITY_FUNCS = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "gelu",
    "silu", "silu_", "hardswish", "hardswish_", "mish", "elu", "elu_", "selu", "celu",
    "softplus", "prelu",
    "batch_norm", "local_response_norm",
    "dropout", "dropout2d", "dropout1d", "dropout3d", "clamp", "clamp_", "clip",
    "clamp_min", "clamp_max",
}
# gates (x * sigmoid(...)) become a bounded, strictly increasing x / (1 + |x|): as an
# identity a gate squares the magnitude at every block and overflows float64; as a
# real sigmoid its derivative underflows to exactly 0 for large inputs
# (attention's softmax too: as an identity, q @ k^T squares the magnitude per block)
GATE_FUNCS = {"sigmoid", "sigmoid_", "hardsigmoid", "hardsigmoid_", "tanh", "tanh_",
              "softmax", "log_softmax"}
# norms whose statistics run over positions: each output reads its own value and the
# mean of what the statistics cover (x + mean keeps both dependencies, stays bounded)
NORM_FUNCS = {"group_norm", "instance_norm", "layer_norm"}
MAX_TO_AVG = {
    "max_pool1d": "avg_pool1d", "max_pool2d": "avg_pool2d", "max_pool3d": "avg_pool3d",
    "adaptive_max_pool1d": "adaptive_avg_pool1d", "adaptive_max_pool2d": "adaptive_avg_pool2d",
    "adaptive_max_pool3d": "adaptive_avg_pool3d",
}


@dataclass(frozen=True)
class Measured:
    """The input box (per axis, inclusive) whose gradient is non-zero for one unit."""

    node: str
    unit: tuple[int, ...]
    box: tuple[tuple[int, int], ...]
    output_size: tuple[int, ...]


def positive_copy(model, seed: int = 0, copy_model: bool = True):
    """A float64 copy with positive parameters and neutral norm statistics; other
    buffers (a blur pool's fixed filter) are kept.

    Weights are drawn from [0.5, 1] / fan-in, so activations stay near 1 however
    deep the network: plain positive weights overflow float64 within ~100 layers.
    """
    torch = require("torch", "torch")
    m = copy.deepcopy(model) if copy_model else model
    unset = any(p.device.type == "meta" for p in list(m.parameters()) + list(m.buffers()))
    if unset:
        m = m.to_empty(device="cpu")
    m = m.double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            fan_in = max(1, p[0].numel()) if p.dim() >= 2 else 1
            p.copy_((0.5 + 0.5 * torch.rand(p.shape, generator=gen, dtype=torch.float64))
                    / fan_in)
        for name, b in m.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if not b.is_floating_point():
                continue
            if leaf in ("running_mean", "running_var"):
                b.fill_(1.0 if leaf == "running_var" else 0.0)
            elif unset:  # made on meta, never set: positive, so no path is cut
                b.fill_(1.0)
            # other buffers are the model's own constants (a blur pool's filter)
    return m


def _mode(torch):
    from torch.overrides import TorchFunctionMode
    F = torch.nn.functional

    class Linearise(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name in IDENTITY_FUNCS:
                return args[0] if args else kwargs["input"]
            if name in GATE_FUNCS:
                x = args[0] if args else kwargs["input"]
                return x / (1 + x.abs())
            if name in MAX_TO_AVG:
                return _avg(F, name, args, kwargs)
            if name in NORM_FUNCS:
                return _norm(name, args, kwargs)
            if name == "pad":
                args, kwargs = _finite_pad(args, kwargs)
            return _bounded(torch, func(*args, **kwargs))

    return Linearise


#: values past this are scaled back to 1 (by a constant, which keeps every dependency)
LARGEST = 1e6


def _bounded(torch, out):
    """``out``, divided by its largest magnitude when that is past LARGEST: products of
    two input-dependent values (attention, focal modulation) square the magnitude per
    block and overflow float64 within a few dozen; a positive constant factor changes
    no dependency (its gradient factor is the same constant, so neither pass grows)."""
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.requires_grad \
            and out.numel():
        top = out.detach().abs().max()
        if top > LARGEST and torch.isfinite(top):
            return out / top
    return out


def _finite_pad(args, kwargs):
    """A pad with -inf (TF 'same' max pooling: the border never wins a max) pads with 0
    once max pooling averages: -inf would poison every window that reaches it, and a
    padded position carries no input either way."""
    value = args[3] if len(args) > 3 else kwargs.get("value")
    if value is None or math.isfinite(value):
        return args, kwargs
    if len(args) > 3:
        return args[:3] + (0.0,) + tuple(args[4:]), kwargs
    return args, dict(kwargs, value=0.0)


def _norm(name, args, kwargs):
    x = args[0] if args else kwargs["input"]
    if name == "layer_norm":
        shape = args[1] if len(args) > 1 else kwargs["normalized_shape"]
        k = 1 if isinstance(shape, int) else len(shape)
        dims = tuple(range(x.dim() - k, x.dim()))
    else:
        dims = tuple(range(2, x.dim()))
    return (x + x.mean(dim=dims, keepdim=True)) / 2


def _avg(F, name, args, kwargs):
    a = dict(zip(["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                  "return_indices"], args))
    a.update(kwargs)
    target = getattr(F, MAX_TO_AVG[name])
    if name.startswith("adaptive"):
        out = target(a["input"], a.get("kernel_size", kwargs.get("output_size")))
        return (out, None) if a.get("return_indices") else out
    dil = a.get("dilation", 1)
    if dil not in (1, (1, 1), (1,), (1, 1, 1), [1, 1]):
        raise RfieldError("the measurement cannot replace a dilated max pool")
    out = target(a["input"], a["kernel_size"], a.get("stride") or a["kernel_size"],
                 a.get("padding", 0), ceil_mode=bool(a.get("ceil_mode", False)),
                 count_include_pad=False)
    return (out, None) if a.get("return_indices") else out


def _first_tensor(torch, out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for o in out:
            t = _first_tensor(torch, o)
            if t is not None:
                return t
    return None


#: samples in the forward pass: two units are measured per backward pass, one in each
SAMPLES = 2


def check_device(torch, device: str) -> None:
    """A device torch can use here, else one line that says why not."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RfieldError(f"--device {device}: not a device torch knows (cpu, cuda, "
                          "cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RfieldError(f"--device {device}: torch sees no CUDA GPU on this machine")


def measure(model, input_shape, modules: list[str] | None = None, units=None,
            seed: int = 0, layouts: dict | None = None,
            copy_model: bool = True, device: str = "cpu") -> dict[str, list[Measured]]:
    """Boxes of units of the outputs of ``modules`` ("" is the model's own output).

    ``units`` maps a module to a list of unit indices (spatial); the default is
    the centre unit. ``copy_model=False`` changes ``model`` itself (for a model
    built only to be measured: big models are costly to copy). ``layouts`` maps
    a module to the input axis each dim of its output holds (None for batch and
    channels; default N, C, spatial...), for models that permute to channels-last.
    Returns one Measured per unit.

    One forward pass runs two samples; each backward pass measures two units, one in
    each sample (never a batch of one: torch's CPU batch-norm backward misplaces
    gradients that arrive channels-last in a batch of one, so a framework bug must
    not fake a field), at twice the memory of one sample, not one per unit.
    """
    torch = require("torch", "torch")
    check_device(torch, device)
    m = positive_copy(model, seed, copy_model).to(device)
    modules = [""] if modules is None else list(modules)
    missing = {module_of(n) for n in modules} - {n for n, _ in m.named_modules()} - {""}
    if missing:
        raise RfieldError(f"no module named {', '.join(sorted(missing))}")
    picks = [(name, None if unit is None else tuple(unit)) for name in modules
             for unit in ((units or {}).get(name) or [None])]
    nd = len(input_shape) - 2
    x = torch.ones((SAMPLES,) + input_tensor_shape(input_shape)[1:], dtype=torch.float64,
                   device=device, requires_grad=True)
    outputs = _forward(torch, m, x, {module_of(n) for n in modules})
    found: dict[tuple[str, Any], Measured] = {}
    for first in range(0, len(picks), SAMPLES):
        pair = picks[first:first + SAMPLES]
        total, where = None, []
        for b, (name, unit) in enumerate(pair):
            y, index, unit, size = _unit_index(outputs.get(module_of(name)), name, unit, b, nd,
                                               (layouts or {}).get(name))
            picked = y[index].sum()
            total = picked if total is None else total + picked
            where.append((name, unit, size))
        assert total is not None
        x.grad = None
        total.backward(retain_graph=first + SAMPLES < len(picks))
        grad = x.grad
        if not torch.isfinite(grad).all():
            raise RfieldError(f"the measurement overflowed at {pair[0][0] or 'the output'}")
        for b, (name, unit, size) in enumerate(where):
            per_channel = grad[b] if input_shape[1] else grad[b][None]
            found[(name, pair[b][1])] = Measured(name, tuple(unit),
                                                 _support(torch, per_channel), size)
    return {name: [found[(name, unit)] for n, unit in picks if n == name]
            for name in modules}


def module_of(name: str) -> str:
    """The module a name is an output of: ``model.22[0:6400]`` is one map's anchors
    among those ``model.22`` returns (its layout says where they lie)."""
    return name.split("[")[0]


def _unit_index(y, name: str, unit, sample: int, nd: int, layout):
    """(output, index of ``unit`` in ``sample``, the unit, spatial size)."""
    layout = layout or (None, None) + tuple(range(nd))
    if any(isinstance(e, Digits) for e in layout):
        return _token_index(y, name, unit, sample, nd, layout)
    if y is None or y.dim() != len(layout) or sorted(
            a for a in layout if a is not None) != list(range(nd)):
        raise RfieldError(f"module {name or 'output'} has no spatial output to measure")
    dims = {a: d for d, a in enumerate(layout) if a is not None}
    size = tuple(int(y.shape[dims[a]]) for a in range(nd))
    unit = unit if unit is not None else tuple(n // 2 for n in size)
    index: list[Any] = [slice(None)] * y.dim()
    index[layout.index(None)] = sample
    for a, d in dims.items():
        index[d] = unit[a]
    return y, tuple(index), unit, size


def _token_index(y, name: str, unit, sample: int, nd: int, layout):
    """As :func:`_unit_index` for a tensor whose dims hold positions as digits
    (tokens): the batch is its first dim, the other positionless dims are summed."""
    if y is None or y.dim() != len(layout) or layout[0] is not None:
        raise RfieldError(f"module {name or 'output'} has no spatial output to measure")
    digits = [e for e in layout if isinstance(e, Digits)]
    size = tuple(math.prod(e.extent(a) for e in digits) for a in range(nd))
    unit = unit if unit is not None else tuple(n // 2 for n in size)
    index: list[Any] = [slice(None)] * y.dim()
    index[0] = sample
    for d, e in enumerate(layout):
        if isinstance(e, Digits):
            index[d] = e.index(tuple(unit))
    return y, tuple(index), unit, size


def _support(torch, grad) -> tuple[tuple[int, int], ...]:
    """Per axis, the first and last input position with a non-zero gradient."""
    hit = grad.abs().sum(0) > 0
    nd = hit.dim()
    box = []
    for axis in range(nd):
        other = tuple(a for a in range(nd) if a != axis)
        line = hit.any(dim=other) if other else hit
        idx = torch.nonzero(line).flatten()
        box.append((int(idx[0]), int(idx[-1])) if len(idx) else (0, -1))
    return tuple(box)


class _Enough(Exception):
    """Every module wanted has run: the rest of the network (its head) is not needed."""


def _forward(torch, m, x, names: set[str]) -> dict[str, Any]:
    """The outputs of the modules ``names`` ("" the model's own) on ``x``; without ""
    the forward pass stops once they have all run (a head that fixes the input size
    is never reached)."""
    outputs: dict[str, Any] = {}
    inner = names - {""}

    def keep(name):
        def hook(_mod, _inp, out) -> None:  # returns None: a value would replace the output
            if name not in outputs:  # a module called twice: its first output
                outputs[name] = _first_tensor(torch, out)
            if "" not in names and inner <= outputs.keys():
                raise _Enough()
        return hook

    hooks = [sub.register_forward_hook(keep(name)) for name, sub in m.named_modules()
             if name in inner]
    try:
        with _mode(torch)():
            final = m(x)
        outputs[""] = _first_tensor(torch, final)
    except _Enough:
        pass
    finally:
        for h in hooks:
            h.remove()
    return outputs
