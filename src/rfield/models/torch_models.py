"""Model targets for the command line: torchvision:NAME, timm:NAME, hf:TYPE,
smp:ARCH/ENCODER, ultralytics:YAML, file.py:factory, package.module:factory. Each builds
an nn.Module (no weights are downloaded) and hands it to the capture."""

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
    # the bare model where there is one; a type with only a task model (Depth Anything,
    # ZoeDepth) is built with its head
    error: Exception = ValueError("no Auto class builds it")
    for auto in ("AutoModel", "AutoModelForDepthEstimation",
                 "AutoModelForSemanticSegmentation", "AutoModelForImageClassification"):
        try:
            with torch.device("meta" if meta else "cpu"):
                return getattr(transformers, auto).from_config(config)
        except Exception as exc:
            error = exc
            if "Unrecognized configuration class" not in str(exc):
                break
    raise TargetError(f"hf:{name} could not be built: {_error_line(error)}") from None


def build_smp(name: str, kwargs: dict):
    """A segmentation_models_pytorch architecture over an encoder, ``smp:Unet`` (smp's
    default encoder) or ``smp:Unet/efficientnet-b0``, with random weights."""
    import warnings

    smp = require("segmentation_models_pytorch", "smp")
    arch, _, encoder = name.partition("/")
    archs = smp_architectures()
    if arch not in archs:
        near = difflib.get_close_matches(arch, archs, n=3)
        raise TargetError(f"segmentation_models_pytorch has no architecture {arch!r}"
                          + (f"; did you mean {', '.join(near)}?" if near else ""))
    args = {"encoder_weights": None, **({"encoder_name": encoder} if encoder else {}),
            **kwargs}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(smp, arch)(**args)
    except Exception as exc:
        raise TargetError(f"smp:{name} could not be built: {_error_line(exc)}") from None


def smp_architectures() -> list[str]:
    """segmentation_models_pytorch's model classes (Unet, FPN, DeepLabV3...)."""
    smp = require("segmentation_models_pytorch", "smp")
    module = require("torch", "torch").nn.Module
    return sorted(n for n in getattr(smp, "__all__", dir(smp))
                  if isinstance(getattr(smp, n, None), type) and n[:1].isupper()
                  and issubclass(getattr(smp, n), module))


def ultralytics_yamls() -> list[Any]:
    """The model yamls ultralytics ships (``yolov8.yaml``, ``yolo11.yaml``...): its
    model zoo, each built at a scale by naming it (``yolov8n.yaml``)."""
    from pathlib import Path

    ultralytics = require("ultralytics", "ultralytics")
    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    return sorted(root.rglob("*.yaml"), key=lambda p: p.name)


def build_ultralytics(name: str, kwargs: dict):
    """An ultralytics model from one of its yamls, by file name with the scale in it
    (``ultralytics:yolov8n``, ``ultralytics:yolo11n-seg``), random weights; nothing is
    downloaded. The network (``.model``) is returned, as the capture reads it."""
    import warnings

    ultralytics = require("ultralytics", "ultralytics")
    yaml = name if name.endswith(".yaml") else name + ".yaml"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ultralytics.YOLO(yaml, **kwargs).model
    except Exception as exc:
        raise TargetError(f"ultralytics:{name} could not be built (a model yaml "
                          f"ultralytics ships, with its scale: yolov8n, yolo11s-seg): "
                          f"{_error_line(exc)}") from None


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
    elif kind == "smp":
        model = build_smp(rest, kwargs)
    elif kind == "ultralytics":
        model = build_ultralytics(rest, kwargs)
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
