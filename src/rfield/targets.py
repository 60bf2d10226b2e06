"""What a target is, decided in one place for every command and for ``rfield.analyze``.

A target is a layer spec (a file, a one-line string, a dict or a list, or
``example:NAME``), a model to build (``torchvision:NAME``, ``timm:NAME``,
``file.py:factory``, ``package.module:factory``), an ONNX file, or an object
(a ``torch.nn.Module``, a :class:`Graph`). Zoo models know their native input
size (torchvision from its weights' transforms, timm from ``pretrained_cfg``);
for other models a missing size is reported before anything is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .core.graph import Graph
from .errors import TargetError, require
from .spec.parse import looks_like_spec_path


@dataclass(frozen=True)
class Target:
    """A resolved target. ``kind`` is graph, module, onnx, spec, torchvision, timm
    or factory; ``value`` is what the user gave."""

    kind: str
    value: Any

    @property
    def label(self) -> str:
        return self.value if isinstance(self.value, str) else type(self.value).__name__


def _is_keras_model(obj: object) -> bool:
    from .frontends.keras_graph import is_keras_model  # imports no Keras

    return is_keras_model(obj)


def _is_jax_target(obj: object) -> bool:
    from .frontends.jax_targets import is_jax_target  # imports no JAX

    return is_jax_target(obj)


def _is_torch_module(obj: object) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def resolve(target: Any) -> Target:
    """Which kind of target ``target`` is (nothing is loaded or built)."""
    if isinstance(target, Graph):
        return Target("graph", target)
    if _is_keras_model(target):  # before torch: on its torch backend it is a Module too
        return Target("keras", target)
    if _is_jax_target(target):
        return Target("jax", target)
    if _is_torch_module(target) or _is_torch_module(getattr(target, "model", None)):
        return Target("module", target)  # a holder of one is told what to pass
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str):
        return Target("spec", target)
    lower = target.lower()
    if lower.endswith(".onnx"):
        return Target("onnx", target)
    if lower.endswith(".keras"):
        return Target("keras", target)
    kind, sep, _ = target.partition(":")
    if not sep or target.startswith("example:") or looks_like_spec_path(target) \
            or "(" in kind or os.path.exists(target):
        return Target("spec", target)
    if kind in ("torchvision", "timm", "hf"):
        return Target(kind, target)
    if kind == "keras":
        return Target("keras", target)
    return Target("factory", target)


def resolve_as(target: Any, options: dict, built: bool = False) -> Target:
    """:func:`resolve`, and a JAX program where the user says so (``framework="jax"``)
    or where a factory (``built``) gave a function of an image."""
    t = resolve(target)
    if t.kind in ("graph", "factory"):
        return t
    if options.get("framework") == "jax" or (
            built and t.kind not in ("keras", "module", "jax") and callable(target)):
        return Target("jax", target)
    return t


def native_size(t: Target) -> tuple[tuple[int, ...] | None, str | None]:
    """A zoo model's native input size (spatial, or with channels first) and where it
    comes from; (None, None) where there is none."""
    name = t.value.partition(":")[2] if isinstance(t.value, str) else ""
    if t.kind in ("torchvision", "timm"):
        from .frontends.torch_targets import check_name

        check_name(t.kind, name)
    if t.kind == "torchvision":
        size = _torchvision_size(name)
        if size is None:  # a detector: the shorter side its transform resizes images to
            from .frontends.torch_targets import build_target

            side = getattr(getattr(build_target(t.value, None, meta=True), "transform",
                                   None), "min_size", None)
            if isinstance(side, (tuple, list)) and side:
                return (int(side[0]), int(side[0])), \
                    "the size the detector's transform resizes images to"
        return size, "the native size, from torchvision's weights transforms"
    if t.kind == "timm":
        timm = require("timm", "timm")
        try:
            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:
            cfg = None
        size = getattr(cfg, "input_size", None) if cfg is not None else None
        return (tuple(int(v) for v in size) if size else None), \
            "the native size, from timm's pretrained_cfg"
    if t.kind == "hf":
        from .frontends.torch_targets import hf_config

        size = getattr(hf_config(name, {}), "image_size", None)
        if isinstance(size, int):
            return (size, size), "the native size, from the config's image_size"
        if isinstance(size, (list, tuple)) and len(size) == 2:
            return tuple(int(v) for v in size), "the native size, from the config's image_size"
        return (224, 224), "ImageNet's usual size: the config names no image_size"
    return None, None


def _torchvision_size(name: str) -> tuple[int, ...] | None:
    tv = require("torchvision", "vision")
    try:
        weights = list(tv.models.get_model_weights(name))
    except Exception:
        return None
    for w in weights:
        keywords = getattr(w.transforms, "keywords", {})
        size = keywords.get("crop_size")
        if isinstance(size, int):
            return (size, size)
    return None


def load_graph(target: Any, input_size=None, **options: Any) -> Graph:
    """The graph of any target at ``input_size`` (default: the spec's own size, or a
    zoo model's native size)."""
    t = resolve_as(target, options)
    if t.kind == "graph":
        return t.value
    if t.kind == "spec":
        from .spec.parse import load_spec

        return load_spec(t.value, input_size)
    if t.kind == "onnx":
        from .frontends.onnx_graph import graph_from_onnx

        return graph_from_onnx(t.value, input_size, **options)
    if t.kind == "factory":  # built once; what it returns says which front-end reads it
        from .frontends.factory import call_factory

        built = call_factory(t.value, options.get("kwargs"))
        t = resolve_as(built, options, built=True)
        if t.kind not in ("keras", "module", "jax"):
            raise TargetError(f"{target} gave a {type(built).__name__}, not a "
                              "torch.nn.Module, a keras.Model, a Flax module or a function")
    if t.kind == "keras":
        return _keras_graph(t, input_size, options)
    if t.kind == "jax":
        return _jax_graph(t, input_size, options)
    size_note = None
    if input_size is None:
        input_size, size_note = native_size(t)
        if input_size is None:
            raise TargetError(f"{t.label}: a model needs an input size: give "
                              "input_size=(224, 224)")
    from .frontends.torch_capture import graph_from_module

    model, prefix = build_module(t, options.get("kwargs"), meta=True)
    return graph_from_module(model, input_size, prefix=prefix, size_note=size_note,
                             **{k: v for k, v in options.items() if k != "kwargs"})


def _keras_graph(t: Target, input_size, options: dict) -> Graph:
    from .frontends.keras_graph import graph_from_keras
    from .frontends.keras_targets import keras_model, native_size

    model = keras_model(t.value, options.get("kwargs"), input_size)
    size_note = None
    if input_size is None and isinstance(t.value, str) and t.value.startswith("keras:"):
        input_size, size_note = native_size(model)
    return graph_from_keras(model, input_size, strict=bool(options.get("strict")),
                            size_note=size_note, input_name=options.get("input_name"))


def _jax_graph(t: Target, input_size, options: dict) -> Graph:
    from .frontends.jax_graph import graph_from_jax
    from .frontends.jax_targets import input_shape, program

    if input_size is None:
        raise TargetError(f"{t.label}: a JAX program needs an input size: give "
                          "input_size=(224, 224)")
    layout = options.get("layout") or "nhwc"
    channels = int(options.get("channels") or 3)
    prog = program(t.value, input_shape(input_size, channels, layout), options.get("variables"))
    with prog.scopes():
        return graph_from_jax(prog.fn, input_size, prog.extra, channels, layout,
                              strict=bool(options.get("strict")))


def build_module(t: Target, kwargs: dict | None = None, meta: bool = False,
                 init: bool = False):
    """The torch module of a model target, and the prefix of its module names (a
    detection model is read through its ``backbone``); ``init`` keeps the random
    initialisation (see build_torchvision)."""
    from .frontends.torch_capture import held_network
    from .frontends.torch_targets import build_target, detection_backbone

    torch = require("torch", "torch")
    # an object and a name take one path: a detector (SSD300, Faster R-CNN) is read
    # through its backbone, never through its transform's untracked batch
    if t.kind == "module":
        return detection_backbone(held_network(torch, t.value))
    return detection_backbone(held_network(torch, build_target(t.value, kwargs, meta, init)))
