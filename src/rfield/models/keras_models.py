"""Keras targets: ``keras:NAME`` (keras.applications, weights=None), a ``.keras`` file
(loaded with safe_mode on, never compiled) and a keras.Model object."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import TargetError, require
from ..safeio import check_regular

#: the largest .keras file read (the archive holds the weights too)
MAX_KERAS_FILE = 4 * 1024 ** 3


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def application_names(keras: Any) -> list[str]:
    apps = keras.applications
    return sorted(n for n in dir(apps) if n[:1].isupper() and callable(getattr(apps, n)))


@contextlib.contextmanager
def numpy_initialisers(keras: Any) -> Iterator[None]:
    """Random weights drawn by numpy while a model is built: on the JAX backend each
    initialiser compiles once per weight shape (15 s for EfficientNetB0, 0.3 s so)."""
    import importlib

    backend = importlib.import_module(f"keras.src.backend.{keras.backend.backend()}.random")
    rng = np.random.default_rng(0)
    dtype_of = lambda d: np.dtype(keras.backend.standardize_dtype(d or keras.config.floatx()))
    draw = {
        "normal": lambda shape, mean=0.0, stddev=1.0, dtype=None, seed=None:
            np.asarray(mean + stddev * rng.standard_normal(shape), dtype_of(dtype)),
        "truncated_normal": lambda shape, mean=0.0, stddev=1.0, dtype=None, seed=None:
            np.asarray(mean + stddev * np.clip(rng.standard_normal(shape), -2, 2),
                       dtype_of(dtype)),
        "uniform": lambda shape, minval=0.0, maxval=1.0, dtype=None, seed=None:
            np.asarray(rng.uniform(minval, maxval, shape), dtype_of(dtype)),
    }
    saved = {name: getattr(backend, name) for name in draw}
    for name, f in draw.items():
        setattr(backend, name, f)
    try:
        yield
    finally:
        for name, f in saved.items():
            setattr(backend, name, f)


def build_application(name: str, kwargs: dict | None = None,
                      input_size: tuple[int, ...] | None = None) -> Any:
    """keras.applications.NAME with weights=None (nothing is downloaded); at
    ``input_size`` when one is given (channels last, 3 channels unless kwargs say)."""
    keras = require("keras", "keras")
    names = application_names(keras)
    if name not in names:
        near = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise TargetError(f"keras.applications has no model {name!r}{hint}")
    if input_size is not None and len(input_size) != 2:
        raise TargetError(f"keras:{name} is a 2-D model: it needs 2 input sizes, got "
                          f"{list(input_size)}")
    args: dict[str, Any] = {"weights": None, **(kwargs or {})}
    if input_size is not None and "input_shape" not in args:
        args["input_shape"] = (*input_size, 3)
    try:
        with numpy_initialisers(keras):
            return getattr(keras.applications, name)(**args)
    except Exception as exc:
        raise TargetError(f"keras:{name} could not be built: {_error_line(exc)}") from None


def keras_model(value: Any, kwargs: dict | None = None,
                input_size: tuple[int, ...] | None = None) -> Any:
    """The keras.Model a Keras target names: ``keras:NAME``, a .keras file, or itself."""
    if not isinstance(value, str):
        return value
    if value.lower().endswith(".keras"):
        return load_keras_file(value)
    return build_application(value.partition(":")[2], kwargs, input_size)


def load_keras_file(path: str) -> Any:
    """A .keras archive, with Keras' safe_mode on: a file that needs unsafe
    deserialisation (a Lambda's bytecode) is refused."""
    keras = require("keras", "keras")
    check_regular(path, "Keras model file", MAX_KERAS_FILE)
    try:
        with numpy_initialisers(keras):  # the file's weights replace them
            return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "unsafe" in str(exc).lower():
            raise TargetError(f"{path}: the model needs unsafe deserialisation (a Lambda "
                              "layer's Python code); rfield never runs code from a file: "
                              "build it in Python and pass file.py:factory") from None
        raise TargetError(f"{path}: not a Keras model Keras can load: "
                          f"{_error_line(exc)}") from None
    except Exception as exc:
        raise TargetError(f"{path}: not a Keras model Keras can load: "
                          f"{_error_line(exc)}") from None
