"""``rfield.analyze``: one entry point for every kind of target."""

from __future__ import annotations

from typing import Any

from .core.analysis import Analysis
from .targets import load_graph

__all__ = ["analyze", "load_graph"]


def analyze(target: Any, input_size=None, **options: Any) -> Analysis:
    """Receptive fields of every layer of ``target`` at ``input_size``.

    ``target`` is a layer list, a spec dict, a JSON/YAML path, a compact
    string such as ``"conv(3,p=1)*2; maxpool(2)"``, a :class:`Graph`, a
    ``torch.nn.Module``, a model name (``torchvision:resnet18``, ``timm:NAME``,
    ``file.py:factory``) or a ``.onnx`` path. Options: ``channels``, ``strict``,
    ``kwargs`` (for a model factory).
    """
    return Analysis(load_graph(target, input_size, **options))
