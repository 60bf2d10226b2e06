"""A ``.pt2`` program (see :mod:`.pt2_program`) read into a :class:`Graph`: each aten
call of its graph is made again on meta tensors under the torch capture, so the same
table (:data:`.torch_ops.HANDLERS`, by the operator's name: ``aten.conv2d`` is
``conv2d``) reads it as it reads the module the program came from, and the nodes take
the module paths the graph's ``nn_module_stack`` records (a module's output is the last
value made inside it: the graph does not say which of several a module returns). Only
``torch.ops.aten`` operators are called; any other target is reported by name, never
run.
"""

from __future__ import annotations

import operator
from typing import Any

from ..core.graph import INPUT, Graph
from ..errors import RfieldError, TargetError, require
from .pt2_program import Node, Program, read_program
from .torch_capture import Capture, capture_mode
from .torch_ops import flat

#: argument encodings that say where or how a tensor is stored: left to the defaults
#: (everything here runs on the meta device)
STORAGE = ("as_device", "as_layout", "as_memory_format")


def graph_from_pt2(path: str, input_size=None, strict: bool = False,
                   size_note: str | None = None, **_options: Any) -> Graph:
    torch = require("torch", "torch")
    program = read_program(str(path))
    if not program.user_inputs:
        raise TargetError(f"{path}: the program takes no tensor input")
    recorded = program.shapes[program.user_inputs[0]]
    if len(recorded) < 3:
        raise TargetError(f"{path}: its input has shape {list(recorded)}, no spatial axis "
                          "after (batch, channels)")
    size = tuple(int(v) for v in input_size) if input_size else recorded[2:]
    if len(size) != len(recorded) - 2:
        raise TargetError(f"{path}: its input has {len(recorded) - 2} spatial axes, the "
                          f"size given {len(size)}")
    if size_note is None and not input_size:
        size_note = "the size the program was exported at"
    shape = (1, recorded[1], *size)
    cap = Capture(torch, shape, strict)
    paths = {p: kind for n in program.nodes for p, kind in n.modules}
    cap.kinds = paths
    cap.leaves = {p for p in paths if not any(q.startswith(p + ".") for q in paths)}
    try:
        result = _run(torch, program, cap, shape, size != recorded[2:])
    except RfieldError:
        raise
    except Exception as exc:  # a graph that is not what torch.export writes
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise TargetError(f"{path}: the program could not be read: {type(exc).__name__}: "
                          f"{first}") from None
    if not cap.kernel.state.graph.nodes:
        raise TargetError(f"{path}: the program does no operation rfield could see on its "
                          "input")
    return cap.kernel.state.finish(
        source="pt2", input_channels=shape[1], aliases=cap.module_outputs,
        alias_layouts=cap.module_layouts, captured_on="meta", size_note=size_note,
        outputs=result, module_types={p: paths[p] for p in cap.module_outputs if p in paths})


def _run(torch, program: Program, cap: Capture, shape: tuple, resized: bool) -> dict:
    """Make each call on meta tensors; the outputs' nodes by name (output, output.1)."""
    x = torch.zeros(shape, device="meta")
    cap.bind(x, INPUT, (None, None) + tuple(range(len(shape) - 2)))
    values: dict[str, Any] = {program.user_inputs[0]: x}
    for name in program.user_inputs[1:] + list(program.lifted):
        values[name] = torch.zeros(program.shapes.get(name, ()), device="meta")
    last: dict[str, Any] = {}  # module path -> the last value made inside it
    with torch.no_grad(), capture_mode(torch, cap)():
        for node in program.nodes:
            _scopes(cap, [p for p, _ in node.modules], last)
            out = _call(torch, program, cap, node, values, resized)
            _store(node, out, values)
            for p in cap.module_stack:
                last[p] = out
        _scopes(cap, [], last)
    outs = [values.get(o.get("as_tensor", {}).get("name")) for o in program.outputs]
    named = [("output" if len(outs) == 1 else f"output.{i}", o) for i, o in enumerate(outs)]
    return {k + suffix: node for k, o in named if o is not None and cap.tracked(o)
            for suffix, node, _ in cap.kernel.state.pieces(cap.t(o))}


def _scopes(cap: Capture, want: list[str], last: dict) -> None:
    """Leave the modules the next call is not inside (each names its last value) and
    enter the ones it is."""
    stack = cap.module_stack
    keep = 0
    while keep < min(len(stack), len(want)) and stack[keep] == want[keep]:
        keep += 1
    while len(stack) > keep:
        path = stack.pop()
        if path in last:
            cap.name_output(path, last.pop(path))
    stack.extend(want[keep:])


