"""Receptive fields of a Keras 3 model measured by back-propagation in its own backend.

As for torch (:mod:`.gradient`), this shares no code with the analysis: a float64
clone of the model gets positive weights scaled by fan-in, biases and norm shifts of
zero, batch norms and activations as identities and gates (sigmoid, softmax, tanh) as
0.5 + x / (2 + 2|x|), max pooling as average pooling, and norms whose statistics run
over positions as
(x + mean) / 2. Every path from an input position to a unit then carries a positive
product, so the gradient of a unit is non-zero exactly where the unit reads.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ..errors import RfieldError, require
from .gradient import Measured

BATCH = 8  # units measured in one backward pass (JAX)
GATES = {"sigmoid", "hard_sigmoid", "tanh", "softmax", "softsign", "log_softmax"}


def _activation_name(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name", value.get("class_name", ""))
    return str(getattr(value, "__name__", value))


def _clone_layer(keras: Any, layer: Any) -> Any:
    """The float64, linearised copy of one layer (built from its config)."""
    if not isinstance(layer, keras.layers.Layer):  # a keras.ops call: no weights
        return layer
    if isinstance(layer, keras.Model):  # nested: rebuilt free of its build size
        return _clone_model(keras, layer, None)
    cls, cfg = type(layer), layer.get_config()
    cfg["dtype"] = "float64"
    name = cls.__name__
    if name.startswith("MaxPooling") and cls.__module__.startswith("keras."):
        cls = getattr(keras.layers, name.replace("Max", "Average"))
    if "activation" in cfg:
        gate = _activation_name(cfg["activation"]) in GATES
        cfg["activation"] = _bounded_gate(keras) if gate else "linear"
    if name == "ReLU":
        cfg.update(max_value=None, threshold=0.0)
    if name == "Rescaling":  # input scaling (x / 255) would make every gate square ~0
        cfg.update(scale=1.0, offset=0.0)
    if name == "Softmax":
        return keras.layers.Activation(_bounded_gate(keras), name=layer.name, dtype="float64")
    if name == "BatchNormalization":
        # an identity, as in the torch measurement: Keras' batch norm passes its input
        # gradient through float32, where a far unit's dependency (1e-40 after a hundred
        # layers) flushes to exactly 0 and the measured field comes out too small
        return _passing(keras)(name=layer.name, dtype="float64")
    if name in ("LayerNormalization", "GroupNormalization"):
        axes = list(range(1, 10)) if name == "GroupNormalization" else cfg["axis"]
        return _mean_mix(keras)(axes, name=layer.name, dtype="float64")
    return cls.from_config(cfg)


def _bounded_gate(keras: Any):
    def gate(x):
        """Strictly increasing and within (0.5, 1) for x > 0: x * gate neither squares
        the magnitude (as an identity or a small gate would, to 0 or to inf within
        a few blocks) nor cuts a dependency (as a saturated sigmoid's derivative does)."""
        return 0.5 + 0.5 * x / (1 + keras.ops.abs(x))
    return gate


def _passing(keras: Any):
    class Passing(keras.layers.Layer):
        """Its input, whatever the call's keywords (training, mask)."""

        def call(self, x, **_kwargs):
            return x

    return Passing


def _mean_mix(keras: Any):
    class MeanMix(keras.layers.Layer):
        """(x + mean over the norm's axes) / 2: reads its position and the statistics."""

        def __init__(self, axes, **kwargs):
            super().__init__(**kwargs)
            self.axes = axes

        def call(self, x):
            rank = len(x.shape)
            axes = sorted({int(a) % rank for a in np.atleast_1d(self.axes) if int(a) < rank})
            return (x + keras.ops.mean(x, axis=axes, keepdims=True)) / 2

    return MeanMix


def _clone_model(keras: Any, model: Any, input_shape: tuple | None) -> Any:
    """A linearised clone on an input of ``input_shape`` (None: any spatial size)."""
    clone = lambda lay: _clone_layer(keras, lay)
    if isinstance(model, keras.Sequential) and input_shape is None and not getattr(
            model, "_functional", None):  # nested and never built on its own input
        return keras.Sequential([clone(lay) for lay in model.layers], name=model.name)
    if input_shape is None:
        shape = list(model.inputs[0].shape[1:])
        channels = -1 if _channels_last(model) else 0
        input_shape = tuple(v if d == len(shape) + channels or d == channels else None
                            for d, v in enumerate(shape))
    new_input = keras.Input(input_shape, dtype="float64")
    if isinstance(model, keras.Sequential):  # built on its input, so it has a graph
        return keras.Sequential([new_input] + [clone(lay) for lay in model.layers],
                                name=model.name)
    return keras.models.clone_model(model, input_tensors=new_input, clone_function=clone)


def _channels_last(model: Any) -> bool:
    for layer in model._flatten_layers(include_self=False, recursive=True):
        fmt = getattr(layer, "data_format", None)
        if fmt in ("channels_last", "channels_first"):
            return fmt == "channels_last"
    return True


def positive_copy(model: Any, seed: int = 0, input_shape: tuple | None = None) -> Any:
    """The measurement's copy; on an input of ``input_shape`` (without batch) if given."""
    keras = require("keras", "keras")
    from ..models.keras_models import numpy_initialisers

    try:
        with numpy_initialisers(keras):
            m = _clone_model(keras, model, input_shape)
    except Exception as exc:
        raise RfieldError(f"the measurement cannot rebuild {model.name} from its layers' "
                          f"configs ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
                          "it reads Functional and Sequential models") from None
    rng = np.random.default_rng(seed)
    for layer in m._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.Model):
            continue  # its layers come in this walk too
        depthwise_layer = type(layer).__name__.startswith("DepthwiseConv")
        for var in layer.weights:
            leaf = var.path.rsplit("/", 1)[-1]
            shape = tuple(var.shape)
            if leaf in ("bias", "beta", "moving_mean", "mean"):
                value = np.zeros(shape)
            elif len(shape) < 2:
                value = np.ones(shape)
            else:  # a depthwise kernel (k, k, in, multiplier) sums over k * k only
                depthwise = depthwise_layer or "depthwise" in leaf
                fan_in = int(np.prod(shape[:-2] if depthwise else shape[:-1])) or 1
                value = (0.5 + 0.5 * rng.random(shape)) / fan_in
            var.assign(value.astype(np.float64))
    return m


