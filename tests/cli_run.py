"""The command run in the test process: (exit code, stdout, stderr)."""

from __future__ import annotations

from rfield.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