def _call(torch, program: Program, cap: Capture, node: Node, values: dict,
          resized: bool) -> Any:
    target = node.target
    if target == "_operator.getitem":
        args, _ = _arguments(torch, program, node, values)
        return operator.getitem(*args)
    if target.startswith("torch.ops.higher_order."):
        raise TargetError(f"{program.path}: node {node.name!r} is control flow "
                          f"({target.rsplit('.', 1)[-1]}), which rfield does not follow")
    fn = _aten(torch, target)
    if fn is None:  # a custom operator: never run; reported, at the recorded shapes
        if resized:
            raise TargetError(f"{program.path}: node {node.name!r} calls {target}, which "
                              "rfield cannot run, so the program is read only at the "
                              "size it was exported at")
        ins = [v for v in flat(_arguments(torch, program, node, values)) if cap.tracked(v)]
        outs = [torch.zeros(program.shapes[o["as_tensor"]["name"]], device="meta")
                for o in node.outputs if "as_tensor" in o]
        if ins and outs:
            cap.kernel.state.unknown(target, [cap.t(v) for v in ins], [cap.t(o) for o in outs])
        return outs[0] if len(outs) == 1 else outs
    args, kwargs = _arguments(torch, program, node, values)
    try:
        return fn(*args, **kwargs)
    except TargetError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise TargetError(f"{program.path}: node {node.name!r} ({target}) could not be "
                          f"made again at input {list(cap.kernel.state.graph.input_size)}: "
                          f"{type(exc).__name__}: {first}") from None


def _aten(torch, target: str) -> Any:
    """The aten operator a target names (``torch.ops.aten.conv2d.default``), else None."""
    prefix = "torch.ops.aten."
    if not target.startswith(prefix):
        return None
    op, _, overload = target[len(prefix):].partition(".")
    if not (op.isidentifier() and overload.isidentifier()) or "__" in target:
        return None
    packet = getattr(torch.ops.aten, op, None)
    if not isinstance(packet, torch._ops.OpOverloadPacket):
        return None
    fn = getattr(packet, overload, None)
    return fn if isinstance(fn, torch._ops.OpOverload) else None


def _arguments(torch, program: Program, node: Node, values: dict) -> tuple[list, dict]:
    args: list = []
    kwargs: dict = {}
    for name, arg, kind in node.inputs:
        (encoding, body), = arg.items()
        if encoding in STORAGE:
            continue
        value = _value(torch, program, node, encoding, body, values)
        if kind == 1 and not kwargs:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


def _value(torch, program: Program, node: Node, encoding: str, body: Any,
           values: dict) -> Any:
    def tensor(ref: dict) -> Any:
        name = ref["name"]
        if name not in values:
            raise TargetError(f"{program.path}: node {node.name!r} reads {name!r}, which "
                              "no earlier node makes")
        return values[name]

    if encoding == "as_tensor":
        return tensor(body)
    if encoding == "as_tensors":
        return [tensor(b) for b in body]
    if encoding == "as_optional_tensors":
        return [tensor(b["as_tensor"]) if "as_tensor" in b else None for b in body]
    if encoding == "as_none":
        return None
    if encoding in ("as_int", "as_float", "as_bool", "as_string", "as_ints", "as_floats",
                    "as_bools", "as_strings"):
        return body
    if encoding in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        if isinstance(body, dict) and "as_int" in body:
            return body["as_int"]
    if encoding == "as_sym_ints":
        if all(isinstance(b, dict) and "as_int" in b for b in body):
            return [b["as_int"] for b in body]
    if encoding == "as_scalar_type":
        dtype = _DTYPES.get(body)
        if dtype is not None:
            return getattr(torch, dtype)
    raise TargetError(f"{program.path}: node {node.name!r} ({node.target}) has an argument "
                      f"rfield does not read ({encoding})")


#: torch.export's ScalarType codes (torch/_export/serde/schema.py)
_DTYPES = {1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16",
           7: "float32", 8: "float64", 12: "bool", 13: "bfloat16"}


def _store(node: Node, out: Any, values: dict) -> None:
    for i, enc in enumerate(node.outputs):
        if "as_tensor" in enc:
            values[enc["as_tensor"]["name"]] = out if len(node.outputs) == 1 else out[i]
        elif "as_tensors" in enc:
            for j, ref in enumerate(enc["as_tensors"]):
                values[ref["name"]] = out[j]
