"""Layer specs -> Graph: Python lists and dicts, JSON and YAML files, compact strings.

Every error names where it is: the file and line, or the layer's position and
name, and what is wrong.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..core.graph import MAX_LAYERS, Graph, Provenance, check_input_size, gc_paused
from ..core.ops import Op
from ..errors import RfieldError, ShapeError, SpecError, TargetError, shown
from ..safeio import read_regular
from .registry import OPS, PARAM_ALIASES, canonical_op

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MAX_SPEC_BYTES = 256 * 1024 * 1024


def _suggest(word: str, options) -> str:
    near = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {shown(near[0])}?" if near else ""


def make_op(kind: object, params: dict, where: str) -> Op:
    """An op from its spec name and parameters."""
    if not isinstance(kind, str):
        raise SpecError(f"{where}: 'op' must be a string, got {shown(kind)}")
    key = canonical_op(kind)
    if key is None:
        raise SpecError(f"{where}: unknown op {shown(kind)}{_suggest(kind.lower(), OPS)} "
                        "(rfield --help lists the ops)")
    ctor, allowed, _ = OPS[key]
    kwargs = {}
    for raw, value in params.items():
        name = PARAM_ALIASES.get(raw, raw)
        if name not in allowed:
            known = ", ".join(allowed) if allowed else "no parameters"
            raise SpecError(f"{where}: {key} has no parameter {shown(raw)}"
                            f"{_suggest(raw, allowed)} (it takes {known})")
        kwargs[name] = value
    try:
        return ctor(**kwargs)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    except TypeError as exc:
        missing = re.findall(r"'(\w+)'", str(exc))
        what = f"parameter {shown(missing[-1])}" if missing else "a parameter"
        raise SpecError(f"{where}: {key} needs {what}") from None


def graph_from_layers(layers: object, input_size=None, source: str | None = None,
                      line_of: Callable[[int], int | None] | None = None) -> Graph:
    """A graph from a list of layer dicts (or Op objects, or (name, op, inputs) tuples).

    ``line_of(i)`` gives the line of layer ``i`` in ``source``; it is asked only when
    there is an error to report (finding lines costs more than building the graph).
    """
    prefix = f"{source}: " if source else ""
    if input_size is None:
        raise SpecError(f"{prefix}no input size: give it in the spec "
                        "('input': [224, 224]) or with input_size=(224, 224)")
    graph = Graph(input_size)
    if not isinstance(layers, (list, tuple)):
        raise SpecError(f"{prefix}'layers' must be a list, got {type(layers).__name__}")
    if not layers:
        raise SpecError(f"{prefix}the network has no layers")
    if len(layers) > MAX_LAYERS:
        raise SpecError(f"{prefix}{len(layers)} layers, more than the limit of {MAX_LAYERS}")
    counts: dict[str, int] = {}
    ops: dict = {}
    with gc_paused():
        for i, layer in enumerate(layers):
            try:
                _add_layer(graph, i, layer, counts, ops)
            except (SpecError, ShapeError) as exc:
                line = line_of(i) if line_of and source else None
                where = f"{source}:{line}" if line else source
                raise type(exc)(f"{where}: {exc}" if where else str(exc)) from None
    graph.set_provenance(Provenance(source="spec"))
    return graph


def _frozen(value: object):
    """A hashable twin of a parameter value (lists become tuples), or None."""
    if isinstance(value, (list, tuple)):
        items = [_frozen(v) for v in value]
        return None if None in items else ("list",) + tuple(items)
    if isinstance(value, (int, float, str)) or value is None:
        return (type(value).__name__, value)
    return None


def _add_layer(graph: Graph, i: int, layer: object, counts: dict[str, int],
               ops: dict) -> None:
    """Add one layer; ``ops`` keeps the op made for each distinct spec, so that a
    network repeating one layer makes (and binds) it once."""
    inputs: object = None
    key = _raw_key(layer)
    op = ops.get(key) if key is not None else None
    if op is not None:  # the common case first: a layer seen before, by its params
        assert isinstance(layer, dict)
        inputs = layer.get("inputs", layer.get("input"))
        return _add_node(graph, i, layer.get("name"), op, inputs, counts)
    label = f"layer {i + 1}"
    if isinstance(layer, Op):
        name, op = None, layer
    elif isinstance(layer, tuple) and len(layer) in (2, 3) and isinstance(layer[1], Op):
        name, op, inputs = layer[0], layer[1], (layer[2] if len(layer) == 3 else None)
    elif isinstance(layer, dict):
        spec = dict(layer)
        name = spec.pop("name", None)
        if name is not None:
            label = f"{label} ({shown(name)})"
        if "op" not in spec:
            raise SpecError(f"{label}: no 'op'")
        kind = spec.pop("op")
        inputs = spec.pop("inputs", spec.pop("input", None))
        spec.pop("comment", None)
        frozen = _frozen([kind, sorted(spec.items())]) if isinstance(kind, str) else None
        op = ops.get(frozen) if frozen is not None else None
        if op is None:
            op = make_op(kind, spec, label)
            if frozen is not None:
                ops[frozen] = op
        if key is not None:
            ops[key] = op
    else:
        raise SpecError(f"{label}: a layer must be an object with an 'op', got {shown(layer)}")
    _add_node(graph, i, name, op, inputs, counts)


#: layer keys that are not the op's parameters
_NOT_PARAMS = frozenset({"name", "inputs", "input", "comment"})


def _raw_key(layer: object) -> tuple | None:
    """A layer dict's op and parameters as they are, if hashable (no list values)."""
    if type(layer) is not dict:
        return None
    key = tuple(kv for kv in layer.items() if kv[0] not in _NOT_PARAMS)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _add_node(graph: Graph, i: int, name: object, op: Op, inputs: object,
              counts: dict[str, int]) -> None:
    if inputs is not None and not (isinstance(inputs, str) or (
            isinstance(inputs, (list, tuple)) and all(isinstance(s, str) for s in inputs))):
        raise SpecError(f"layer {i + 1}: 'inputs' must be a layer name or a list of names")
    if name is None:
        n = counts[op.kind] = counts.get(op.kind, 0) + 1
        name = f"{op.kind}{n}"
        while name in graph.nodes:
            name += "_"
    graph.add(name, op, inputs)  # type: ignore[arg-type]  # checked there


