"""A TorchScript archive (``torch.jit.save`` of a traced or scripted module) read into a
:class:`Graph`. torch loads it (its own unpickler builds tensors and TorchScript
objects only, nothing of Python's; no method of the module is run); rfield then walks
its methods' graphs itself, making each aten call again on meta tensors under the torch
capture and its table, so it reads as the module it came from. A call of a
submodule's ``forward`` enters that module's path (``layer1.0``): nodes take the
module names the torch front-end gives. An ``If`` whose condition is known from
shapes takes its branch; a ``Loop``, or a condition computed from the input, is
refused in one line, as are calls of Python functions compiled into the archive.
"""

from __future__ import annotations

import warnings
import zipfile
from typing import Any

from ..core.graph import INPUT, Graph
from ..errors import RfieldError, TargetError, require
from ..safeio import check_regular
from .torch_capture import Capture, capture_mode

MAX_ARCHIVE = 8 << 30
#: block nesting (If inside If) and submodule calls deeper than this are refused
MAX_DEPTH = 200


def graph_from_torchscript(path: str, input_size=None, strict: bool = False,
                           size_note: str | None = None, channels: int | None = None,
                           **_options: Any) -> Graph:
    torch = require("torch", "torch")
    path = str(path)
    check_regular(path, "TorchScript archive", MAX_ARCHIVE)
    _check_archive(path)
    if not input_size:
        raise TargetError(f"{path}: a TorchScript archive records no input size: give "
                          "one, e.g. --input 224,224")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(path, map_location="cpu")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise TargetError(f"{path}: torch could not load it as TorchScript: "
                          f"{type(exc).__name__}: {first}") from None
    size = tuple(int(v) for v in input_size)
    last: Exception | None = None
    for ch in ([channels] if channels else _channels(module)):
        shape = (1, ch, *size)
        cap = Capture(torch, shape, strict)
        try:
            out = Walker(torch, cap, path).run(module, shape)
        except (RfieldError, RecursionError):
            raise
        except _Refused as exc:
            raise TargetError(f"{path}: {exc}") from None
        except Exception as exc:
            last = last or exc  # the first channel count's reason, the likeliest
            continue
        return cap.kernel.state.finish(
            source="torchscript", input_channels=ch, aliases=cap.module_outputs,
            alias_layouts=cap.module_layouts, captured_on="meta", size_note=size_note,
            outputs=out, module_types={p: cap.kinds.get(p, "?") for p in cap.module_outputs})
    first = str(last).strip().splitlines()[0][:200] if last and str(last).strip() else ""
    raise TargetError(f"{path}: the module could not be read at input {list(size)}: "
                      f"{type(last).__name__}: {first}; give --channels or another --input")


