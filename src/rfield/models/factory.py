"""``file.py:factory`` and ``package.module:factory`` targets: the user's own code,
imported and called here whatever framework it builds with (what it returns says
which front-end reads it)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

from ..errors import TargetError, shown


def error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_factory(spec: str):
    path, _, attr = spec.rpartition(":")
    if not attr.isidentifier():
        raise TargetError(f"{spec}: expected file.py:factory or package.module:factory")
    if path.endswith(".py") or os.sep in path:
        if not os.path.isfile(path):
            raise TargetError(f"{path}: no such file")
        name = "rfield_user_" + os.path.splitext(os.path.basename(path))[0]
        mod_spec = importlib.util.spec_from_file_location(name, path)
        if mod_spec is None or mod_spec.loader is None:
            raise TargetError(f"{path} cannot be imported as a Python file")
        module = importlib.util.module_from_spec(mod_spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        # registered while it runs, as an import would: a dataclass (every Flax
        # module is one) looks its own module up in sys.modules
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except SystemExit as exc:
            sys.modules.pop(name, None)
            raise TargetError(f"{path} exited while being imported "
                              f"(sys.exit({shown(exc.code)}))") from None
        except Exception as exc:
            sys.modules.pop(name, None)
            raise TargetError(f"{path} does not import: {error_line(exc)}") from None
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(path)
        except SystemExit as exc:
            raise TargetError(f"{path} exited while being imported "
                              f"(sys.exit({shown(exc.code)}))") from None
        except Exception as exc:
            raise TargetError(f"{path} does not import: {error_line(exc)}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise TargetError(f"{path} has no {attr!r}")
    return factory


def call_factory(target: str, kwargs: dict | None = None) -> Any:
    """What the factory returns (called with ``kwargs``), or the object itself."""
    factory = load_factory(target)
    try:
        return factory(**dict(kwargs or {})) if callable(factory) else factory
    except SystemExit as exc:
        raise TargetError(f"{target} exited instead of returning a model "
                          f"(sys.exit({shown(exc.code)}))") from None
    except Exception as exc:
        raise TargetError(f"{target} raised {error_line(exc)}") from None