def graph_from_dict(spec: object, input_size=None, source: str | None = None,
                    line_of: Callable[[int], int | None] | None = None) -> Graph:
    where = source or "spec"
    if isinstance(spec, list):
        return graph_from_layers(spec, input_size, source, line_of)
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
    return graph_from_layers(spec["layers"], size, source, line_of)


# --------------------------------------------------------------------------- files

def _yaml_loader(yaml):
    """libyaml's safe loader where it is installed (about 10x faster), else PyYAML's."""
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _layer_lines(text: str) -> Callable[[int], int | None]:
    """``line_of(i)``: the line of entry ``i`` of 'layers', found with YAML's composer
    (JSON is YAML) the first time it is asked: only when there is an error to report."""
    found: list[list[int]] = []

    def line_of(i: int) -> int | None:
        if not found:
            found.append(_compose_lines(text))
        return found[0][i] if i < len(found[0]) else None

    return line_of


def _compose_lines(text: str) -> list[int]:
    import yaml

    try:
        root = yaml.compose(text, Loader=_yaml_loader(yaml))
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


#: a YAML document may repeat its own nodes through aliases up to this many in all
MAX_YAML_NODES = 100_000


def _check_expansion(data: object, where: str) -> None:
    """Refuse YAML whose aliases expand it far beyond its own size ("billion laughs"):
    shared nodes are counted once to find the document's size, and every time to find
    what reading it would visit."""
    sizes: dict[int, int] = {}

    def size(x: object) -> int:
        if not isinstance(x, (list, dict)):
            return 1
        key = id(x)
        if key not in sizes:
            sizes[key] = 0  # a cycle counts once
            items = x.values() if isinstance(x, dict) else x
            sizes[key] = 1 + sum(size(v) for v in items)
        return sizes[key]

    expanded = size(data)
    distinct = sum(len(v) if isinstance(v, (list, dict)) else 0
                   for v in _containers(data)) + len(sizes)
    if expanded > MAX_YAML_NODES and expanded > 8 * distinct:
        raise SpecError(f"{where}: YAML aliases expand the document to {expanded} nodes "
                        f"from {distinct}; rfield refuses alias bombs")


