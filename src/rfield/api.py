"""``rfield.analyze``: one entry point for every kind of target."""

from __future__ import annotations

from .core.analysis import Analysis
from .core.graph import Graph


def load_graph(target, input_size=None, **options) -> Graph:
    """A graph from a spec (file, string, dict, list), a torch module or an ONNX file."""
    if isinstance(target, Graph):
        return target
    kind = type(target).__module__.split(".")[0]
    if kind == "torch" or _is_torch_module(target):
        from .frontends.torch_capture import graph_from_module

        return graph_from_module(target, input_size, **options)
    if isinstance(target, str) and ":" in target and not target.startswith("example:") \
            and not target.lower().endswith(
            (".json", ".yaml", ".yml", ".onnx")) and "(" not in target.split(":")[0]:
        from .frontends.torch_targets import load_torch_target

        return load_torch_target(target, input_size, **options)
    if isinstance(target, str) and target.lower().endswith(".onnx"):
        from .frontends.onnx_graph import graph_from_onnx

        return graph_from_onnx(target, input_size, **options)
    from .spec.parse import load_spec

    return load_spec(target, input_size)


def _is_torch_module(obj) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def analyze(target, input_size=None, **options) -> Analysis:
    """Receptive fields of every layer of ``target`` at ``input_size``.

    ``target`` is a layer list, a spec dict, a JSON/YAML path, a compact
    string such as ``"conv(3,p=1)*2; maxpool(2)"``, a :class:`Graph`, a
    ``torch.nn.Module`` or a ``.onnx`` path.
    """
    return Analysis(load_graph(target, input_size, **options))
