"""One error base class; specific errors also subclass the matching built-in.

The library raises these; only the command line prints them and exits with 2.
"""

from __future__ import annotations


class RfieldError(Exception):
    """Base of every error rfield raises on purpose."""


class SpecError(RfieldError, ValueError):
    """A layer spec (file, string or Python list) is malformed."""


class ShapeError(RfieldError, ValueError):
    """Sizes do not fit: an output below 1, a merge of different sizes."""


class TargetError(RfieldError, ValueError):
    """The thing to analyse cannot be found or loaded."""


class QueryError(RfieldError, ValueError):
    """A query names a node or unit that does not exist."""


class UnsupportedError(RfieldError, NotImplementedError):
    """A model uses an operator rfield does not know (in strict mode)."""


class MissingExtraError(RfieldError, ImportError):
    """An optional dependency is not installed; the message says what to install."""


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to about ``limit`` characters: a value echoed in a message
    may be hostile (a YAML alias bomb, a megabyte string)."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 4
    r.maxlevel = 2
    text = r.repr(value)
    return text if len(text) <= limit + 10 else text[:limit] + "..."


def require(module: str, extra: str):
    """Import an optional dependency or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:
        import importlib.util

        if not isinstance(exc, ImportError) or \
                importlib.util.find_spec(module.split(".")[0]) is not None:
            # installed, but it fails to import (Keras without the backend it is set to)
            line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            hint = ""
            if module.split(".")[0] == "keras":
                import os

                hint = (f" (Keras 3 runs on the backend KERAS_BACKEND names, "
                        f"{os.environ.get('KERAS_BACKEND', 'tensorflow')!r} here: install it, "
                        "or set KERAS_BACKEND=jax or torch to one that is installed)")
            raise MissingExtraError(f"{module.split('.')[0]} is installed but does not "
                                    f"import: {type(exc).__name__}: {line}{hint}") from exc
        raise MissingExtraError(
            f"this needs {module.split('.')[0]}, which is not installed: "
            f'pip install "rfield[{extra}]"'
        ) from exc
