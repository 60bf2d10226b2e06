"""Keras 3: a ``keras.Model``, a ``.keras`` file (loaded in safe mode) or
``keras:NAME`` (``keras.applications``). Node names are layer names as
``summary()`` shows them, nested models' joined by ``/``; only a model's own
layers have outputs that can be measured."""

from __future__ import annotations

from typing import Any

from ..core.analysis import Analysis
from ..core.graph import Graph
from .record import ErfAsk, Framework, Size, Target, module_paths


def _own_layer(path: str) -> bool:
    """A model's own layer (one inside a nested model has no output of its own)."""
    return "/" not in path


def _owns(obj: object) -> bool:
    from ..frontends.keras_graph import is_keras_model  # imports no Keras

    return is_keras_model(obj)


def native_size(model: Any) -> tuple[Size, str]:
    """The input size a built model has, or ImageNet's usual 224."""
    from ..errors import require
    from ..frontends.keras_graph import data_format

    keras = require("keras", "keras")
    shape = list(model.inputs[0].shape)
    nd = len(shape) - 2
    sp = shape[1:1 + nd] if data_format(model, keras) == "channels_last" else shape[2:]
    if None in sp:
        return (224,) * nd, "ImageNet's usual size: the model takes any size"
    return tuple(int(v) for v in sp), "the model's own input size"


def _model(t: Target, input_size: Size, options: dict) -> tuple[Any, Size, str | None]:
    """The keras.Model, and the size to read it at (``keras:NAME``'s own if none is
    given) with where that comes from."""
    from ..models.keras_models import keras_model

    model = keras_model(t.value, options.get("kwargs"), input_size)
    if input_size is None and t.kind == "keras" and isinstance(t.value, str) \
            and t.value.startswith("keras:"):
        return model, *native_size(model)
    return model, input_size, None


def read(t: Target, input_size: Size, options: dict) -> Graph:
    model, size, note = _model(t, input_size, options)
    return _graph(model, size, note, options)


def _graph(model: Any, size: Size, note: str | None, options: dict) -> Graph:
    from ..frontends.keras_graph import graph_from_keras

    return graph_from_keras(model, size, strict=bool(options.get("strict")),
                            size_note=note, input_name=options.get("input_name"))


class KerasRunner:
    """A Keras model with its own weights (a file's, or random)."""

    def __init__(self, t: Target, input_size: Size, options: dict, _init: bool) -> None:
        self.model, size, note = _model(t, input_size, options)
        self.options = options
        self.graph = _graph(self.model, size, note, options)

    def graph_at(self, size: Size, nodes: list[str] | None = None) -> Graph:
        if size is None:
            return self.graph
        model = self.model
        if nodes:  # only what leads to the nodes: a head may fix the size
            paths = module_paths(self.graph)
            model = _part(self.model, [paths.get(n) for n in nodes])
        return _graph(model, size, None, self.options)

    paths = staticmethod(module_paths)

    def measure(self, graph: Graph, modules: list[str], units: dict, layouts: dict,
                device: str) -> dict:
        from ..empirical.keras_gradient import measure

        in_layout = graph.provenance.input_layout
        assert in_layout is not None  # the Keras front-end records it
        return measure(self.model, graph.input_size, modules, units, layouts, in_layout)

    def erf(self, a: Analysis, node: str, module: str, ask: ErfAsk) -> Any:
        from ..empirical.keras_gradient import target_erf

        return target_erf(self.model, a, node, module, ask)


def _part(model: Any, layers: list) -> Any:
    """The Keras model cut at ``layers`` (the model itself if one is its output)."""
    import keras

    from ..empirical.keras_gradient import outputs_by_name

    if any(not name or not _own_layer(name) for name in layers):
        return model
    made = outputs_by_name(model)
    return keras.Model(model.inputs, [made[n] for n in layers])


def op_tables() -> dict[str, list[str]]:
    from ..frontends.keras_layers import LAYERS, OPS

    return {"keras layers": sorted(LAYERS), "keras ops in a functional graph": sorted(OPS)}


def add_op(name: str, handler: Any, _module: bool) -> None:
    """A layer class: ``handler(reader, layer, inputs, outputs)``."""
    from ..frontends.keras_layers import LAYERS

    LAYERS[name] = handler


KERAS = Framework(
    name="keras", read=read, op_tables=op_tables, sep="/", owns_object=_owns,
    suffixes=(".keras",), prefixes=("keras",), runner=KerasRunner,
    hookable=_own_layer, add_op=add_op)
