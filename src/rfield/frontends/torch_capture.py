"""PyTorch front-end: an ``nn.Module`` -> :class:`Graph`, without running it on data.

How the network is captured, and why:

* A ``TorchFunctionMode`` sees every call at the level users write it
  (``F.conv2d``, ``F.interpolate``, ``torch.cat``, ``x + y``, ``x.view(...)``,
  in-place ops), with its arguments: kernel sizes, strides, modes. That is the
  level where receptive fields are defined; aten-level capture would show
  ``convolution`` with normalised arguments and lose ``interpolate``'s mode.
* The forward runs for real, in Python, so models with control flow
  (googlenet, inception_v3, detection wrappers) just work, unlike
  ``torch.fx`` tracing. It runs on *meta* tensors (the parameters are swapped
  for meta copies with ``torch.func.functional_call``): no arithmetic, no
  memory for activations. A model that makes CPU tensors of its own during
  forward cannot run on meta; it is then run once on zeros on the CPU.
* Forward hooks on every submodule give nodes the user's module names, so
  ``layer4`` or ``backbone.body.layer3`` can be asked for.

This module is the adapter: each call is turned, through the table
:data:`.torch_ops.HANDLERS`, into one call of the shared kernel
(:mod:`.kernel`), which keeps each tensor's node and layout.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.graph import INPUT, Graph
from ..errors import RfieldError, TargetError, require
from ..models.torch_models import input_tensor_shape
from .kernel import Kernel, T, Unknown
from .torch_ops import HANDLERS, IGNORE, MODULE_HANDLERS, flat, without_ellipsis


class Capture:
    """The adapter's state while the model runs under the mode."""

    def __init__(self, torch, input_shape: tuple[int, ...], strict: bool) -> None:
        self.torch = torch
        self.kernel = Kernel(tuple(input_shape[2:]), strict, "torch", self._naming,
                             self._where)
        self.module_stack: list[str] = []
        self.module_outputs: dict[str, str] = {}
        self.module_layouts: dict[str, tuple] = {}
        self.leaves: set[str] = set()  # module paths without children
        self.kinds: dict[str, str] = {}  # module path -> class name
        self.outputs: dict[str, str] = {}  # what forward returns -> its node
        self.whole: list = []  # per running module: its input, if it is read whole
        self.inside_whole = False  # a module read whole is running: skip the calls in it

    def reset(self) -> None:
        self.kernel.state.reset()
        self.module_outputs.clear()
        self.module_layouts.clear()
        self.module_stack.clear()
        self.whole.clear()
        self.inside_whole = False

    # ------------------------------------------------------------------ names

    def _naming(self, kind: str) -> tuple[str, str | None]:
        """The op inside a leaf module takes the module's name; others get scope.kind."""
        scope = self.module_stack[-1] if self.module_stack else ""
        if scope and scope in self.leaves:
            return scope, scope
        return (f"{scope}.{kind}" if scope else kind), scope or None

    def _where(self) -> str:
        if not self.module_stack:
            return "the model's top level"
        path = self.module_stack[-1]
        return f"module {path!r} ({self.kinds.get(path, '?')})"

    # ------------------------------------------------------------------ tensors

    def t(self, x) -> T:
        return T(id(x), tuple(int(v) for v in x.shape), x)

    def tracked(self, x) -> bool:
        if not isinstance(x, self.torch.Tensor):
            return False
        entry = self.kernel.state.entry(id(x))
        return entry is not None and entry[2] is x

    def bind(self, x, node: str, layout) -> None:
        self.kernel.state.bind(self.t(x), node, layout)

    def lookup(self, x) -> tuple[str, tuple]:
        return self.kernel.state.get(self.t(x))

    def name_output(self, path: str, out) -> None:
        """The module at ``path`` returned ``out``: its first tensor's node takes the
        module's name (a module called twice names its first output)."""
        first = out
        while isinstance(first, (list, tuple)) and first:
            first = first[0]
        if isinstance(out, dict):
            first = next(iter(out.values()), None)
        if not self.tracked(first):
            return
        for suffix, node, layout in self.kernel.state.pieces(self.t(first)):
            if not any(d is not None for d in layout):  # tokens: where each unit is
                layout = self.kernel.state.digits_layout(self.t(first)) or layout
            name = path + suffix  # anchors of several maps: one name per map
            if node != INPUT and name not in self.module_outputs:
                self.module_outputs[name] = node
                self.module_layouts[name] = tuple(layout)

    # ------------------------------------------------------------------ dispatch

    def handle(self, func, args, kwargs, out) -> None:
        """Record ``out = func(*args, **kwargs)``; called after the real call."""
        name = getattr(func, "__name__", str(func))
        if isinstance(func, self.torch._ops.OpOverload):  # torch.ops.aten.relu_.default
            name = name.split(".")[0]  # as the function users call: relu_
        if name in IGNORE or self.inside_whole:
            return  # inside a module read whole: its handler reads it at the end
        tracked = [a for a in flat((args, kwargs)) if self.tracked(a)]
        if not tracked:
            return  # nothing that depends on the input
        if name == "__setitem__":
            return self._setitem(args)
        outs = [o for o in flat(out) if isinstance(o, self.torch.Tensor)]
        if not outs or all(o.numel() == 0 for o in outs):
            return  # nothing made, or only empty tensors (x[:, :0]): no value to follow
        key = name.strip("_")
        handler = HANDLERS.get(key)
        try:
            if handler is None:
                raise Unknown(name)
            handler(self, key, args, kwargs, out)
        except Unknown as exc:
            self.kernel.state.unknown(str(exc), [self.t(x) for x in tracked],
                                [self.t(o) for o in outs], name)

    def _setitem(self, args) -> None:
        """``x[idx] = y``: where ``idx`` cuts only dims holding no position, each
        element written reads ``y`` at its own position; else not followed."""
        target, index, value = args[0], args[1], args[2]
        if not self.tracked(value):
            return
        ins = [self.t(v) for v in (target, value) if self.tracked(v)]
        index = index if isinstance(index, tuple) else (index,)
        try:
            if any(i is None or isinstance(i, self.torch.Tensor) for i in index) or \
                    value.dim() != target.dim() or index.count(Ellipsis) > 1:
                raise Unknown("__setitem__")
            index = without_ellipsis(index, target.dim())
            if not all(isinstance(i, slice) for i in index):
                raise Unknown("__setitem__")  # an int drops a dim the value lacks
            cut = {d: i.indices(target.shape[d]) for d, i in enumerate(index)
                   if i.indices(target.shape[d]) != (0, target.shape[d], 1)}
            written = T(("written", id(target)), tuple(target.shape))
            self.kernel.write(self.t(target), self.t(value), written, cut)
            self.kernel.state.copy(written, self.t(target))
            self.kernel.state.forget(written)
        except Unknown as exc:
            self.kernel.state.unknown(str(exc), ins, [self.t(target)], "__setitem__")


