"""Layer specs -> Graph: Python lists and dicts, JSON and YAML files, compact strings.

Every error names where it is: the file and line, or the layer's position and
name, and what is wrong.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

from ..core.graph import Graph, Provenance, check_input_size
from ..core.ops import Op
from ..errors import RfieldError, SpecError, TargetError
from ..safeio import read_regular
from .registry import OPS, PARAM_ALIASES, canonical_op

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MAX_SPEC_BYTES = 50 * 1024 * 1024


def _suggest(word: str, options) -> str:
    near = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def make_op(kind: object, params: dict, where: str) -> Op:
    """An op from its spec name and parameters."""
    if not isinstance(kind, str):
        raise SpecError(f"{where}: 'op' must be a string, got {kind!r}")
    key = canonical_op(kind)
    if key is None:
        raise SpecError(f"{where}: unknown op {kind!r}{_suggest(kind.lower(), OPS)} "
                        "(rfield --help lists the ops)")
    ctor, allowed, _ = OPS[key]
    kwargs = {}
    for raw, value in params.items():
        name = PARAM_ALIASES.get(raw, raw)
        if name not in allowed:
            known = ", ".join(allowed) if allowed else "no parameters"
            raise SpecError(f"{where}: {key} has no parameter {raw!r}"
                            f"{_suggest(raw, allowed)} (it takes {known})")
        kwargs[name] = value
    try:
        return ctor(**kwargs)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    except TypeError as exc:
        missing = re.findall(r"'(\w+)'", str(exc))
        what = f"parameter {missing[-1]!r}" if missing else "a parameter"
        raise SpecError(f"{where}: {key} needs {what}") from None


def graph_from_layers(layers: object, input_size=None, source: str | None = None,
                      lines: list[int | None] | None = None) -> Graph:
    """A graph from a list of layer dicts (or Op objects, or (name, op, inputs) tuples)."""
    if input_size is None:
        raise SpecError(f"{source + ': ' if source else ''}no input size: give it in the spec "
                        "('input': [224, 224]) or with input_size=(224, 224)")
    graph = Graph(input_size)
    if not isinstance(layers, (list, tuple)):
        raise SpecError(f"{source + ': ' if source else ''}'layers' must be a list, "
                        f"got {type(layers).__name__}")
    if not layers:
        raise SpecError(f"{source + ': ' if source else ''}the network has no layers")
    counts: dict[str, int] = {}
    for i, layer in enumerate(layers):
        line = lines[i] if lines and i < len(lines) else None
        where = f"{source}:{line}" if source and line else (source or None)
        pos = f"layer {i + 1}"
        label = f"{where}: {pos}" if where else pos
        if isinstance(layer, Op):
            name, op, inputs = None, layer, None
        elif isinstance(layer, tuple) and len(layer) in (2, 3) and isinstance(layer[1], Op):
            name, op, inputs = layer[0], layer[1], (layer[2] if len(layer) == 3 else None)
        elif isinstance(layer, dict):
            spec = dict(layer)
            name = spec.pop("name", None)
            if name is not None:
                label = f"{label} ({name!r})"
            if "op" not in spec:
                raise SpecError(f"{label}: no 'op'")
            kind = spec.pop("op")
            inputs = spec.pop("inputs", spec.pop("input", None))
            spec.pop("comment", None)
            op = make_op(kind, spec, label)
        else:
            raise SpecError(f"{label}: a layer must be an object with an 'op', got {layer!r}")
        if inputs is not None and not (isinstance(inputs, str) or (
                isinstance(inputs, (list, tuple)) and all(isinstance(s, str) for s in inputs))):
            raise SpecError(f"{label}: 'inputs' must be a layer name or a list of names")
        if name is None:
            counts[op.kind] = counts.get(op.kind, 0) + 1
            name = f"{op.kind}{counts[op.kind]}"
            while name in graph.nodes:
                name += "_"
        graph.add(name, op, inputs, where=where)
    graph.set_provenance(Provenance(source="spec"))
    return graph


def graph_from_dict(spec: object, input_size=None, source: str | None = None,
                    lines: list[int | None] | None = None) -> Graph:
    where = source or "spec"
    if isinstance(spec, list):
        return graph_from_layers(spec, input_size, source, lines)
    if not isinstance(spec, dict):
        raise SpecError(f"{where}: a spec is an object with 'input' and 'layers', "
                        f"got {type(spec).__name__}")
    unknown = set(spec) - {"input", "layers", "name", "description", "comment"}
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                        "(a spec has 'input' and 'layers')")
    if "layers" not in spec:
        raise SpecError(f"{where}: no 'layers' list")
    size = input_size if input_size is not None else spec.get("input")
    if size is not None:
        try:
            size = check_input_size(size)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
    return graph_from_layers(spec["layers"], size, source, lines)


# --------------------------------------------------------------------------- files

def _layer_lines(text: str) -> list[int | None]:
    """Line number of each entry of 'layers', read with YAML's composer (JSON is YAML)."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if isinstance(root, yaml.SequenceNode):
        seq = root
    elif isinstance(root, yaml.MappingNode):
        seq = next((v for k, v in root.value if getattr(k, "value", None) == "layers"), None)
    else:
        return []
    if not isinstance(seq, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in seq.value]