def _containers(data: object):
    seen: set[int] = set()
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, dict)) and id(x) not in seen:
            seen.add(id(x))
            yield x
            stack.extend(x.values() if isinstance(x, dict) else x)


def read_spec_file(path: str | os.PathLike) -> tuple[object, Callable[[int], int | None]]:
    """Parse a JSON or YAML spec file; errors give the file and line."""
    p = Path(path)
    try:
        text = read_regular(p, "spec file", MAX_SPEC_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{p}: not a text file (is it a model? .onnx, .pt2 and .py targets are "
                        "read by their own front-ends)") from None
    if "\x00" in text:
        raise SpecError(f"{p}: not a text file")
    if p.suffix.lower() == ".json":
        try:
            with gc_paused():
                data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{p}:{exc.lineno}: malformed JSON: {exc.msg} "
                            f"(column {exc.colno})") from None
    else:
        import yaml

        try:
            data = yaml.load(text, Loader=_yaml_loader(yaml))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"{p}{line}: malformed YAML: {shown(problem, 80)}") from None
        if "*" in text:  # aliases: what they expand to is bounded
            _check_expansion(data, str(p))
    return data, _layer_lines(text)


def load_spec_file(path, input_size=None) -> Graph:
    data, line_of = read_spec_file(path)
    return graph_from_dict(data, input_size, str(path), line_of)


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
    raise SpecError(f"{where}: cannot read the value {shown(text)}")


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
        where = f"layer string, item {pos} ({shown(item.strip())})"
        m = _ITEM.match(item)
        if not m:
            raise SpecError(f"{where}: expected op(args), for example conv(3,s=2,p=1)")
        kind = canonical_op(m["op"])
        if kind is None:
            raise SpecError(f"{where}: unknown op {shown(m['op'])}{_suggest(m['op'].lower(), OPS)}")
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
        if len(layers) + times > MAX_LAYERS:
            raise SpecError(f"{where}: *{times} makes more than the limit of {MAX_LAYERS} "
                            "layers")
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
        raise TargetError(f"no built-in example {shown(name)}; there are: "
                          f"{', '.join(example_names())}")
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
        misshapen = misshapen_target(target)
        if misshapen:
            raise TargetError(misshapen)
        if os.path.exists(target):
            return load_spec_file(target, input_size)
        try:
            layers = parse_compact(target)
        except SpecError as exc:
            zoo = _zoo_names(target.strip()) if "unknown op" in str(exc) else ""
            if zoo:
                raise TargetError(zoo) from None
            raise
        return graph_from_layers(layers, input_size, None)
    raise RfieldError(f"cannot read a network from {type(target).__name__}")


LIBRARIES = ("torchvision", "timm", "hf", "keras")


def misshapen_target(target: str) -> str | None:
    """What is wrong with a target that is almost another kind: a Python file without
    its factory, a zoo name written with a slash."""
    if target.endswith(".py"):
        return (f"{target}: a Python file is read through a function that builds the "
                f"model: give {target}:FACTORY (for example {target}:build)")
    lib, slash, name = target.partition("/")
    if slash and lib in LIBRARIES and name and "(" not in name:
        return f"{target}: not a layer string; did you mean {lib}:{name}?"
    return None


def _zoo_names(word: str) -> str:
    """For a bare word that is no op: the zoo models it names (from the atlas, which
    needs no framework), as targets to give."""
    if not re.fullmatch(r"[\w.\-]+", word):
        return ""
    from ..zoo.atlas import load

    try:
        lines = load()
    except RfieldError:
        return ""
    hits = [f"{m['library']}:{m['model']}" for m in lines if m["model"] == word]
    if hits:
        return (f"{word!r} is not a layer string; a zoo model is named with its library: "
                f"{', '.join(hits)}")
    near = difflib.get_close_matches(word, sorted({m["model"] for m in lines}), n=3,
                                     cutoff=0.8)
    hits = [f"{m['library']}:{n}" for n in near for m in lines if m["model"] == n]
    return (f"{word!r} is not a layer string; did you mean {', '.join(hits[:4])}?"
            if hits else "")