# --------------------------------------------------------------------------- entry point

_NDIM = re.compile(r"([123])d$")


def _module_ndim(model) -> int | None:
    """Spatial dims the model's own layers declare: torch.nn classes named ...1d/2d/3d,
    convolutions first (Conv2d, ConvTranspose1d), then pooling and norms (MaxPool3d,
    BatchNorm2d), whose 1-d kinds also serve flattened heads."""
    declared = [(("conv" not in type(m).__name__.lower()), int(match[1]))
                for m in model.modules() if type(m).__module__.startswith("torch.nn")
                for match in [_NDIM.search(type(m).__name__.lower())] if match]
    return min(declared, key=lambda d: d[0])[1] if declared else None


def channel_candidates(model) -> list[int]:
    """Input channel counts to try, most likely first: the in_channels of the first
    convolution, then of the others, then 3 and 1."""
    found = [int(m.in_channels) for m in model.modules()
             if isinstance(getattr(m, "in_channels", None), int) and m.in_channels > 0
             and type(m).__module__.startswith("torch.nn")]
    return list(dict.fromkeys(found + [3, 1]))


def input_channels(model) -> int | None:
    """The in_channels of the first convolution in registration order."""
    found = channel_candidates(model)
    return found[0] if found else None


def _readings(model, size: tuple[int, ...], channels: int | None) -> list[tuple[tuple, list]]:
    """Ways to read ``size``: (spatial size, channel counts to try), likeliest first.

    ``size`` is spatial, or (C, *spatial) as torch shapes go. The model's layers
    tell which (a Conv2d takes 2 spatial dims); a model that declares nothing is
    tried both ways. Channels 0: the input has no channel dim (a waveform model
    taking (batch, time)), tried last of all.
    """
    if channels is not None:
        return [(size, [channels])]
    return _with_channels(model, size) + [(size, [0])]


