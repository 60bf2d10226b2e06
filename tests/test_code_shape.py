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


def _classes() -> dict[str, list[ast.ClassDef]]:
    found: dict[str, list[ast.ClassDef]] = {}
    for _, node in _nodes():
        if isinstance(node, ast.ClassDef):
            found.setdefault(node.name, []).append(node)
    return found


def _hierarchy_length(node: ast.ClassDef, classes: dict, seen: frozenset = frozenset()) -> int:
    """A class's lines and those of every project class it inherits from: what a
    reader holds in mind to know what ``self`` can do."""
    total = _length(node)
    for base in node.bases:
        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
        if name in classes and name not in seen:
            total += max(_hierarchy_length(b, classes, seen | {name}) for b in classes[name])
    return total


def test_no_class_hierarchy_is_too_long():
    """The kernel once was one 833-line class chained over four files; a chain of
    bases is measured whole, so it is composed of parts instead."""
    classes = _classes()
    long = [f"{name} ({_hierarchy_length(node, classes)} lines with its bases)"
            for name, nodes in classes.items() for node in nodes
            if _hierarchy_length(node, classes) > MAX_CLASS]
    assert not long, long


def test_the_hierarchy_measure_can_fail():
    tree = ast.parse("class A:\n" + "    x = 1\n" * 200 + "class B(A):\n" + "    y = 2\n" * 150)
    classes = {n.name: [n] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert _hierarchy_length(classes["B"][0], classes) > MAX_CLASS


def test_no_base_class_leaves_a_method_to_be_filled_in():
    """A method stub raising NotImplementedError is how a base calls down into a
    subclass it does not know; interfaces say so with abc.abstractmethod instead."""
    stubs = [f"{path}:{node.lineno} {node.name}" for path, node in _nodes()
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and any(isinstance(stmt, ast.Raise) and "NotImplementedError" in ast.unparse(stmt)
                     for stmt in node.body)]
    assert not stubs, stubs


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