def read_spec_file(path: str | os.PathLike) -> tuple[object, list[int | None]]:
    """Parse a JSON or YAML spec file; errors give the file and line."""
    p = Path(path)
    try:
        text = read_regular(p, "spec file", MAX_SPEC_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{p}: not a text file (is it a model? .onnx and .py targets are "
                        "read by their own front-ends)") from None
    if "\x00" in text:
        raise SpecError(f"{p}: not a text file")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{p}:{exc.lineno}: malformed JSON: {exc.msg} "
                            f"(column {exc.colno})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"{p}{line}: malformed YAML: {problem}") from None
    return data, _layer_lines(text)


def load_spec_file(path, input_size=None) -> Graph:
    data, lines = read_spec_file(path)
    return graph_from_dict(data, input_size, str(path), lines)


# --------------------------------------------------------------------------- strings

_ITEM = re.compile(r"^\s*(?:(?P<name>[A-Za-z_][\w.]*)\s*=\s*)?(?P<op>[A-Za-z_][\w-]*)\s*"
                   r"(?:\((?P<args>.*)\))?\s*(?:\*\s*(?P<times>\d+))?\s*$", re.S)


def _split(text: str, seps: str) -> list[str]:
    """Split at separators that are not inside brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _value(text: str, where: str):
    text = text.strip()
    if re.fullmatch(r"-?\d+(x-?\d+)+", text):
        return [int(v) for v in text.split("x")]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if re.fullmatch(r"[A-Za-z][\w-]*", text):
        return {"true": True, "false": False, "none": None}.get(text.lower(), text)
    raise SpecError(f"{where}: cannot read the value {text!r}")


def parse_compact(text: str) -> list[dict]:
    """Layer dicts from the one-line form, e.g. ``conv(7,s=2,p=3); maxpool(3,s=2,p=1)``.

    Layers are separated by ``;`` or newlines; ``name=op(args)`` names a
    layer; a bare first argument is the main parameter (the kernel for
    convs and pools), merges take the names of their inputs; ``*N`` repeats.
    """
    layers: list[dict] = []
    items = [s for s in _split(text, ";\n") if s.strip()]
    if not items:
        raise SpecError("the layer string is empty")
    for pos, item in enumerate(items, 1):
        where = f"layer string, item {pos} ({item.strip()!r})"
        m = _ITEM.match(item)
        if not m:
            raise SpecError(f"{where}: expected op(args), for example conv(3,s=2,p=1)")
        kind = canonical_op(m["op"])
        if kind is None:
            raise SpecError(f"{where}: unknown op {m['op']!r}{_suggest(m['op'].lower(), OPS)}")
        layer: dict = {"op": kind}
        if m["name"]:
            layer["name"] = m["name"]
        args = [a for a in _split(m["args"] or "", ",") if a.strip()]
        positional = []
        for arg in args:
            if "=" in arg and not arg.strip().startswith("["):
                key, val = arg.split("=", 1)
                key = key.strip()
                if key in ("in", "inputs"):
                    layer["inputs"] = [s.strip() for s in val.split("+")]
                else:
                    layer[key] = _value(val, where)
            else:
                positional.append(arg.strip())
        if positional:
            main = OPS[kind][2]
            if kind in ("add", "mul", "concat", "sub", "max", "min", "mean", "sum"):
                layer["inputs"] = positional
            elif main is None or len(positional) > 1:
                takes = ("no positional argument" if main is None
                         else f"one positional argument ({main})")
                raise SpecError(f"{where}: {kind} takes {takes}; name the others, e.g. s=2")
            else:
                layer[main] = _value(positional[0], where)
        times = int(m["times"] or 1)
        if times < 1:
            raise SpecError(f"{where}: *{times} repeats nothing")
        if times > 1 and "name" in layer:
            raise SpecError(f"{where}: a named layer cannot be repeated")
        layers.extend(dict(layer) for _ in range(times))
    return layers


def looks_like_spec_path(target: str) -> bool:
    return target.lower().endswith(SPEC_SUFFIXES)


def example_names() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.json"))


def example_path(name: str) -> Path:
    path = EXAMPLES / f"{name}.json"
    if not path.is_file():
        raise TargetError(f"no built-in example {name!r}; there are: {', '.join(example_names())}")
    return path


def load_spec(target, input_size=None) -> Graph:
    """A graph from any spec form: a file path, a compact string, a dict or a list."""
    if isinstance(target, str) and target.startswith("example:"):
        return load_spec_file(example_path(target[len("example:"):]), input_size)
    if isinstance(target, (dict, list, tuple)):
        return graph_from_dict(list(target) if isinstance(target, tuple) else target, input_size)
    if isinstance(target, os.PathLike) or looks_like_spec_path(str(target)):
        return load_spec_file(target, input_size)
    if isinstance(target, str):
        if os.path.exists(target):
            return load_spec_file(target, input_size)
        return graph_from_layers(parse_compact(target), input_size, None)
    raise RfieldError(f"cannot read a network from {type(target).__name__}")
