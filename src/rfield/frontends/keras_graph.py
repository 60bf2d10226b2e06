"""Keras 3 models read from their own functional graph: no data, no weights, no
conversion, so the same on the TensorFlow, JAX and torch backends.

The walk follows the model's nodes in Keras' own order (``_nodes_by_depth``, as
``Functional`` runs them), computes every tensor's shape at the analysed input size
with the layer's own ``compute_output_spec`` (symbolic, nothing runs), and hands each
layer to its handler in :mod:`.keras_layers`. A model used as a layer (ConvNeXt's
stem, a Sequential block) is walked too; its nodes are named ``outer/inner``.
"""

from __future__ import annotations

from typing import Any

from ..core.graph import INPUT, Graph
from ..errors import RfieldError, ShapeError, TargetError, require
from .keras_layers import handler_for
from .kernel import Kernel, T, Unknown


def is_keras_model(obj: object) -> bool:
    """A keras.Model (checked by class, so Keras is not imported to ask)."""
    return any(c.__module__.startswith("keras.") and c.__name__ == "Model"
               for c in type(obj).__mro__)


def data_format(model: Any, keras: Any) -> str:
    """The data format of the model's first layer that has one (else Keras' default)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        fmt = getattr(layer, "data_format", None)
        if fmt in ("channels_last", "channels_first"):
            return fmt
    return str(keras.config.image_data_format())


class KerasReader:
    """One walk of a Keras model into the kernel."""

    def __init__(self, keras: Any, input_size: tuple[int, ...], strict: bool) -> None:
        self.keras = keras
        self.kernel = Kernel(input_size, strict, "Keras", self._naming, self._where)
        self.scope: list[str] = []  # the nested models around the layer read now
        self.layer = ""  # its path
        self.aliases: dict[str, str] = {}
        self.layouts: dict[str, tuple] = {}
        self.types: dict[str, str] = {}

    def _naming(self, kind: str) -> tuple[str, str | None]:
        return (self.layer or kind), (self.layer or None)

    def _where(self) -> str:
        return f"layer {self.layer!r} ({self.types.get(self.layer, '?')})" if self.layer \
            else "the model's input"

    def t(self, spec: Any) -> T:
        shape = tuple(None if v is None else int(v) for v in spec.shape)
        return T(id(spec), shape, spec)

    # ------------------------------------------------------------------ the walk

    def walk(self, model: Any, inputs: list[Any]) -> list[Any]:
        """Run ``model`` symbolically on ``inputs`` (KerasTensors at the analysed size),
        reading each layer; returns its output specs."""
        if not hasattr(model, "_nodes_by_depth"):  # a Sequential not built on an Input
            x = inputs[0]
            for layer in model.layers:
                (x,) = self.call(layer, (x,), {})
            return [x]
        tensors = {id(k): v for k, v in zip(model.inputs, inputs)}
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input or not node.operation:
                    continue
                if any(id(x) not in tensors for x in node.input_tensors):
                    continue  # a branch that does not start from the input
                args, kwargs = node.arguments.fill_in(tensors)
                outs = self.call(node.operation, args, kwargs)
                for k, v in zip(node.outputs, outs):
                    tensors[id(k)] = v
        return [tensors[id(k)] for k in model.outputs]

    def call(self, layer: Any, args: tuple, kwargs: dict) -> list[Any]:
        keras = self.keras
        path = "/".join([*self.scope, layer.name])
        outer, self.layer = self.layer, path
        self.types[path] = type(layer).__name__
        ins = [a for a in keras.tree.flatten((args, kwargs)) if isinstance(a, keras.KerasTensor)]
        try:
            if is_keras_model(layer):
                self.scope.append(layer.name)
                try:
                    outs = self.walk(layer, ins)
                finally:
                    self.scope.pop()
            else:
                outs = self.spec(layer, args, kwargs)
                self.read(layer, [self.t(a) for a in ins], [self.t(o) for o in outs], args)
        finally:
            self.layer = outer
        tracked = [o for o in outs if self.kernel.state.has(self.t(o))]
        if tracked:
            for suffix, node, layout in self.kernel.state.pieces(self.t(tracked[0])):
                if node != INPUT:
                    self.aliases[path + suffix] = node
                    self.layouts[path + suffix] = layout
        return outs

    def spec(self, layer: Any, args: tuple, kwargs: dict) -> list[Any]:
        """The layer's output specs at this size, from Keras' own shape rules."""
        try:
            spec = getattr(layer, "input_spec", None)
            if spec is not None and args:  # what Layer.__call__ checks: a Dense's width
                from keras.src.layers.input_spec import assert_input_compatibility

                assert_input_compatibility(spec, args[0], layer.name)
            return self.keras.tree.flatten(layer.compute_output_spec(*args, **kwargs))
        except (ValueError, TypeError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShapeError(f"Keras cannot run layer {self.layer!r} ({type(layer).__name__}) "
                             f"at this input size: {text}") from None

    def read(self, layer: Any, ins: list[T], outs: list[T], args: tuple = ()) -> None:
        ins = [t for t in ins if self.kernel.state.has(t)]
        if not ins:
            return
        kind, handler = handler_for(layer)
        try:
            if handler is None and self.keras.backend.backend() == "jax" \
                    and len(ins) == len(args):
                from .jax_graph import read_function  # its own call(), traced

                return read_function(self.kernel, lambda *xs: layer(*xs), ins, outs)
            if handler is None:
                raise Unknown(kind)
            handler(self, layer, ins, outs)
        except Unknown as exc:
            self.kernel.state.unknown(str(exc), ins, outs, kind)


def graph_from_keras(model: Any, input_size=None, strict: bool = False,
                     size_note: str | None = None, input_name: str | None = None) -> Graph:
    """The graph of a Keras 3 model at ``input_size`` (spatial; default: the model's
    own input shape)."""
    keras = require("keras", "keras")
    if not hasattr(model, "inputs") or not model.inputs:
        raise TargetError(f"{type(model).__name__}: a Keras model that was never built on an "
                          "input; call it once or build it with keras.Input")
    inp = _image_input(model, input_name)
    fmt = data_format(model, keras)
    shape = list(inp.shape)
    nd = len(shape) - 2
    if not 1 <= nd <= 3:
        raise TargetError(f"input {inp.name!r} has shape {shape}: rfield reads 1-D to 3-D "
                          "inputs with batch and channels")
    sp = list(range(1, 1 + nd)) if fmt == "channels_last" else list(range(2, 2 + nd))
    ch = 1 + nd if fmt == "channels_last" else 1
    if input_size is None:
        input_size = tuple(shape[d] for d in sp)
        if None in input_size:
            raise TargetError(f"{model.name}: its input has no fixed size ({shape[1:]}); "
                              "give one: --input 224,224")
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) != nd:
        raise TargetError(f"{model.name} is a {nd}-D model: it needs {nd} input sizes, got "
                          f"{list(input_size)}")
    for d, v in zip(sp, input_size):
        shape[d] = v
    shape[0] = 1
    r = KerasReader(keras, input_size, strict)
    spec = keras.KerasTensor(tuple(shape), dtype=inp.dtype)
    layout = tuple(sp.index(d) if d in sp else None for d in range(len(shape)))
    r.kernel.state.bind(r.t(spec), INPUT, layout)
    feed = [spec if k is inp else keras.KerasTensor(k.shape, dtype=k.dtype)
            for k in model.inputs]
    outs = r.walk(model, feed)
    if not r.kernel.state.graph.nodes:
        raise TargetError(f"{model.name}: no layer of the model reads its input")
    names = [getattr(k, "name", None) or f"output_{i}" for i, k in enumerate(model.outputs)]
    returned = {("output" if len(outs) == 1 else f"output.{n}") + suffix: node
                for n, o in zip(names, outs) if r.kernel.state.has(r.t(o))
                for suffix, node, _ in r.kernel.state.pieces(r.t(o))}
    return r.kernel.state.finish(source="keras", input_channels=shape[ch], aliases=r.aliases,
                           alias_layouts=r.layouts, size_note=size_note, input_layout=layout,
                           outputs={k: v for k, v in returned.items() if v != INPUT},
                           module_types={p: r.types[p] for p in r.aliases})


def _image_input(model: Any, name: str | None) -> Any:
    """The model's image input: its only one, or the one named."""
    inputs = list(model.inputs)
    if name is not None:
        found = [k for k in inputs if k.name == name]
        if not found:
            raise RfieldError(f"{model.name} has no input {name!r}; its inputs: "
                              f"{', '.join(k.name for k in inputs)}")
        return found[0]
    if len(inputs) > 1:
        raise RfieldError(f"{model.name} has {len(inputs)} inputs "
                          f"({', '.join(k.name for k in inputs)}); name the image: "
                          "--input-name NAME")
    return inputs[0]
