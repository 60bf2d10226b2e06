"""The shape of the code, counted with ast: small classes and functions, no operator
dispatch by name lookup, a thin command module."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "rfield"
MAX_CLASS, MAX_FUNCTION, MAX_CLI = 300, 80, 260


def _nodes():
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            yield path.relative_to(SRC), node


def _length(node) -> int:
    return node.end_lineno - node.lineno + 1


def test_no_class_or_function_is_too_long():
    long = [f"{path}:{node.lineno} {node.name} ({_length(node)} lines)"
            for path, node in _nodes()
            if (isinstance(node, ast.ClassDef) and _length(node) > MAX_CLASS)
            or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and _length(node) > MAX_FUNCTION)]
    assert not long, long


def test_no_dispatch_by_getattr_on_a_built_name():
    """Operators are found in explicit tables, never as getattr(obj, "op_" + name)."""
    found = [f"{path}:{node.lineno}" for path, node in _nodes()
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id == "getattr" and len(node.args) >= 2
             and isinstance(node.args[1], (ast.BinOp, ast.JoinedStr))]
    assert not found, found


def test_the_command_module_is_thin():
    lines = (SRC / "cli.py").read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_CLI, lines