def outputs_by_name(model: Any) -> dict[str, Any]:
    """Layer or keras.ops call name -> its output in ``model``'s graph (a nested model's
    ``.output`` is its own inner tensor; a layer called twice: its last call)."""
    made = {}
    # a Sequential keeps its graph in the functional model it builds from its layers
    graph = model if hasattr(model, "_nodes_by_depth") else getattr(model, "_functional",
                                                                   None)
    if graph is None:
        raise RfieldError(f"the {type(model).__name__} has no graph of layers to measure "
                          "(build it on an input first: keras.Input(shape) as its first layer)")
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input and node.outputs:
                made[node.operation.name] = node.outputs[0]
    return made


def _input_gradients(keras: Any, sub: Any, x: np.ndarray, picks: list) -> list[np.ndarray]:
    """d(sum over channels of output o at unit u) / d input, for each (o, index)."""
    backend = keras.backend.backend()
    grads: list[np.ndarray] = []
    if backend == "jax":
        import jax

        run = lambda v: tuple(keras.tree.flatten(sub(v, training=False)))
        from .jax_gradient import batched_gradients

        shapes = [y.shape for y in jax.eval_shape(run, x)]
        grads = batched_gradients(jax, run, x, shapes, picks)
    elif backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        for o, index in picks:
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = keras.tree.flatten(sub(xt, training=False))[o]
                pick = tf.reduce_sum(y * tf.constant(_onehot(y.shape, index)))
            grads.append(tape.gradient(pick, xt).numpy())
    elif backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        outs = keras.tree.flatten(sub(xt, training=False))
        for o, index in picks:
            (g,) = torch.autograd.grad(outs[o][index].sum(), xt, retain_graph=True)
            grads.append(g.detach().cpu().numpy())
    else:
        raise RfieldError(f"the measurement runs on the jax, tensorflow and torch backends, "
                          f"not {backend}")
    return grads


def _onehot(shape, index) -> np.ndarray:
    a = np.zeros(tuple(shape))
    a[index] = 1.0
    return a


def measure(model: Any, input_size: tuple[int, ...], layers: list[str],
            units: dict[str, list[tuple[int, ...]]], layouts: dict[str, tuple],
            input_layout: tuple, seed: int = 0) -> dict[str, list[Measured]]:
    """Boxes of the given units at the outputs of top-level ``layers`` ("" is the
    model's output). ``layouts`` says which dim of each output holds which input
    axis (None: batch, channels); ``input_layout`` the same for the input."""
    keras = require("keras", "keras")
    with _float64(keras):
        return _measure(keras, model, input_size, layers, units, layouts, input_layout, seed)


