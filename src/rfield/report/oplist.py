"""The operators each front-end knows, listed from the tables themselves, so that
``--help``, ``rfield ops`` and the README cannot drift from the code."""

from __future__ import annotations

import textwrap

FRONTENDS = ("spec", "torch", "onnx", "keras", "jax")  # `rfield ops NAME` picks by these prefixes


def _spec() -> list[str]:
    from ..spec.registry import OPS

    return [f"{n}({', '.join(OPS[n][1])})" if OPS[n][1] else n for n in sorted(OPS)]


def supported() -> dict[str, list[str]]:
    """Front-end -> the operator names its table handles (ONNX: with the opsets where
    a handler changes)."""
    from ..frontends.jax_graph import CALLS as JAX_CALLS
    from ..frontends.jax_ops import HANDLERS as JAX
    from ..frontends.keras_layers import LAYERS as KERAS
    from ..frontends.keras_layers import OPS as KERAS_OPS
    from ..frontends.onnx_fold import FOLD
    from ..frontends.onnx_graph import HANDLERS as ONNX
    from ..frontends.torch_ops import HANDLERS as TORCH
    from ..frontends.torch_ops import MODULE_HANDLERS

    onnx = [name + ("" if len(versions) == 1 else
                    " (opset " + ", ".join(str(v) for v in sorted(versions)) + ")")
            for name, versions in sorted(ONNX.items())]
    return {"spec": _spec(), "torch": sorted(TORCH),
            "torch modules read whole": sorted(MODULE_HANDLERS), "onnx": onnx,
            "onnx shape arithmetic, folded to constants": sorted(FOLD),
            "keras layers": sorted(KERAS),
            "keras ops in a functional graph": sorted(KERAS_OPS),
            "jax primitives": sorted(JAX),
            "jax calls, read through": sorted(JAX_CALLS)}


def ops_text(frontends: list[str] | None = None, width: int = 78) -> str:
    """One wrapped paragraph per front-end."""
    out = []
    for name, ops in supported().items():
        if frontends and name.split()[0] not in frontends:
            continue
        out.append(f"{name} ({len(ops)}):")
        out.append(textwrap.fill(", ".join(ops), width, initial_indent="  ",
                                 subsequent_indent="  "))
    return "\n".join(out) + "\n"


def spec_help() -> str:
    """The spec ops for ``--help``."""
    return ("ops in specs (parameters):\n"
            + textwrap.fill(", ".join(_spec()), 78, initial_indent="  ",
                            subsequent_indent="  ")
            + "\n  aliases: k=kernel s=stride p=padding d=dilation; padding may be a number,"
            "\n  per axis, [[before, after], ...], 'same', 'valid' or 'causal'."
            "\n  'rfield ops' lists what the PyTorch, ONNX, Keras and JAX front-ends read.")
