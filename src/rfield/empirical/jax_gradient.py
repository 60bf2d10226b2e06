"""Back-propagation through a JAX program, for ``rfield verify`` and the tests.

It shares no code with the analysis. The program's jaxpr is run by a small
interpreter in float64 (``jax.enable_x64``) on an input of ones, with every step
made positive and bounded, so that no path cancels, overflows or underflows and
a zero gradient means "not read": parameters are ones, kernels and matrices
|W| / fan-in (a resize's weight matrix keeps its zeros), subtraction adds,
max pooling averages, activations, exponentials and roots become the bounded
increasing gate 0.5 + 0.5 x / (1 + |x|), a product of two image-dependent values
gates one by the other, and a ``cond`` whose branch depends on the image runs
every branch (its field is their union). ``jax.vjp`` then gives, per chosen
unit, which input positions it depends on.

Units are measured at the program's returned values and at module outputs: the
last image-dependent value made inside each name-stack path (Flax linen's module
paths; NNX's when traced with named scopes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import RfieldError, require
from .gradient import Measured

BATCH = 8  # units whose backward passes run as one batch
LARGE_INPUT = 1 << 20  # input values past which they run one at a time

_UNWRAP = re.compile(r"^[\w.-]+\((.*)\)$")
_CALL_BODIES = ("jaxpr", "call_jaxpr", "fun_jaxpr")
_MOVES = {"reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims", "slice",
          "dynamic_slice", "gather", "pad", "concatenate", "rev", "split", "copy", "copy_p",
          "sort", "cumsum", "cumprod", "cummax", "cummin", "iota", "dynamic_update_slice",
          "scatter", "scatter-add", "scatter_add", "select_and_gather_add", "argmax", "argmin",
          "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor", "is_finite",
          "stop_gradient", "optimization_barrier", "while", "scan"}
_AS_IS = {"neg", "abs", "sign", "floor", "ceil", "round", "reduce_precision", "real", "conj"}


def _path(name_stack: Any) -> str:
    parts = []
    for part in str(name_stack).split("/"):
        while (m := _UNWRAP.match(part)) is not None:
            part = m.group(1)
        if part:
            parts.append(part)
    return "/".join(parts)


class Positive:
    """The interpreter: runs a jaxpr on positive values, recording module outputs."""

    def __init__(self, jax: Any, real: bool = False) -> None:
        self.jax, self.lax, self.jnp = jax, jax.lax, jax.numpy
        self.made: dict[str, Any] = {}
        self.real = real  # run the program as it is (the ERF), only recording

    def f64(self, v: Any) -> Any:
        v = self.jnp.asarray(v)
        if self.real:
            return v
        return v.astype(self.jnp.float64) if self.jnp.issubdtype(v.dtype, self.jnp.floating) \
            else v

    def gate(self, x: Any) -> Any:
        return 0.5 + 0.5 * x / (1.0 + self.jnp.abs(x))

    def run(self, jaxpr: Any, consts: list, args: list, image: list[bool],
            scope: str = "") -> tuple[list, list[bool]]:
        env: dict[Any, Any] = {}
        dep: dict[Any, bool] = {}
        read = lambda v: self.f64(v.val) if hasattr(v, "val") else env[v]
        depends = lambda v: (not hasattr(v, "val")) and dep.get(v, False)
        for var, val in zip(jaxpr.constvars, consts):
            env[var] = self.f64(val)
        for var, val, d in zip(jaxpr.invars, args, image):
            env[var], dep[var] = val, d
        for eqn in jaxpr.eqns:
            path = _path(eqn.source_info.name_stack)
            here = path if not scope or path.startswith(scope) else \
                "/".join(p for p in (scope, path) if p)
            vals = [read(v) for v in eqn.invars]
            flags = [depends(v) for v in eqn.invars]
            calls = eqn.primitive.name == "cond" or any(k in eqn.params for k in _CALL_BODIES)
            outs = self.eqn(eqn, vals, flags, here) if any(flags) or calls \
                else self.plain(eqn, vals)
            for var, val in zip(eqn.outvars, outs):
                env[var], dep[var] = val, any(flags)
            if any(flags) and here and outs:
                parts = here.split("/")
                for i in range(1, len(parts) + 1):
                    self.made["/".join(parts[:i])] = outs[0]
        return [read(v) for v in jaxpr.outvars], [depends(v) for v in jaxpr.outvars]

    def plain(self, eqn: Any, vals: list) -> list:
        params = eqn.primitive.get_bind_params(eqn.params)
        subfuns, params = params if isinstance(params, tuple) else ([], params)
        out = eqn.primitive.bind(*subfuns, *vals, **params)
        outs = out if eqn.primitive.multiple_results else [out]
        return [self.f64(o) for o in outs]

    def eqn(self, eqn: Any, vals: list, flags: list[bool], scope: str) -> list:
        name = eqn.primitive.name
        p = eqn.params
        body = next((p[k] for k in _CALL_BODIES if k in p), None)
        if body is not None and name not in ("while", "scan", "cond"):
            jaxpr = getattr(body, "jaxpr", body)
            outs, _ = self.run(jaxpr, list(getattr(body, "consts", [])), vals, flags, scope)
            return outs
        if name == "cond" and not self.real:
            return self.cond(eqn, vals, flags, scope)
        if name in _MOVES or self.real:
            return self.plain(eqn, vals)
        if name in _AS_IS or name == "convert_element_type":
            x = next(v for v, f in zip(vals, flags) if f)
            return [self.f64(x)]
        return [self.numeric(eqn, name, vals, flags)]

    def numeric(self, eqn: Any, name: str, vals: list, flags: list[bool]) -> Any:
        jnp, p = self.jnp, eqn.params
        img = [v for v, f in zip(vals, flags) if f]
        fixed = [jnp.abs(v) for v, f in zip(vals, flags) if not f]
        if name in ("add", "add_any", "sub"):
            return sum(img + fixed)
        if name == "mul":
            return img[0] * (self.gate(img[1]) if len(img) > 1 else fixed[0])
        if name == "div":
            if flags[1]:
                return (vals[0] if flags[0] else jnp.abs(vals[0])) * self.gate(vals[1])
            return vals[0] / jnp.maximum(jnp.abs(vals[1]), 1e-12)
        if name in ("max", "min", "select_n", "clamp"):
            picked = img if name != "select_n" or not flags[0] else img[1:] or img
            return sum(picked) / len(picked)
        if name in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod"):
            axes = tuple(p["axes"])
            return jnp.mean(img[0], axis=axes)
        if name.startswith("reduce_window"):
            return self.pool(img[0], p)
        if name == "conv_general_dilated":
            return self.conv(vals, flags, p)
        if name == "dot_general":
            return self.dot(vals, flags, p)
        if len(img) == 1:  # activations, exponentials, roots, powers
            return self.gate(img[0])
        raise RfieldError(f"the measurement cannot run {name} on two image-dependent values")

    def pool(self, x: Any, p: dict) -> Any:
        args = (p["window_dimensions"], p["window_strides"], p["padding"], p["base_dilation"],
                p["window_dilation"])
        return self.lax.reduce_window(x, 0.0, self.lax.add, *args) / \
            float(np.prod(p["window_dimensions"]))

    def conv(self, vals: list, flags: list[bool], p: dict) -> Any:
        x, w = vals
        out_features = p["dimension_numbers"].rhs_spec[0]
        w = self.gate(w) if flags[1] else self.jnp.abs(w)
        w = w / max(1, w.size // w.shape[out_features])
        params = dict(p, preferred_element_type=None)
        return self.lax.conv_general_dilated_p.bind(x, w, **params)

    def dot(self, vals: list, flags: list[bool], p: dict) -> Any:
        (lc, rc), _ = p["dimension_numbers"]
        a, b = vals
        if not flags[0]:
            a = self.jnp.abs(a)
        b = self.gate(b) if flags[1] else self.jnp.abs(b)
        fan = int(np.prod([a.shape[d] for d in lc])) or 1
        params = dict(p, preferred_element_type=None)
        return self.lax.dot_general_p.bind(a, b, **params) / fan

    def cond(self, eqn: Any, vals: list, flags: list[bool], scope: str) -> list:
        branches = eqn.params["branches"]
        results = [self.run(b.jaxpr, list(b.consts), vals[1:], flags[1:], scope)[0]
                   for b in branches]
        if not flags[0]:  # the branch the program takes
            index = self.jnp.clip(vals[0].astype(self.jnp.int32), 0, len(branches) - 1)
            return [self.lax.select_n(index, *[r[i] for r in results])
                    for i in range(len(results[0]))]
        return [sum(r[i] for r in results) / len(results) for i in range(len(results[0]))]


def trace(fn: Callable[..., Any], input_shape: tuple[int, ...], extra: tuple) -> Any:
    jax = require("jax", "jax")
    spec = jax.ShapeDtypeStruct(input_shape, "float32")
    return jax.make_jaxpr(fn)(spec, *extra)


def _ones(jax: Any, spec: Any) -> Any:
    return jax.numpy.ones(spec.shape, jax.numpy.float64 if jax.numpy.issubdtype(
        spec.dtype, jax.numpy.floating) else spec.dtype)


def measure(fn: Callable[..., Any], extra: tuple, input_shape: tuple[int, ...],
            names: list[str], units: dict[str, list[tuple[int, ...]]],
            layouts: dict[str, tuple], input_layout: tuple) -> dict[str, list[Measured]]:
    """Boxes of the given units of each named value ("" or "output": the first returned;
    "output.K": returned leaf K; else a module path). ``layouts`` say which dim of each
    value holds which input axis; ``input_layout`` the same for the input."""
    jax = require("jax", "jax")
    closed = trace(fn, input_shape, extra)  # as the program runs: float32 constants
    keys = _output_keys(jax, fn, input_shape, extra)
    with jax.enable_x64(True):
        params = [_ones(jax, s) for s in jax.tree_util.tree_leaves(extra)]

        def values(x):
            made = named_values(jax, closed, keys, x, params)
            missing = [n for n in names if n not in made]
            if missing:
                raise RfieldError(f"{missing[0]!r} is neither a module path nor a returned "
                                  "value of the program")
            return tuple(made[n] for n in names)

        x = np.ones(input_shape)
        shapes = [v.shape for v in jax.eval_shape(values, x)]
        picks, where = [], []
        for o, name in enumerate(names):
            layout = layouts[name]
            if layout is None or not any(a is not None for a in layout):
                raise RfieldError(f"{name!r} holds no map whose positions rfield can place "
                                  "(tokens): name a module that returns a map")
            for unit in units[name]:
                picks.append((o, unit_index(layout, unit)))
                where.append((name, unit))
        grads = batched_gradients(jax, values, x, shapes, picks)
    result: dict[str, list[Measured]] = {n: [] for n in names}
    in_dims = {a: d for d, a in enumerate(input_layout) if a is not None}
    for g, (name, unit) in zip(grads, where):
        hit = np.abs(g) > 0
        box = []
        for ax in range(len(in_dims)):
            other = tuple(d for d in range(g.ndim) if d != in_dims[ax])
            idx = np.flatnonzero(hit.any(axis=other))
            box.append((int(idx[0]), int(idx[-1])) if len(idx) else (0, -1))
        layout = layouts[name]
        shape = shapes[names.index(name)]
        size = tuple(int(shape[layout.index(a)]) for a in range(len(in_dims)))
        result[name].append(Measured(name, tuple(unit), tuple(box), size))
    return result


def named_values(jax: Any, closed: Any, keys: list, x: Any, params: list,
                 real: bool = False) -> dict[str, Any]:
    """One run of the program on ``x``: every module output and returned value by name
    ("" the first returned)."""
    interp = Positive(jax, real)
    outs, _ = interp.run(closed.jaxpr, list(closed.consts), [x, *params],
                         [True] + [False] * len(params))
    made = dict(interp.made, **dict(zip(keys, outs)))
    made[""] = made.get("output", outs[0])
    return made


def unit_index(layout: tuple, unit: tuple) -> tuple:
    """The index of ``unit`` in a value laid out as ``layout``: batch 0, every channel."""
    return tuple(0 if d == 0 and a is None else slice(None) if a is None else unit[a]
                 for d, a in enumerate(layout))


def _shape(graph: Any, options: dict) -> tuple[int, ...]:
    from ..models.jax_programs import input_shape

    return input_shape(graph.input_size, graph.input_channels or 3,
                       options.get("layout") or "nhwc")


def _output_keys(jax: Any, fn: Callable[..., Any], input_shape: tuple, extra: tuple) -> list:
    spec = jax.ShapeDtypeStruct(input_shape, "float32")
    out = jax.eval_shape(fn, spec, *extra)
    leaves = jax.tree_util.tree_flatten_with_path(out)[0]
    if len(leaves) == 1:
        return ["output"]
    return ["output." + re.sub(r"[\[\]'\".]+", ".", jax.tree_util.keystr(p)).strip(".")
            for p, _ in leaves]


def batched_gradients(jax: Any, values: Callable, x: np.ndarray, shapes: list,
                      picks: list) -> list[np.ndarray]:
    """d(sum over the picked slice of value o) / d input, for each (o, index): one
    forward pass, the units' backward passes batched (``BATCH`` a compilation)."""
    @jax.jit
    def back(v, cots):
        return jax.vmap(jax.vjp(values, v)[1])(cots)[0]

    grads: list[np.ndarray] = []
    # a large input (a deep stage measured whole at 1000 px and more) keeps one backward
    # pass at a time: batched, its residuals would take BATCH times the memory
    batch = (min(BATCH, len(picks)) if x.size <= LARGE_INPUT else 1) or 1
    for start in range(0, len(picks), batch):
        chunk = picks[start:start + batch]
        cots = [np.zeros((batch, *shape)) for shape in shapes]
        for k, (o, index) in enumerate(chunk):
            cots[o][(k,) + tuple(index)] = 1.0
        got = np.asarray(back(x, tuple(cots)))
        grads.extend(got[k] for k in range(len(chunk)))
    return grads


