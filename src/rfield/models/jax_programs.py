"""What a JAX target is: a Flax linen Module (with or without variables), a Flax NNX
Module, or any function of an image, made into one program ``fn(image, *extra)``
that the reader traces and the measurement runs.

Linen modules without variables get abstract ones (``jax.eval_shape`` of ``init``:
nothing is computed). NNX modules keep no name stack of their own, so each
submodule's call is wrapped in ``jax.named_scope`` while tracing: its nodes are
named by attribute path (``layer1/0/conv1``), as linen's are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import TargetError, require


def _has_class(obj: object, module: str, name: str = "Module") -> bool:
    return any(c.__module__.startswith(module) and c.__name__ == name
               for c in type(obj).__mro__)


def is_linen(obj: object) -> bool:
    return _has_class(obj, "flax.linen")


def is_nnx(obj: object) -> bool:
    return _has_class(obj, "flax.nnx")


def is_jax_target(obj: object) -> bool:
    """A Flax module, or a (linen module, variables) pair (checked by class: nothing
    is imported to ask)."""
    if isinstance(obj, tuple) and len(obj) == 2 and is_linen(obj[0]):
        return True
    return is_linen(obj) or is_nnx(obj)


def input_shape(input_size: Any, channels: int, layout: str) -> tuple[int, ...]:
    """The image's shape: batch 1, ``channels`` last (nhwc, Flax's) or first (nchw)."""
    size = (int(input_size),) if isinstance(input_size, int) else tuple(int(v) for v in input_size)
    if layout not in ("nhwc", "nchw"):
        raise TargetError(f"layout must be nhwc (channels last, Flax's) or nchw, not {layout!r}")
    return (1, *size, channels) if layout == "nhwc" else (1, channels, *size)


@dataclass(frozen=True)
class Program:
    """``fn(image, *extra)``; ``scopes`` is entered while it is traced."""

    fn: Callable[..., Any]
    extra: tuple
    label: str
    module: Any = None

    @contextlib.contextmanager
    def scopes(self) -> Iterator[None]:
        if self.module is None or not is_nnx(self.module):
            yield
            return
        with _nnx_scopes(self.module):
            yield


def program(target: Any, input_shape: tuple[int, ...], variables: Any = None) -> Program:
    """The program of a JAX target for an input of ``input_shape`` (batch first)."""
    jax = require("jax", "jax")
    if isinstance(target, tuple) and len(target) == 2 and is_linen(target[0]):
        target, variables = target
    if is_linen(target):
        label = type(target).__name__
        if variables is None:
            spec = jax.ShapeDtypeStruct(input_shape, "float32")
            try:
                variables = jax.eval_shape(target.init, jax.random.key(0), spec)
            except Exception as exc:  # the user's program failing, said in one line
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise TargetError(f"{label}: Flax cannot initialise it on an input of shape "
                                  f"{list(input_shape)}: {text}") from None
        module = target
        return Program(lambda x, v: module.apply(v, x), (variables,), label, target)
    if is_nnx(target):
        module = target
        return Program(lambda x: module(x), (), type(target).__name__, target)
    if callable(target):
        return Program(lambda x: target(x), (), getattr(target, "__name__", "function"))
    raise TargetError(f"{type(target).__name__} is not a Flax module or a function of an image")


@contextlib.contextmanager
def _nnx_scopes(root: Any) -> Iterator[None]:
    """Each NNX submodule's ``__call__`` runs in a named scope of its attribute name
    (the root: its class name), so nested scopes spell the module path."""
    from flax import nnx

    jax = require("jax", "jax")
    names: dict[int, str] = {}
    owners: dict[type, Callable[..., Any]] = {}  # the classes that define a __call__
    for path, node in nnx.iter_graph(root):
        if isinstance(node, nnx.Module):
            names.setdefault(id(node), str(path[-1]) if path else type(node).__name__)
            for cls in type(node).__mro__:
                if "__call__" in vars(cls) and cls is not object:
                    owners.setdefault(cls, vars(cls)["__call__"])
    inside: set[int] = set()  # a subclass's call reaching its base's: one scope

    def wrap(call: Callable[..., Any]) -> Callable[..., Any]:
        def scoped(self: Any, *args: Any, **kwargs: Any) -> Any:
            name = names.get(id(self))
            if name is None or id(self) in inside:
                return call(self, *args, **kwargs)
            inside.add(id(self))
            try:
                with jax.named_scope(name):
                    return call(self, *args, **kwargs)
            finally:
                inside.discard(id(self))
        return scoped

    try:
        for cls, call in owners.items():
            cls.__call__ = wrap(call)  # type: ignore[method-assign]
        yield
    finally:
        for cls, call in owners.items():
            cls.__call__ = call  # type: ignore[method-assign]
