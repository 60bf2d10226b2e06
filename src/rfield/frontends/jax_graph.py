"""JAX programs read from their jaxpr: Flax linen and NNX modules, Equinox, Haiku,
any function of an image.

The program is traced abstractly (``jax.make_jaxpr`` on a ``ShapeDtypeStruct``:
nothing runs, parameters are shapes), then each equation is handed to its handler
in :mod:`.jax_ops`, which makes one call of the shared kernel. Values that do not
depend on the image are of two kinds: parameters (abstract, never needed) and
constants built inside the program (a resize's weight matrix from ``iota``,
nearest-neighbour indices), which are computed here so their handlers can read
them. Calls (``jit``, custom derivatives, ``remat``) are read through; names
come from the name stack, which Flax linen fills with module paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.graph import INPUT, Graph
from ..errors import ShapeError, TargetError, require
from ..models.jax_programs import input_shape
from .kernel import Kernel, T, Unknown

#: a constant with more elements than this is not computed (its users are unknown)
FOLD_LIMIT = 1 << 22
#: primitives whose body is another jaxpr, read through
CALLS = ("pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
         "custom_vjp_call_jaxpr", "remat", "checkpoint", "custom_lin", "named_call")
_BODY = ("jaxpr", "call_jaxpr", "fun_jaxpr")
#: pointwise activations whose elementwise nodes are named by the call (jax.nn.relu is
#: ``max`` inside its call); softmax and its kin also reduce, so their parts keep names
NAMED_CALLS = frozenset({
    "relu", "relu6", "silu", "swish", "gelu", "sigmoid", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "elu", "celu", "selu", "softplus",
    "soft_sign", "log_sigmoid", "mish", "squareplus", "sparse_plus"})
_WRAPPED = re.compile(r"^[\w.-]+\((.*)\)$")  # jvp(ResNet) -> ResNet


def scope_of(name_stack: Any) -> str:
    """The module path a name stack holds, without transformation wrappers."""
    parts = []
    for part in str(name_stack).split("/"):
        while (m := _WRAPPED.match(part)) is not None:
            part = m.group(1)
        if part:
            parts.append(part)
    return "/".join(parts)


def _join(outer: str, inner: str) -> str:
    if not inner or inner == outer or inner.startswith(outer + "/"):
        return inner or outer
    return f"{outer}/{inner}" if outer else inner


class JaxReader:
    """One walk of a jaxpr into the kernel."""

    def __init__(self, input_size: tuple[int, ...], strict: bool,
                 kernel: Kernel | None = None) -> None:
        from .jax_ops import HANDLERS

        self.handlers = HANDLERS
        self.kernel = kernel or Kernel(input_size, strict, "JAX", self._naming, self._where)
        self.consts: dict[Any, Any] = {}
        self.scope = ""
        self.prim = ""
        self.called: str | None = None  # the NAMED_CALLS call being read, if any
        self.aliases: dict[str, str] = {}
        self.layouts: dict[str, tuple] = {}

    def _naming(self, kind: str) -> tuple[str, str | None]:
        return (f"{self.scope}/{kind}" if self.scope else kind), (self.scope or None)

    def _where(self) -> str:
        return f"{self.prim} in {self.scope!r}" if self.scope else \
            (self.prim or "the program's input")

    # ------------------------------------------------------------------ values

    def t(self, var: Any) -> T:
        aval = getattr(var, "aval", None)
        shape = getattr(aval, "shape", None)
        return T(var, None if shape is None else tuple(int(v) for v in shape))

    def tracked(self, var: Any) -> bool:
        return not hasattr(var, "val") and self.kernel.state.has(self.t(var))

    def value(self, var: Any) -> Any:
        """The value of a literal or a computed constant; None for anything else."""
        if hasattr(var, "val"):
            return var.val
        return self.consts.get(var)

    def array(self, var: Any) -> np.ndarray | None:
        v = self.value(var)
        return None if v is None else np.asarray(v)

    def copy(self, dst: Any, src: Any) -> None:
        """What ``dst`` (a variable of another jaxpr) is: what ``src`` is."""
        if self.tracked(src):
            self.kernel.state.copy(self.t(src), self.t(dst))
        elif self.value(src) is not None:
            self.consts[dst] = self.value(src)

    # ------------------------------------------------------------------ the walk

    def run(self, jaxpr: Any, prefix: str) -> None:
        for eqn in jaxpr.eqns:
            outer, self.scope = self.scope, _join(prefix, scope_of(eqn.source_info.name_stack))
            self.prim = eqn.primitive.name
            try:
                self.eqn(eqn)
            finally:
                self.scope = outer

    def eqn(self, eqn: Any) -> None:
        name = eqn.primitive.name
        tracked = [v for v in eqn.invars if self.tracked(v)]
        if not tracked:
            self.fold(eqn)
            return
        if name in CALLS and any(k in eqn.params for k in _BODY):
            self.call(eqn)
            return
        outs = [self.t(v) for v in eqn.outvars]
        handler = self.handlers.get(name)
        try:
            if handler is None:
                raise Unknown(name)
            handler(self, eqn, outs)
        except Unknown as exc:
            self.kernel.state.unknown(str(exc), [self.t(v) for v in tracked], outs, name)
        self.note(outs)

    def note(self, outs: Sequence[T]) -> None:
        """The latest node made in a module is its output, for every enclosing module."""
        for o in outs:
            if not self.kernel.state.has(o):
                continue
            if not self.scope:
                return
            parts = self.scope.split("/")
            for suffix, node, layout in self.kernel.state.pieces(o):
                if node == INPUT:
                    return
                for i in range(1, len(parts) + 1):
                    path = "/".join(parts[:i]) + suffix
                    self.aliases[path], self.layouts[path] = node, layout
            return

    def fold(self, eqn: Any) -> None:
        """Compute an equation whose inputs are all constants (small ones only)."""
        vals = [self.value(v) for v in eqn.invars]
        if any(v is None for v in vals):
            return
        if any(int(np.prod(getattr(v.aval, "shape", ()))) > FOLD_LIMIT for v in eqn.outvars):
            return
        try:
            params = eqn.primitive.get_bind_params(eqn.params)
            subfuns, params = params if isinstance(params, tuple) else ([], params)
            out = eqn.primitive.bind(*subfuns, *vals, **params)
        except Exception:  # a constant nobody can compute here stays a parameter
            return
        outs = out if eqn.primitive.multiple_results else [out]
        for var, val in zip(eqn.outvars, outs):
            self.consts[var] = val

    def inline(self, closed: Any, operands: Sequence[Any]) -> list[Any]:
        """Read a (closed) jaxpr in place on ``operands``: its constants known, its
        inputs what the operands are; its output variables. (Calls, cond branches.)"""
        jaxpr = getattr(closed, "jaxpr", closed)
        self.consts.update(zip(jaxpr.constvars, getattr(closed, "consts", ())))
        for inner, outer in zip(jaxpr.invars, operands):
            self.copy(inner, outer)
        self.run(jaxpr, self.scope)
        return list(jaxpr.outvars)

    def call(self, eqn: Any) -> None:
        """A call: its body read in place."""
        body = next(eqn.params[k] for k in _BODY if k in eqn.params)
        name = eqn.params.get("name")
        outer_call = self.called
        if self.called is None and isinstance(name, str) and name in NAMED_CALLS:
            self.called = name
        try:
            for outer, inner in zip(eqn.outvars, self.inline(body, eqn.invars)):
                self.copy(outer, inner)
        finally:
            self.called = outer_call


def read_function(kernel: Kernel, fn: Callable[..., Any], ins: Sequence[T],
                  outs: Sequence[T]) -> None:
    """Read ``fn(*ins)`` into another front-end's kernel (a Keras layer with its own
    ``call()`` on the JAX backend): its jaxpr's inputs are the tensors ``ins`` (whose
    ``obj`` has a dtype), its outputs become ``outs``."""
    jax = require("jax", "jax")
    specs = [jax.ShapeDtypeStruct(t.shape, getattr(t.obj, "dtype", "float32")) for t in ins]
    try:
        closed = jax.make_jaxpr(fn)(*specs)
    except Exception as exc:  # the layer cannot be traced on its own: not followed
        raise Unknown(f"a call JAX cannot trace ({type(exc).__name__})") from None
    jaxpr = closed.jaxpr
    if len(jaxpr.outvars) != len(outs):
        raise Unknown("a call whose outputs do not match its layer's")
    r = JaxReader(kernel.state.graph.input_size, kernel.state.strict, kernel)
    r.consts.update(zip(jaxpr.constvars, closed.consts))
    for var, t in zip(jaxpr.invars, ins):
        kernel.state.copy(t, r.t(var))
    r.run(jaxpr, "")
    for var, o in zip(jaxpr.outvars, outs):
        if r.tracked(var):
            kernel.state.copy(r.t(var), o)


def graph_from_jax(fn: Callable[..., Any], input_size: Sequence[int], extra: tuple = (),
                   channels: int = 3, layout: str = "nhwc", strict: bool = False,
                   size_note: str | None = None, dtype: str = "float32") -> Graph:
    """The graph of ``fn(image, *extra)`` at ``input_size`` (spatial): ``extra`` are
    abstract arguments (parameters) the image's field does not depend on."""
    jax = require("jax", "jax")
    input_size = tuple(int(v) for v in input_size)
    nd = len(input_size)
    if not 1 <= nd <= 3:
        raise TargetError(f"rfield reads 1-D to 3-D inputs, got {list(input_size)}")
    shape = input_shape(input_size, channels, layout)
    spec = jax.ShapeDtypeStruct(shape, dtype)
    try:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(spec, *extra)
    except Exception as exc:  # the user's program failing, said in one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShapeError(f"JAX cannot run the program on an input of shape {list(shape)}: "
                         f"{text}") from None
    r = JaxReader(input_size, strict)
    jaxpr = closed.jaxpr
    r.consts.update(zip(jaxpr.constvars, closed.consts))
    dims = range(1, 1 + nd) if layout == "nhwc" else range(2, 2 + nd)
    in_layout = tuple(d - dims[0] if d in dims else None for d in range(len(shape)))
    r.kernel.state.bind(r.t(jaxpr.invars[0]), INPUT, in_layout)
    r.run(jaxpr, "")
    if not r.kernel.state.graph.nodes:
        raise TargetError("no operation of the program reads its input")
    leaves = jax.tree_util.tree_flatten_with_path(out_shape)[0]
    names = [re.sub(r"[\[\]'\".]+", ".", jax.tree_util.keystr(path)).strip(".")
             for path, _ in leaves]
    returned: dict[str, str] = {}
    for i, (name, var) in enumerate(zip(names, jaxpr.outvars)):
        if r.tracked(var):
            base = "output" if len(names) == 1 else f"output.{name or i}"
            for suffix, node, piece in r.kernel.state.pieces(r.t(var)):
                returned[base + suffix] = node
                r.aliases.setdefault(base + suffix, node)
                r.layouts.setdefault(base + suffix, piece)
    return r.kernel.state.finish(source="jax", input_channels=channels, aliases=r.aliases,
                           alias_layouts=r.layouts, size_note=size_note,
                           input_layout=in_layout,
                           outputs={k: v for k, v in returned.items() if v != INPUT})
