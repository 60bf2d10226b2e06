"""What a target is, decided in one place for every command and for ``rfield.analyze``,
from the frameworks' records (:mod:`rfield.frameworks`).

A target is a layer spec (a file, a one-line string, a dict or a list, or
``example:NAME``), a model to build (``torchvision:NAME``, ``timm:NAME``,
``keras:NAME``, ``file.py:factory``, ``package.module:factory``), a model file
(``.onnx``, ``.keras``), or an object (a ``torch.nn.Module``, a ``keras.Model``, a
Flax module, a :class:`Graph`).
"""

from __future__ import annotations

import os
from typing import Any

from .core.graph import Graph
from .errors import RfieldError, TargetError
from .frameworks import BY_NAME, REGISTRY, Framework, Runner, Target, framework
from .frameworks.spec import looks_like_spec

__all__ = ["Target", "load_graph", "resolve", "resolve_as", "runner"]

#: the frameworks whose models a factory may return (a function of an image is JAX's)
BUILT = ("keras", "torch", "jax")


def resolve(target: Any) -> Target:
    """Which kind of target ``target`` is (nothing is loaded or built)."""
    if isinstance(target, Graph):
        return Target("graph", target, target.provenance.source or "spec")
    for fw in REGISTRY:
        if fw.owns_object(target):
            return Target("module" if fw.name == "torch" else fw.name, target, fw.name)
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str):
        return Target("spec", target, "spec")
    for fw in REGISTRY:
        if target.lower().endswith(fw.suffixes):
            return Target(fw.name, target, fw.name)
    if looks_like_spec(target):
        return Target("spec", target, "spec")
    prefix = target.partition(":")[0]
    for fw in REGISTRY:
        if prefix in fw.prefixes:
            return Target(prefix, target, fw.name)
    return Target("factory", target)


def resolve_as(target: Any, options: dict, built: bool = False) -> Target:
    """:func:`resolve`, and a JAX program where the user says so (``framework="jax"``)
    or where a factory (``built``) gave a function of an image."""
    t = resolve(target)
    if t.kind in ("graph", "factory"):
        return t
    if options.get("framework") == "jax" or (
            built and t.framework not in BUILT and callable(target)):
        return Target("jax", target, "jax")
    return t


def built(target: Any, options: dict) -> Target:
    """The resolved target, a factory called once and recognised by what it gave."""
    t = resolve_as(target, options)
    if t.kind != "factory":
        return t
    from .models.factory import call_factory

    made = call_factory(t.value, options.get("kwargs"))
    t = resolve_as(made, options, built=True)
    if t.framework not in BUILT:
        raise TargetError(f"{target} gave a {type(made).__name__}, not a "
                          "torch.nn.Module, a keras.Model, a Flax module or a function")
    return t


def load_graph(target: Any, input_size=None, **options: Any) -> Graph:
    """The graph of any target at ``input_size`` (default: the spec's own size, or a
    zoo model's native size)."""
    t = built(target, options)
    if t.kind == "graph":
        return t.value
    return _checked(framework(t.framework), options).read(t, input_size, options)


def _checked(fw: Framework, options: dict) -> Framework:
    """``fw``, once the options it cannot take are refused."""
    if options.get("inputs", 1) != 1 and not fw.several_images:
        raise RfieldError(f"inputs=N (one image passed to N inputs) is read for PyTorch "
                          f"models, not by the {fw.name} front-end; where an ONNX or Keras "
                          "model has several inputs, input_name=NAME picks the image")
    return fw


def runner(target: Any, input_size, options: dict, init: bool = False,
           command: str = "verify", device: str = "cpu") -> Runner:
    """The model of ``target`` as ``verify`` and ``erf`` run it (on ``device``), or
    why it cannot be."""
    t = built(target, options)
    fw = BY_NAME.get(t.framework)
    make = fw.runner if fw is not None else None
    if fw is None or make is None or (t.kind == "graph" and fw.name != "spec"):
        why = fw.cannot_run if fw is not None and fw.cannot_run else \
            "a Graph object holds no model to run (pass the model or its spec)"
        raise RfieldError(f"{command} runs a PyTorch, Keras or JAX model or a layer spec; "
                          + why)
    if device != "cpu" and not fw.chooses_device:
        raise RfieldError("--device applies to PyTorch models and specs; Keras and JAX "
                          "models are measured where their backend puts them")
    _checked(fw, options)
    return make(t, input_size, options, init)