def measure_target(target: Any, graph: Any, names: list[str], units: dict, layouts: dict,
                   options: dict) -> dict[str, list[Measured]]:
    """:func:`measure` for a JAX target as ``rfield verify`` holds it ("" is the
    program's first returned value)."""
    from ..models.jax_programs import program

    shape = _shape(graph, options)
    prog = program(target, shape, options.get("variables"))
    layouts = {n: layouts.get(n) or graph.alias_layouts.get(n or "output") for n in names}
    with prog.scopes():
        return measure(prog.fn, prog.extra, shape, names, units, layouts,
                       graph.provenance.input_layout)


def target_erf(model: Any, options: dict, a: Any, node: str, name: str, ask: Any) -> Any:
    """``rfield erf`` on a JAX target: the mean |gradient| of the centre unit of
    ``name`` (a module path or returned value) over Gaussian-noise inputs, summed
    over channels, through the program as it is (linen modules with random
    variables from ``seed``; NNX modules and functions with what they hold)."""
    from ..models.jax_programs import is_linen, program
    from .erf import ERF, area_ratios, spread

    if ask.images or ask.weights:
        raise RfieldError("--images and --weights are read for PyTorch models; pass a JAX "
                          "model with its variables from the factory")
    jax = require("jax", "jax")
    g = a.graph
    shape = _shape(g, options)
    seed, samples = ask.seed, ask.samples
    variables = options.get("variables")
    if variables is None and is_linen(model):
        variables = model.init(jax.random.key(seed), np.zeros(shape, np.float32))
    prog = program(model, shape, variables)
    with prog.scopes():
        closed = trace(prog.fn, shape, prog.extra)
        keys = _output_keys(jax, prog.fn, shape, prog.extra)
    params = jax.tree_util.tree_leaves(prog.extra)
    layout = g.alias_layouts.get(name or "output")
    size = g.nodes[node].size

    centre_unit = tuple(n // 2 for n in size)

    def centre(x):
        made = named_values(jax, closed, keys, x, params, real=True)
        return made.get(name, made[""])[unit_index(layout, centre_unit)].sum()

    grad = jax.jit(jax.grad(centre))
    rng = np.random.default_rng(seed)
    channel_dim = g.provenance.input_layout.index(None, 1)
    heat = np.zeros(g.input_size)
    for _ in range(samples):
        x = rng.standard_normal(shape).astype(np.float32)
        heat += np.abs(np.asarray(grad(x))[0]).sum(axis=channel_dim - 1)
    h = heat / samples
    e = ERF(name or "output", h, area_ratios(h), spread(h), None, samples)
    f = a.fields[node]
    e.node, e.rf = node, f.local_rf if f.is_global else f.rf
    return e
