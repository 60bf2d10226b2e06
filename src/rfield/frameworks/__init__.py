"""The frameworks rfield reads, one record each (:class:`Framework`), in the order a
target is recognised. Every command asks these records; nothing else branches on
which framework a target is.

Objects are recognised by class, importing nothing: Keras first (on its torch
backend a keras.Model is an nn.Module too), then JAX, then torch. Names: a
framework's file suffix (``.onnx``, ``.keras``), then a layer spec (see
:func:`spec.looks_like_spec`), then a framework's prefix (``timm:``, ``keras:``);
any other ``a:b`` is a factory, built once and recognised by what it returns.
"""

from __future__ import annotations

from .jax_programs import JAX
from .keras_models import KERAS
from .onnx_files import ONNX
from .pt2_files import PT2
from .pytorch import TORCH
from .record import ErfAsk, Framework, Runner, Target
from .spec import SPEC
from .tflite_files import TFLITE
from .torchscript_files import TORCHSCRIPT

#: detection order; ``rfield ops`` lists the tables in this order too
REGISTRY: tuple[Framework, ...] = (KERAS, JAX, TORCH, ONNX, PT2, TORCHSCRIPT, TFLITE,
                                   SPEC)
BY_NAME = {f.name: f for f in REGISTRY}

__all__ = ["BY_NAME", "REGISTRY", "ErfAsk", "Framework", "Runner", "Target", "framework"]


def framework(name: str) -> Framework:
    """The record of a graph's source (``graph.provenance.source``) or a target's."""
    return BY_NAME[name]