def _check_archive(path: str) -> None:
    """A zip holding TorchScript code and data, before torch parses anything."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
        raise TargetError(f"{path}: not a TorchScript archive (not a zip: {exc})") from None
    if not any(n.endswith("/data.pkl") for n in names) or \
            not any("/code/" in n for n in names):
        raise TargetError(f"{path}: not a TorchScript archive (no code/ and data.pkl; "
                          "torch.save's pickles are not read)")


def _channels(module) -> list[int]:
    """Channel counts to try: the first 4-, 3- or 5-dim weight's input channels, then
    3 and 1; the run itself refuses a wrong one (a shape error), never a guess kept."""
    out = []
    for _, p in module.named_parameters():
        if p.dim() in (3, 4, 5):
            out.append(int(p.shape[1]))
            break
    return list(dict.fromkeys(out + [3, 1]))


class _Refused(Exception):
    """What rfield does not follow in a TorchScript graph (said in one line)."""


class Walker:
    """Runs a module's TorchScript graphs on meta tensors, node by node."""

    def __init__(self, torch, cap: Capture, path: str) -> None:
        self.torch, self.cap, self.path = torch, cap, path
        self.paths: dict[int, str] = {}
        self.depth = 0

    def run(self, module, shape: tuple) -> dict:
        torch, cap = self.torch, self.cap
        cap.kinds = {}
        for name, m in module.named_modules():
            cap.kinds[name] = getattr(m, "original_name", type(m).__name__)
        cap.leaves = {p for p in cap.kinds
                      if p and not any(q.startswith(p + ".") for q in cap.kinds)}
        self.paths[id(module)] = ""
        x = torch.zeros(shape, device="meta")
        cap.bind(x, INPUT, (None, None) + tuple(range(len(shape) - 2)))
        with torch.no_grad(), capture_mode(torch, cap)():
            out = self.method(module, "forward", [x])
        first = out[0] if isinstance(out, (list, tuple)) and out else out
        if isinstance(first, torch.Tensor) and cap.tracked(first):
            return {"output" + suffix: node
                    for suffix, node, _ in cap.kernel.state.pieces(cap.t(first))}
        return {}

    def method(self, obj, name: str, args: list) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused("calls nested deeper than rfield follows")
        graph = obj._c._get_method(name).graph
        path = self.paths.get(id(obj), "")
        enter = name == "forward" and path != ""
        if enter:
            self.cap.module_stack.append(path)
        env: dict = {}
        inputs = list(graph.inputs())
        env[inputs[0].unique()] = obj
        for v, a in zip(inputs[1:], args):
            env[v.unique()] = a
        self.block(graph, env)
        outs = [env[v.unique()] for v in graph.outputs()]
        out = outs[0] if len(outs) == 1 else tuple(outs)
        if enter:
            self.cap.module_stack.pop()
            self.cap.name_output(path, out)
        self.depth -= 1
        return out

    def block(self, block, env: dict) -> None:
        for node in block.nodes():
            self.node(node, env)

    def node(self, node, env: dict) -> None:
        kind = node.kind()
        ins: list[Any] = [env.get(v.unique()) for v in node.inputs()]
        outs = list(node.outputs())
        torch = self.torch
        if kind == "prim::Constant":
            value = outs[0].toIValue()
            if isinstance(value, torch.Tensor):  # a number traced as a tensor stays one
                value = value.item() if value.dim() == 0 else \
                    torch.zeros(value.shape, dtype=value.dtype, device="meta")
            result: Any = value
        elif kind == "prim::GetAttr":
            owner, attr = ins[0], node.s("name")
            result = getattr(owner, attr)
            if isinstance(result, torch.jit.ScriptModule) or hasattr(result, "_c"):
                base = self.paths.get(id(owner), "")
                self.paths[id(result)] = f"{base}.{attr}" if base else attr
            elif isinstance(result, torch.Tensor):
                result = torch.zeros(result.shape, dtype=result.dtype, device="meta")
        elif kind == "prim::CallMethod":
            result = self.method(ins[0], node.s("name"), ins[1:])
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            result = list(ins) if kind == "prim::ListConstruct" else tuple(ins)
        elif kind == "prim::DictConstruct":  # keys and values alternate
            result = dict(zip(ins[::2], ins[1::2]))
        elif kind == "aten::__getitem__" and isinstance(ins[0], dict):
            result = ins[0][ins[1]]
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            for v, item in zip(outs, ins[0]):
                env[v.unique()] = item
            return
        elif kind == "prim::TupleIndex":
            result = ins[0][ins[1]]
        elif kind == "prim::If":
            self.branch(node, ins[0], env)
            return
        elif kind == "prim::CallFunction":
            result = self.function(node, ins[1:])
        elif kind in ("prim::Loop", "prim::PythonOp"):
            raise _Refused(f"{kind.split('::')[1]} at {self._where(node)} is not followed")
        elif kind == "prim::RaiseException":
            raise _Refused(f"the module raises at {self._where(node)} on this input")
        elif kind in ("prim::Uninitialized", "prim::unchecked_cast", "aten::warn"):
            result = ins[0] if ins and kind == "prim::unchecked_cast" else None
        elif kind in ("prim::NumToTensor", "aten::ScalarImplicit",
                      "prim::device", "prim::dtype", "aten::detach", "aten::dropout",
                      "aten::feature_dropout"):
            result = ins[0] if kind not in ("prim::device", "prim::dtype") else None
            if kind == "prim::dtype":
                result = ins[0].dtype
            if kind in ("aten::dropout", "aten::feature_dropout"):
                result = self.aten("dropout", [ins[0], 0.0, False])
        elif kind == "aten::_set_item" and isinstance(ins[0], dict):
            ins[0][ins[1]] = ins[2]
            return
        elif kind.startswith("aten::"):
            result = self.aten(kind[len("aten::"):], ins, node)
        elif kind == "prim::min" or kind == "prim::max":
            result = (min if kind == "prim::min" else max)(*ins) if len(ins) > 1 else \
                (min if kind == "prim::min" else max)(ins[0])
        else:
            raise _Refused(f"{kind} at {self._where(node)} is not read")
        if not outs:
            return
        if len(outs) == 1:
            env[outs[0].unique()] = result
        else:
            for v, item in zip(outs, result):
                env[v.unique()] = item

    def branch(self, node, cond, env: dict) -> None:
        if not isinstance(cond, bool):
            raise _Refused(f"an If at {self._where(node)} depends on the input")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused("blocks nested deeper than rfield follows")
        chosen = list(node.blocks())[0 if cond else 1]
        self.block(chosen, env)
        for v, o in zip(node.outputs(), chosen.outputs()):
            env[v.unique()] = env.get(o.unique())
        self.depth -= 1

    def function(self, node, args: list) -> Any:
        """A call of a function compiled into the archive: torch.nn.functional's own are
        called as torch's (the archive's code is never run); others are refused."""
        qualified = ".".join(part for part in
                             str(node.inputsAt(0).type().annotation_str).split(".")
                             if not part.startswith("___torch_mangle_"))
        prefix = "__torch__.torch.nn.functional."
        name = qualified[len(prefix):] if qualified.startswith(prefix) else ""
        fn = getattr(self.torch.nn.functional, name, None) if name.isidentifier() and \
            "__" not in name else None
        if fn is None:
            raise _Refused(f"a call of {qualified} at {self._where(node)} is not followed "
                           "(only torch.nn.functional's are)")
        return fn(*args)

    def aten(self, name: str, args: list, node=None) -> Any:
        op = getattr(self.torch.ops.aten, name, None) if name.isidentifier() and \
            "__" not in name.strip("_") else None
        if name in ("Bool", "Int", "Float", "item", "is_nonzero") and args and \
                isinstance(args[0], self.torch.Tensor):
            where = self._where(node) if node is not None else f"aten::{name}"
            raise _Refused(f"a number read from a tensor at {where} depends on the input")
        if name == "__contains__" and len(args) == 2 and isinstance(args[0], (dict, list)):
            return args[1] in args[0]
        if name == "slice" and args and isinstance(args[0], (list, tuple)):  # x.shape[-2:]
            start, end, step = (list(args[1:]) + [None, None, 1])[:3]
            return list(args[0][start:end:step])
        if name in _ARITHMETIC and args and all(
                isinstance(a, (int, float, bool)) or (isinstance(a, str) and i == 2)
                for i, a in enumerate(args)):
            return _ARITHMETIC[name](*args)  # shape arithmetic, on numbers
        if name in ("__getitem__", "__is__", "__isnot__", "__not__", "len", "dim", "eq",
                    "ne", "gt", "lt", "ge", "le", "size") and not any(
                isinstance(a, self.torch.Tensor) and self.cap.tracked(a) and name not in
                ("size", "dim", "len", "__getitem__") for a in args):
            return _python(name, args)
        if op is None or not isinstance(op, self.torch._ops.OpOverloadPacket):
            raise _Refused(f"aten::{name} is not read")
        schema = node.schema() if node is not None else "(no schema)"
        if schema == "(no schema)":
            return op(*args)
        parsed = self.torch._C.parse_schema(schema)
        overload = getattr(op, parsed.overload_name or "default", None)
        if overload is None:
            return op(*args)
        # TorchScript passes every argument by position; keyword-only ones by name here
        plain = [a for a, s in zip(args, parsed.arguments) if not s.kwarg_only]
        named = {s.name: a for a, s in zip(args, parsed.arguments) if s.kwarg_only}
        return overload(*plain, **named)

    @staticmethod
    def _where(node) -> str:
        text = str(node).strip().splitlines()[0]
        return text[:120]


