"""The operators each front-end knows, listed from the tables themselves, so that
``--help``, ``rfield ops`` and the README cannot drift from the code."""

from __future__ import annotations

import textwrap


def frontends() -> tuple[str, ...]:
    """The names ``rfield ops NAME`` picks by, in the registry's order."""
    from ..frameworks import REGISTRY

    return tuple(f.name for f in REGISTRY)


def _spec() -> list[str]:
    from ..frameworks.spec import op_tables

    return op_tables()["spec"]


def supported() -> dict[str, list[str]]:
    """Front-end -> the operator names its table handles (ONNX: with the opsets where
    a handler changes), from each framework's record."""
    from ..frameworks import REGISTRY

    return {name: ops for f in REGISTRY for name, ops in f.op_tables().items()}


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