def _with_channels(model, size: tuple[int, ...]) -> list[tuple[tuple, list]]:
    candidates = channel_candidates(model)
    ndim = _module_ndim(model)
    as_given = (size, candidates)
    with_channels = (size[1:], [size[0]])
    if ndim is not None:
        if len(size) not in (ndim, ndim + 1):
            raise TargetError(f"a {ndim}-D model needs {ndim} sizes (or channels and "
                              f"{ndim} sizes), got {list(size)}: give input_size="
                              f"({', '.join(['224'] * ndim)})")
        return [with_channels] if ndim == len(size) - 1 else [as_given]
    if len(size) < 2:
        return [as_given]
    return [with_channels] if len(size) == 4 else [as_given, with_channels]


def held_network(torch, model):
    """The network a user's object holds: an ultralytics ``YOLO(...)`` is an nn.Module
    whose forward predicts from files and whose ``train`` starts training; its
    ``.model`` is the network."""
    inner = getattr(model, "model", None)
    if isinstance(inner, torch.nn.Module) and any(
            c.__module__ == "ultralytics.engine.model" for c in type(model).__mro__):
        return inner
    if not isinstance(model, torch.nn.Module):
        hint = f"; its .model is one: pass {type(model).__name__}(...).model" \
            if isinstance(inner, torch.nn.Module) else ""
        raise TargetError(f"expected a torch.nn.Module, got {type(model).__name__}{hint}")
    return model


def graph_from_module(model, input_size=None, channels: int | None = None,
                      strict: bool = False, prefix: str = "", size_note: str | None = None,
                      **_ignored) -> Graph:
    """Capture ``model`` at ``input_size`` into a Graph.

    ``input_size`` is the spatial size, or (C, *spatial) as torch shapes go; the
    channel count is read from the first convolution unless ``channels`` is given.
    ``prefix`` is put before module names (a detection model's ``backbone``);
    ``size_note`` says where a default input size came from.
    """
    torch = require("torch", "torch")
    model = held_network(torch, model)
    if input_size is None:
        raise TargetError("a model needs an input size: give input_size=(224, 224)")
    if isinstance(input_size, int):
        input_size = (input_size,)
    size = tuple(int(v) for v in input_size)
    first_error = None
    for spatial, candidates in _readings(model, size, channels):
        if not 1 <= len(spatial) <= 3 or min(spatial) < 1:
            raise TargetError(f"input size must be 1 to 3 positive numbers, got {list(spatial)}")
        for ch in candidates:  # capture on meta is cheap: try the likely channel counts
            try:
                return _capture(torch, model, (1, ch, *spatial), strict, prefix, size_note)
            except TargetError as exc:
                first_error = first_error or exc
    assert first_error is not None
    raise first_error


def capture_mode(torch, cap: Capture) -> type:
    """The TorchFunctionMode that records every call into ``cap``."""
    from torch.overrides import TorchFunctionMode

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = _meta_shortcut(torch, func, args, kwargs)
            if out is None:
                out = func(*args, **kwargs)
            cap.handle(func, args, kwargs, out)
            return out
    return Mode