def _python(name: str, args: list) -> Any:
    """The aten calls on sizes and lists TorchScript makes for shape checks."""
    a = args
    if name == "size":
        return list(a[0].shape) if len(a) == 1 else int(a[0].shape[a[1]])
    if name == "dim":
        return a[0].dim()
    if name == "len":
        return len(a[0]) if not hasattr(a[0], "shape") else int(a[0].shape[0])
    if name == "__getitem__":
        return a[0][a[1]]
    if name == "__is__":
        return a[0] is a[1]
    if name == "__isnot__":
        return a[0] is not a[1]
    if name == "__not__":
        return not a[0]
    ops = {"eq": lambda x, y: x == y, "ne": lambda x, y: x != y, "gt": lambda x, y: x > y,
           "lt": lambda x, y: x < y, "ge": lambda x, y: x >= y, "le": lambda x, y: x <= y}
    return ops[name](a[0], a[1])


def _divide(a, b, rounding: str | None = None):
    """aten::div on numbers, with its rounding_mode (floor, trunc or none)."""
    if rounding == "floor":
        return a // b
    if rounding == "trunc":
        return int(a / b)
    return a / b


#: aten calls on numbers (traced shape arithmetic: size // groups): made in Python
_ARITHMETIC: dict = {
    "add": lambda a, b, alpha=1: a + alpha * b, "sub": lambda a, b, alpha=1: a - alpha * b,
    "mul": lambda a, b: a * b, "div": _divide,
    "floordiv": lambda a, b: a // b, "floor_divide": lambda a, b: a // b,
    "remainder": lambda a, b: a % b, "neg": lambda a: -a, "Int": int, "Float": float,
    "floor": lambda a: int(a // 1), "ceil": lambda a: -int(-a // 1), "pow": lambda a, b: a ** b}
