"""The command run in the test process: (exit code, stdout, stderr); and golden
outputs kept exactly (``RFIELD_UPDATE_GOLDEN=1`` rewrites them; a missing one fails)."""

from __future__ import annotations

import os
from pathlib import Path

from rfield.cli import main

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RFIELD_UPDATE_GOLDEN") == "1"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_golden(name: str, out: str) -> None:
    """``out`` is exactly tests/golden/``name``."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text(out)
    assert path.exists(), f"{path} is missing: RFIELD_UPDATE_GOLDEN=1 writes it"
    assert out == path.read_text()