def _capture(torch, model, shape, strict, prefix: str = "",
             size_note: str | None = None) -> Graph:
    cap = Capture(torch, shape, strict)
    Mode = capture_mode(torch, cap)

    names: dict = {}  # module -> every path it is held at (shared instances have several)
    for n, m in model.named_modules(remove_duplicate=False):
        names.setdefault(m, []).append(".".join(p for p in (prefix, n) if p))
    cap.leaves = {p for m, paths in names.items() if not any(True for _ in m.children())
                  for p in paths}
    cap.kinds = {p: type(m).__name__ for m, paths in names.items() for p in paths}
    hooks = _hook_modules(torch, model, names, cap, prefix)
    # eval mode, set on each module's flag: a subclass's train() or eval() may do
    # anything (ultralytics' train() trains); each module's own mode is restored after,
    # and every module's attributes, parameters and buffers as they were: a forward may
    # cache what it made (ultralytics' Detect keeps its anchor grid, here on meta
    # tensors), and the swap of parameters to meta copies leaves plain tensors in modules
    # held at several paths (CoaT's shared position encodings)
    kept = {m: (dict(vars(m)), dict(m._parameters), dict(m._buffers))
            for m in model.modules()}
    for m in kept:
        m.training = False
    try:
        captured_on = _run(torch, model, shape, cap, Mode)
    except RfieldError:
        raise
    except Exception as exc:  # the user's model failed: say where, no traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        more = re.search(r"missing (\d+) required positional argument", first)
        hint = (f"The model takes {int(more[1]) + 1} images: give inputs={int(more[1]) + 1} "
                "to pass the one image to each. ") if more and not cap.module_stack else ""
        raise TargetError(
            f"the model could not be run on an input of shape {list(input_tensor_shape(shape))}: "
            f"{type(exc).__name__}: {first} (in {cap._where()}). {hint}If the model needs "
            "another input size, give input_size=; if it cannot be captured, "
            "'rfield verify' measures the field by back-propagation") from None
    finally:
        for h in hooks:
            h.remove()
        for m, (attrs, params, buffers) in kept.items():
            vars(m).clear()
            vars(m).update(attrs)
            for slots, saved in ((m._parameters, params), (m._buffers, buffers)):
                slots.clear()  # as they were, whatever the swap to meta left there
                slots.update(saved)
    if not cap.kernel.state.graph.nodes:
        raise TargetError("the model did no operation rfield could see on its input")
    return cap.kernel.state.finish(
        source="torch", input_channels=shape[1], aliases=cap.module_outputs,
        alias_layouts=cap.module_layouts, captured_on=captured_on, size_note=size_note,
        outputs=cap.outputs,
        module_types={p: cap.kinds[p.split("[")[0]] for p in cap.module_outputs
                      if p.split("[")[0] in cap.kinds})


def call_site(paths: list[str], stack: list[str]) -> str:
    """The path of a module called now: for an instance held at several paths (one
    activation shared by every block), the one under the caller."""
    if len(paths) > 1 and stack:
        inside = [p for p in paths if p.rsplit(".", 1)[0] == stack[-1]]
        if inside:
            return inside[0]
    return paths[0]


def _hook_modules(torch, model, names, cap: Capture, prefix: str) -> list:
    """Forward hooks that keep the module stack and name each module's output."""

    def pre(mod, inp):
        cap.module_stack.append(call_site(names.get(mod) or [type(mod).__name__],
                                          cap.module_stack))
        whole = type(mod).__name__ in MODULE_HANDLERS and inp and cap.tracked(inp[0]) \
            and not cap.inside_whole
        cap.whole.append(inp[0] if whole else None)
        cap.inside_whole = cap.inside_whole or bool(whole)

    def post(mod, _inp, out):
        x = cap.whole.pop() if cap.whole else None
        if x is not None:  # the calls inside were not followed: the handler, or unknown
            cap.inside_whole = False
            outs = [o for o in flat(out) if isinstance(o, torch.Tensor)]
            try:
                if not isinstance(out, torch.Tensor):
                    raise Unknown(type(mod).__name__)
                MODULE_HANDLERS[type(mod).__name__](cap, mod, x, out)
            except (Unknown, AttributeError, TypeError, ValueError):
                cap.kernel.state.unknown(type(mod).__name__, [cap.t(x)], [cap.t(o) for o in outs])
        path = cap.module_stack.pop() if cap.module_stack else None
        if path:
            cap.name_output(path, out)

    hooks = []
    for m in model.modules():
        if m is model and not prefix:
            continue
        hooks.append(m.register_forward_pre_hook(pre))
        hooks.append(m.register_forward_hook(post))
    return hooks


# Elementwise ops whose output has their first input's shape. On meta tensors PyTorch
# computes their shapes in Python (reference decompositions): slower than a real CPU
# forward for small models. The capture needs only the shape, so it makes it directly.
_SAME_SHAPE = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "gelu",
    "silu", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardsigmoid", "mish",
    "elu", "selu", "batch_norm", "layer_norm", "group_norm", "instance_norm", "dropout",
    "clamp", "clamp_",
}
#: norms and the argument whose size must match the input's channels (torch checks it
#: when it runs; the shortcut above must too, or a model torch cannot run is answered)
_NORM_CHANNELS = {"batch_norm": (1, "running_mean"), "instance_norm": (3, "weight"),
                  "group_norm": (2, "weight")}


