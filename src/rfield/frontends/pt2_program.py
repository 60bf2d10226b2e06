"""A ``torch.export.save`` archive (``.pt2``) read as data: the program's graph is the
JSON file ``<name>/models/model.json`` inside the zip. Nothing in the archive is
unpickled or executed (its weights and sample inputs are never opened: rfield needs
only the shapes the graph records), and every size is capped, as for ONNX files.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import Any

from ..errors import TargetError
from ..safeio import check_regular

#: the archive, and the graph's JSON inside it (resnet50's is 0.4 MB; a large
#: transformer's a few tens of MB)
MAX_ARCHIVE = 8 << 30
MAX_GRAPH_JSON = 512 << 20
MAX_MEMBERS = 200_000
MAX_DIM = 1 << 40


@dataclass(frozen=True)
class Node:
    """One operator call: ``target`` (``torch.ops.aten.conv2d.default``), its
    arguments as the JSON records them (name, arg), its outputs' encodings, and the
    module paths it was called inside (outermost first)."""

    name: str
    target: str
    inputs: list[tuple[str, dict, int]]
    outputs: list[dict]
    modules: list[tuple[str, str]]  # (path, class)


@dataclass(frozen=True)
class Program:
    """What rfield reads of an exported program: its operator calls in order, every
    tensor's recorded shape, the user inputs and outputs, and the parameters,
    buffers and constants the graph lifts to inputs (path -> graph name)."""

    path: str
    nodes: list[Node]
    shapes: dict[str, tuple[int, ...]]
    user_inputs: list[str]
    outputs: list[dict]
    lifted: dict[str, str]


def _bad(path: str, what: str) -> TargetError:
    return TargetError(f"{path}: not a torch.export archive ({what})")


def read_program(path: str) -> Program:
    check_regular(path, "torch.export archive", MAX_ARCHIVE)
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
            if len(members) > MAX_MEMBERS:
                raise _bad(path, f"{len(members)} members, more than {MAX_MEMBERS}")
            found = [m for m in members if m.filename.endswith("models/model.json")
                     and m.filename.count("/") == 2]
            if not found:
                raise _bad(path, "no <name>/models/model.json in the zip: rfield reads "
                           "archives written by torch.export.save")
            info = found[0]
            if info.file_size > MAX_GRAPH_JSON:
                raise _bad(path, f"its graph is {info.file_size} bytes, more than "
                           f"{MAX_GRAPH_JSON}")
            with z.open(info) as f:
                raw = f.read(MAX_GRAPH_JSON + 1)
    except zipfile.BadZipFile as exc:
        raise _bad(path, f"not a zip file: {exc}") from None
    except (OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    if len(raw) > MAX_GRAPH_JSON:
        raise _bad(path, "its graph is larger than it says")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _bad(path, f"its graph is not JSON: {type(exc).__name__}") from None
    try:
        return _program(path, doc)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise _bad(path, f"its graph lacks what torch.export writes "
                   f"({type(exc).__name__}: {str(exc)[:80]})") from None


def _program(path: str, doc: Any) -> Program:
    gm = doc["graph_module"]
    graph, signature = gm["graph"], gm["signature"]
    shapes = {}
    for name, meta in graph["tensor_values"].items():
        dims = []
        for d in meta["sizes"]:
            if "as_int" not in d:  # a symbolic size: the export's hint, if it has one
                hint = d.get("as_expr", {}).get("hint", {})
                if not isinstance(hint, dict) or not isinstance(hint.get("as_int"), int):
                    raise TargetError(f"{path}: tensor {name!r} has a dynamic size with "
                                      "no recorded value; rfield reads static shapes")
                dims.append(int(hint["as_int"]))
            else:
                dims.append(int(d["as_int"]))
        if any(d < 0 or d > MAX_DIM for d in dims):
            raise TargetError(f"{path}: tensor {name!r} has shape {dims}, not a shape")
        shapes[str(name)] = tuple(dims)
    lifted, user_inputs = {}, []
    for spec in signature["input_specs"]:
        (kind, body), = spec.items()
        if kind == "user_input":
            arg = body["arg"]
            if "as_tensor" in arg:
                user_inputs.append(str(arg["as_tensor"]["name"]))
        elif kind in ("parameter", "buffer", "tensor_constant"):
            lifted[str(body["arg"]["name"])] = str(body.get(f"{kind}_name")
                                                   or body.get("tensor_constant_name"))
    nodes = [Node(str(n.get("name", "")), str(n["target"]),
                  [(str(i["name"]), i["arg"], int(i.get("kind", 1))) for i in n["inputs"]],
                  list(n["outputs"]), _modules(n.get("metadata", {}) or {}))
             for n in graph["nodes"]]
    return Program(path, nodes, shapes, user_inputs, list(graph["outputs"]), lifted)


def _modules(meta: dict) -> list[tuple[str, str]]:
    """The module paths a node ran inside, from its ``nn_module_stack`` metadata
    (``key,path,class;...``; the root module's path is empty and left out)."""
    stack = meta.get("nn_module_stack")
    if not isinstance(stack, str):
        return []
    out = []
    for entry in stack.split(";"):
        parts = entry.split(",")
        if len(parts) >= 3 and parts[1]:
            out.append((parts[1], parts[-1].rsplit(".", 1)[-1]))
    return out
