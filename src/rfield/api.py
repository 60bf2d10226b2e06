"""``rfield.analyze``: one entry point for every kind of target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core.analysis import Analysis
from .errors import RfieldError
from .targets import load_graph

__all__ = ["analyze", "load_graph", "set_op_handle"]


def analyze(target: Any, input_size=None, **options: Any) -> Analysis:
    """Receptive fields of every layer of ``target`` at ``input_size``.

    ``target`` is a layer list, a spec dict, a JSON/YAML path, a compact
    string such as ``"conv(3,p=1)*2; maxpool(2)"``, a :class:`Graph`, a
    ``torch.nn.Module``, a model name (``torchvision:resnet18``, ``timm:NAME``,
    ``file.py:factory``) or a ``.onnx`` path. Options: ``channels``, ``strict``,
    ``kwargs`` (for a model factory).
    """
    return Analysis(load_graph(target, input_size, **options))


def set_op_handle(framework: str, name: str, handler: Callable, module: bool = False) -> None:
    """Read operator ``name`` of ``framework`` (torch, onnx, keras, jax) with
    ``handler``, without editing rfield (fvcore's ``set_op_handle`` habit); with
    ``module`` (torch), a module class read whole instead of the calls inside it.
    The handler takes what that front-end's table passes and calls the kernel (see
    docs/architecture.md, "Adding an operator"); it replaces a built-in one of the
    same name, and ``rfield ops`` lists it."""
    from .frameworks import BY_NAME

    fw = BY_NAME.get(framework)
    if fw is None or fw.add_op is None:
        takes = ", ".join(f.name for f in BY_NAME.values() if f.add_op is not None)
        raise RfieldError(f"no operator table for {framework!r}; choose from {takes}")
    if module and fw.name != "torch":
        raise RfieldError("module=True reads a torch module class whole; other "
                          "front-ends name their layers or operators")
    fw.add_op(name, handler, module)