def _check_norm(torch, name: str, x, args, kwargs) -> None:
    if name == "layer_norm":
        shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
        shape = (shape,) if isinstance(shape, int) else tuple(shape or ())
        if shape and tuple(x.shape[-len(shape):]) != shape:
            raise RuntimeError(f"layer_norm over {list(shape)} of an input shaped "
                               f"{list(x.shape)}")
        return
    if name not in _NORM_CHANNELS or x.dim() < 2:
        return
    pos, key = _NORM_CHANNELS[name]
    stats = args[pos] if len(args) > pos else kwargs.get(key)
    if name == "batch_norm" and stats is None:  # no running statistics: the weight
        stats = args[3] if len(args) > 3 else kwargs.get("weight")
    if isinstance(stats, torch.Tensor) and stats.dim() == 1 and stats.shape[0] != x.shape[1]:
        raise RuntimeError(f"{name} of {stats.shape[0]} channels on an input of "
                           f"{x.shape[1]} channels")


_BROADCAST = {"add", "__add__", "__radd__", "sub", "__sub__", "__rsub__", "mul", "__mul__",
              "__rmul__", "div", "__truediv__", "__rtruediv__"}
_IN_PLACE = {"add_", "__iadd__", "sub_", "__isub__", "mul_", "__imul__", "div_",
             "__itruediv__"}


def _meta_shortcut(torch, func, args, kwargs):
    """The result of an elementwise op on meta tensors, by shape alone (else None)."""
    name = getattr(func, "__name__", "")
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, torch.Tensor) or x.device.type != "meta":
        return None
    if name in ("contiguous", "clone"):  # a fresh dense tensor, whatever x's strides
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if name in _SAME_SHAPE:
        _check_norm(torch, name, x, args, kwargs)
        inplace = name.endswith("_") or kwargs.get("inplace") or (
            name in ("relu", "hardtanh", "leaky_relu", "silu", "hardswish", "elu", "selu",
                     "relu6", "dropout") and len(args) > 1 and args[-1] is True)
        return x if inplace else torch.empty_like(x)
    if name in _BROADCAST or name in _IN_PLACE:
        others = [a for a in args[1:2] if isinstance(a, torch.Tensor)]
        if any(o.device.type != "meta" or o.dtype != x.dtype for o in others) or \
                (len(args) > 1 and not isinstance(args[1], (torch.Tensor, int, float))):
            return None
        if name in _IN_PLACE:
            return x
        shape = torch.broadcast_shapes(x.shape, *(o.shape for o in others))
        return torch.empty(shape, dtype=x.dtype, device="meta")
    return None


def _named_outputs(cap: Capture, result, name: str = "output") -> dict[str, str]:
    """The nodes of what the model returns, named output, output.0, output.logits..."""
    if isinstance(result, dict) or hasattr(result, "items") and callable(result.items):
        pairs = [(f"{name}.{k}", v) for k, v in result.items()]
    elif isinstance(result, (list, tuple)):
        pairs = [(f"{name}.{i}", v) for i, v in enumerate(result)]
    else:
        if not cap.tracked(result):
            return {}
        return {name + suffix: node for suffix, node, _ in cap.kernel.state.pieces(cap.t(result))}
    out: dict[str, str] = {}
    for key, value in pairs:
        out.update(_named_outputs(cap, value, key))
    return out


def _run(torch, model, shape, cap: Capture, Mode) -> str:
    """Run forward on meta tensors; if the model cannot, on zeros on the CPU. Returns
    where it ran."""
    from torch.func import functional_call

    def go(device: str) -> None:
        cap.reset()
        x = torch.zeros(input_tensor_shape(shape), device=device)
        cap.bind(x, INPUT, (None,) * (x.dim() - len(shape) + 2) + tuple(range(len(shape) - 2)))
        with torch.no_grad():
            if device == "meta":
                state: dict[str, Any] = {k: v.to("meta") for k, v in
                                         list(model.named_parameters())
                                         + list(model.named_buffers())}
                with Mode():
                    result = functional_call(model, state, (x,), strict=False)
            else:
                with Mode():
                    result = model(x)
        cap.outputs = _named_outputs(cap, result)

    on_meta = all(p.device.type == "meta" for p in model.parameters()) and \
        any(True for _ in model.parameters())
    try:
        go("meta")
        return "meta"
    except (RfieldError, RecursionError):
        raise
    except Exception:
        if on_meta:
            raise
        go("cpu")
        return "cpu"