def _float64(keras: Any):
    """JAX computes in float32 unless x64 is enabled (float64 is silently dropped)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _input_shape(model: Any, input_size: tuple[int, ...], input_layout: tuple) -> tuple:
    """One input of the analysed size: batch 1, the model's channels, the spatial
    sizes where ``input_layout`` puts them."""
    shape = [1] * len(input_layout)
    channel_dim = input_layout.index(None, 1)
    shape[channel_dim] = int(model.inputs[0].shape[channel_dim])
    for d, ax in enumerate(input_layout):
        if ax is not None:
            shape[d] = input_size[ax]
    return tuple(shape)


def _measure(keras, model, input_size, layers, units, layouts, input_layout, seed):
    shape = _input_shape(model, input_size, input_layout)
    m = positive_copy(model, seed, shape[1:])
    tensors = []
    made = outputs_by_name(m)
    for name in layers:
        if not name:
            tensors.append(keras.tree.flatten(m.outputs)[0])
            continue
        if "/" in name:
            raise RfieldError(f"layer {name!r} is inside a nested model: the measurement "
                              "reads the outputs of the model's own layers")
        try:
            tensors.append(made[name])
        except KeyError:
            raise RfieldError(f"layer {name!r} has no single output to measure") from None
    sub = keras.Model(m.inputs, tensors)
    x = np.ones(shape, dtype=np.float64)
    picks, where = [], []
    outs = keras.tree.flatten(sub.compute_output_spec(keras.KerasTensor(shape)))
    for o, name in enumerate(layers):
        layout = layouts[name]
        dims = {a: d for d, a in enumerate(layout) if a is not None}
        size = tuple(int(outs[o].shape[dims[a]]) for a in range(len(dims)))
        for unit in units[name]:
            index = [0 if a is None else unit[a] for a in layout]
            index = tuple(slice(None) if a is None and d != 0 else i
                          for d, (a, i) in enumerate(zip(layout, index)))
            picks.append((o, index))
            where.append((name, unit, size))
    result: dict[str, list[Measured]] = {name: [] for name in layers}
    nd = len(input_size)
    in_dims = {a: d for d, a in enumerate(input_layout) if a is not None}
    for g, (name, unit, size) in zip(_input_gradients(keras, sub, x, picks), where):
        hit = np.abs(g[0]) > 0
        box = []
        for ax in range(nd):
            other = tuple(d - 1 for d in range(1, g.ndim) if d != in_dims[ax])
            idx = np.flatnonzero(hit.any(axis=other))
            # (0, -1): the unit reads nothing there (only padding)
            box.append((int(idx[0]), int(idx[-1])) if len(idx) else (0, -1))
        result[name].append(Measured(name, tuple(unit), tuple(box), size))
    return result


def effective_rf(model: Any, input_size: tuple[int, ...], layer: str, layout: tuple,
                 input_layout: tuple, samples: int = 16, seed: int = 0):
    """The effective receptive field (see :mod:`.erf`) of a Keras model with its own
    weights: the mean |gradient| of the centre unit of ``layer`` ("" the output) over
    ``samples`` Gaussian-noise inputs, summed over channels."""
    from .erf import ERF, area_ratios, spread

    keras = require("keras", "keras")
    made = outputs_by_name(model)
    if layer and layer not in made:
        raise RfieldError(f"layer {layer!r} is not one of the model's own layers (a layer "
                          "inside a nested model has no output here)")
    out = made[layer] if layer else keras.tree.flatten(model.outputs)[0]
    sub = keras.Model(model.inputs, [out])
    channel_dim = input_layout.index(None, 1)
    shape = _input_shape(model, input_size, input_layout)
    (spec,) = keras.tree.flatten(sub.compute_output_spec(keras.KerasTensor(shape)))
    index = tuple(0 if d == 0 else slice(None) if ax is None else int(spec.shape[d]) // 2
                  for d, ax in enumerate(layout))
    rng = np.random.default_rng(seed)
    heat = np.zeros(input_size)
    for _ in range(samples):  # the input's spatial dims are in axis order
        x = rng.standard_normal(shape).astype(np.float32)
        (g,) = _input_gradients(keras, sub, x, [(0, index)])
        heat += np.abs(g[0]).sum(axis=channel_dim - 1)
    h = heat / samples
    return ERF(layer or "output", h, area_ratios(h), spread(h), None, samples)


def target_erf(model: Any, a: Any, node: str, layer: str, ask: Any):
    """``rfield erf`` on a Keras model: the ERF of ``node`` (the output of ``layer``)
    with the weights the model has (a .keras file's, or random)."""
    if ask.images or ask.weights:
        raise RfieldError("--images and --weights are read for PyTorch models; a Keras "
                          "model brings its weights (a .keras file, or load them in the "
                          "factory)")
    g = a.graph
    f = a.fields[node]
    name = layer or next((m for m, n in g.aliases.items() if n == node), "")
    e = effective_rf(model, g.input_size, layer, g.alias_layouts.get(name),
                     g.provenance.input_layout, samples=ask.samples, seed=ask.seed)
    e.node, e.rf = node, f.local_rf if f.is_global else f.rf
    return e
