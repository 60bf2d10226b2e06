"""Model targets for the command line: torchvision:NAME, timm:NAME, file.py:factory,
package.module:factory. Each builds an nn.Module (no weights are downloaded) and
hands it to the capture."""

from __future__ import annotations

import contextlib
import difflib
import inspect
from typing import Any

from ..errors import TargetError, require
from .factory import call_factory
from .factory import error_line as _error_line


class _NoInit:
    """Builds without random initialisation: the weights are overwritten anyway (the
    measurement sets them), and initialising a 600M-parameter model takes a minute.
    Buffers computed in __init__ (position indices) are still computed."""

    NAMES = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
             "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
             "kaiming_normal_", "orthogonal_", "sparse_")

    def __enter__(self):
        import torch

        self.saved = {n: getattr(torch.nn.init, n) for n in self.NAMES
                      if hasattr(torch.nn.init, n)}
        for n in self.saved:
            setattr(torch.nn.init, n, lambda t, *a, **k: t)

    def __exit__(self, *exc):
        import torch

        for n, f in self.saved.items():
            setattr(torch.nn.init, n, f)


def build_torchvision(name: str, kwargs: dict, meta: bool = True, init: bool = False):
    """Build with weights=None. On the meta device (``meta``) nothing is allocated or
    initialised: right for the analysis, not for running the model (buffers that
    init computes, such as position indices, are left empty). Off it, the random
    initialisation is skipped unless ``init``: the measurement sets every weight
    itself, the effective receptive field runs the random weights."""
    torch = require("torch", "torch")
    tv = require("torchvision", "vision")
    check_name("torchvision", name)
    builder = tv.models.get_model_builder(name)
    params = inspect.signature(builder).parameters
    args: dict[str, Any] = {"weights": None}
    if "weights_backbone" in params:
        args["weights_backbone"] = None  # never download a backbone
    if name in ("inception_v3", "googlenet"):
        args["init_weights"] = False  # scipy-free, faster; weights are irrelevant here
    args.update(kwargs)
    try:
        if not meta:
            raise RuntimeError
        with torch.device("meta"):
            return builder(**args)
    except Exception:
        try:
            with contextlib.nullcontext() if init else _NoInit():
                return builder(**args)
        except Exception as exc:
            raise TargetError(f"torchvision:{name} could not be built: {_error_line(exc)}") \
                from None


def check_name(library: str, name: str) -> None:
    """A model name the library has, else one line with the nearest names (a typo must
    not be answered with advice about input sizes)."""
    if library == "torchvision":
        available = require("torchvision", "vision").models.list_models()
    else:
        timm = require("timm", "timm")
        if timm.is_model(name):
            return
        available = timm.list_models()
    if name in available:
        return
    near = difflib.get_close_matches(name, available, n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise TargetError(f"{library} has no model {name!r}{hint}")


def build_timm(name: str, kwargs: dict):
    timm = require("timm", "timm")
    check_name("timm", name)
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except RuntimeError as exc:
        raise TargetError(f"timm:{name} could not be built: {_error_line(exc)}") from None
    except Exception as exc:
        raise TargetError(f"timm:{name} could not be built: {_error_line(exc)}") from None


def hf_config(name: str, kwargs: dict):
    """A Hugging Face transformers config built here from its model type (``resnet``,
    ``convnext``, ``swin``): nothing is downloaded; ``kwargs`` set its fields."""
    transformers = require("transformers", "hf")
    try:
        return transformers.AutoConfig.for_model(name, **kwargs)
    except ValueError:
        raise TargetError(f"hf:{name}: not a transformers model type (hf:resnet, "
                          "hf:convnext, hf:swin...); rfield builds configs locally and "
                          "downloads nothing, so hub names such as microsoft/resnet-50 "
                          "are not read") from None


def build_hf(name: str, kwargs: dict, meta: bool = True):
    """The bare model (AutoModel: last_hidden_state, no task head) of a config, with
    random weights, on the meta device when only its structure is needed."""
    torch = require("torch", "torch")
    transformers = require("transformers", "hf")
    config = hf_config(name, kwargs)
    try:
        with torch.device("meta" if meta else "cpu"):
            return transformers.AutoModel.from_config(config)
    except Exception as exc:
        raise TargetError(f"hf:{name} could not be built: {_error_line(exc)}") from None


def build_target(target: str, kwargs: dict | None = None, meta: bool = True,
                 init: bool = False):
    """The nn.Module named by a target string (see build_torchvision for ``meta``)."""
    torch = require("torch", "torch")
    kwargs = dict(kwargs or {})
    kind, _, rest = target.partition(":")
    if kind == "torchvision":
        model = build_torchvision(rest, kwargs, meta, init)
    elif kind == "timm":
        model = build_timm(rest, kwargs)
    elif kind == "hf":
        model = build_hf(rest, kwargs, meta)
    else:
        model = call_factory(target, kwargs)
    if not isinstance(model, torch.nn.Module):
        raise TargetError(f"{target} gave a {type(model).__name__}, not a torch.nn.Module")
    return model


def detection_backbone(model):
    """Detection models resize and post-process; their field is their backbone's."""
    if type(model).__module__.startswith("torchvision.models.detection") and \
            hasattr(model, "backbone"):
        return model.backbone, "backbone"
    return model, ""


def input_tensor_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The tensor a model is fed, for an input written (batch, channels, *spatial):
    channels 0 is no channel dim at all (batch, *spatial), as a waveform model's."""
    return tuple(shape) if shape[1] else (shape[0], *shape[2:])
