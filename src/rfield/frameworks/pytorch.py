"""PyTorch: an ``nn.Module`` (or an object holding one as ``.model``), a zoo name
(``torchvision:``, ``timm:``, ``hf:``) or a factory that returns a module. Zoo models
know their native input size (torchvision from its weights' transforms, timm from
``pretrained_cfg``, Hugging Face from the config)."""

from __future__ import annotations

import re
from typing import Any

from ..core.analysis import Analysis
from ..core.graph import Graph
from ..errors import TargetError, require
from .record import ErfAsk, Framework, Size, Target, module_paths


def is_torch_module(obj: object) -> bool:
    """By class name, so that asking imports no torch."""
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def _owns(obj: object) -> bool:
    return is_torch_module(obj) or is_torch_module(getattr(obj, "model", None))


def native_size(t: Target) -> tuple[Size, str | None]:
    """A zoo model's native input size (spatial, or with channels first) and where it
    comes from; (None, None) where there is none."""
    name = t.value.partition(":")[2] if isinstance(t.value, str) else ""
    if t.kind in ("torchvision", "timm"):
        from ..models.torch_models import check_name

        check_name(t.kind, name)
    if t.kind == "torchvision":
        return _torchvision_size(t)
    if t.kind == "timm":
        timm = require("timm", "timm")
        try:
            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:
            cfg = None
        size = getattr(cfg, "input_size", None) if cfg is not None else None
        return (tuple(int(v) for v in size) if size else None), \
            "the native size, from timm's pretrained_cfg"
    if t.kind == "hf":
        from ..models.torch_models import hf_config

        size = getattr(hf_config(name, {}), "image_size", None)
        if isinstance(size, int):
            return (size, size), "the native size, from the config's image_size"
        if isinstance(size, (list, tuple)) and len(size) == 2:
            return tuple(int(v) for v in size), "the native size, from the config's image_size"
        return (224, 224), "ImageNet's usual size: the config names no image_size"
    if t.kind == "ultralytics":
        if "-cls" in name:
            return (224, 224), "ultralytics' classification size (imgsz 224)"
        return (640, 640), "ultralytics' default size (imgsz 640)"
    if t.kind == "smp":
        encoder = name.partition("/")[2]
        if encoder.startswith("tu-"):  # a timm encoder: its size (a ViT's is fixed)
            size, _ = native_size(Target("timm", f"timm:{encoder[3:]}", "torch"))
            if size:
                return tuple(size[1:]), "the native size of its timm encoder"
        return (512, 512), "a usual segmentation size: smp names none"
    return None, None


def image_pairs(name: str) -> bool:
    """Whether a torchvision model takes two images (optical flow: RAFT)."""
    tv = require("torchvision", "vision")
    return ".optical_flow." in tv.models.get_model_builder(name).__module__


def _torchvision_size(t: Target) -> tuple[Size, str]:
    """From the weights' transforms; a detector: the shorter side its transform resizes
    images to (SSD300 300, Faster R-CNN 800)."""
    tv = require("torchvision", "vision")
    name = t.value.partition(":")[2]
    if image_pairs(name):
        return (384, 512), "FlyingChairs' frame size, which its weights are trained on"
    try:
        weights = list(tv.models.get_model_weights(name))
    except Exception:
        weights = []
    for w in weights:
        size = getattr(w.transforms, "keywords", {}).get("crop_size")
        if isinstance(size, int):
            return (size, size), "the native size, from torchvision's weights transforms"
        clip = re.search(r"clip_len=(\d+)", str(w.meta.get("_docs", "")))
        if isinstance(size, (tuple, list)) and len(size) == 2 and clip:  # a video model
            return (int(clip[1]), int(size[0]), int(size[1])), \
                "the native size, from torchvision's weights (clip_len frames of crop_size)"
    from ..models.torch_models import build_target

    side = getattr(getattr(build_target(t.value, None, meta=True), "transform", None),
                   "min_size", None)
    if isinstance(side, (tuple, list)) and side:
        return (int(side[0]), int(side[0])), \
            "the size the detector's transform resizes images to"
    return None, "the native size, from torchvision's weights transforms"


def build_module(t: Target, kwargs: dict | None = None, meta: bool = False,
                 init: bool = False):
    """The torch module of a model target, and the prefix of its module names (a
    detection model is read through its ``backbone``); ``init`` keeps the random
    initialisation (see build_torchvision)."""
    from ..frontends.torch_capture import held_network
    from ..models.torch_models import build_target, detection_backbone

    torch = require("torch", "torch")
    # an object and a name take one path: a detector (SSD300, Faster R-CNN) is read
    # through its backbone, never through its transform's untracked batch
    held = t.value if t.kind == "module" else build_target(t.value, kwargs, meta, init)
    return detection_backbone(held_network(torch, held))


def same_image(model: Any, inputs: int) -> Any:
    """A model that takes ``inputs`` images (RAFT's pair, a stereo network) as one
    that takes one image and passes it to every input: its fields are over that
    image's positions, the union of what each input contributes. The wrapper shares
    the model's submodules, so module paths, hooks and parameters stay the model's."""
    if inputs == 1:
        return model
    torch = require("torch", "torch")

    class SameImage(torch.nn.Module):  # type: ignore[name-defined]
        def forward(self, x):
            return self.wrapped(*[x] * inputs)

    wrapper = SameImage()
    object.__setattr__(wrapper, "wrapped", model)  # not a submodule: no path prefix
    wrapper._modules = model._modules
    wrapper._parameters, wrapper._buffers = model._parameters, model._buffers
    return wrapper


def read(t: Target, input_size: Size, options: dict) -> Graph:
    from ..frontends.torch_capture import graph_from_module

    size_note = None
    if input_size is None:
        input_size, size_note = native_size(t)
        if input_size is None:
            raise TargetError(f"{t.label}: a model needs an input size: give "
                              "input_size=(224, 224)")
    model, prefix = build_module(t, options.get("kwargs"), meta=True)
    return graph_from_module(same_image(model, options.get("inputs", 1)), input_size,
                             prefix=prefix, size_note=size_note,
                             **{k: v for k, v in options.items() if k not in ("kwargs", "inputs")})


def measure_net(net: Any, channels: int, graph: Graph, modules: list[str], units: dict,
                layouts: dict, device: str) -> dict:
    """Boxes measured by back-propagation through a torch network (a model, or a
    spec built in torch)."""
    from ..empirical.gradient import measure

    return measure(net, (1, channels) + tuple(graph.input_size), modules, units,
                   layouts={k: v for k, v in layouts.items() if v}, device=device)


def erf_of_net(net: Any, channels: int, a: Analysis, node: str, module: str,
               ask: ErfAsk) -> Any:
    from ..empirical.erf import effective_rf

    f = a.fields[node]
    return effective_rf(net, (1, channels) + tuple(a.graph.input_size), module,
                        samples=ask.samples, images=ask.images, weights=ask.weights,
                        device=ask.device, seed=ask.seed, progress=ask.progress,
                        rf=f.local_rf if f.is_global else f.rf, node=node)


class TorchRunner:
    """A torch model with real (random or given) weights."""

    def __init__(self, t: Target, input_size: Size, options: dict, init: bool) -> None:
        self.t, self.options = t, options
        self.graph = read(t, input_size, options)
        model, _ = build_module(t, options.get("kwargs"), meta=False, init=init)
        self.model = same_image(model, options.get("inputs", 1))

    def graph_at(self, size: Size, nodes: list[str] | None = None) -> Graph:
        return self.graph if size is None else read(self.t, size, self.options)

    paths = staticmethod(module_paths)

    def measure(self, graph: Graph, modules: list[str], units: dict, layouts: dict,
                device: str) -> dict:
        return measure_net(self.model, graph.input_channels, graph, modules, units,
                           layouts, device)

    def erf(self, a: Analysis, node: str, module: str, ask: ErfAsk) -> Any:
        return erf_of_net(self.model, a.graph.input_channels, a, node, module, ask)


def op_tables() -> dict[str, list[str]]:
    from ..frontends.torch_ops import HANDLERS, MODULE_HANDLERS

    return {"torch": sorted(HANDLERS), "torch modules read whole": sorted(MODULE_HANDLERS)}


def add_op(name: str, handler: Any, module: bool) -> None:
    """A torch function (``handler(capture, name, args, kwargs, out)``) or, with
    ``module``, a module class read whole (``handler(capture, module, x, out)``)."""
    from ..frontends.torch_ops import HANDLERS, MODULE_HANDLERS

    (MODULE_HANDLERS if module else HANDLERS)[name] = handler


TORCH = Framework(
    name="torch", read=read, op_tables=op_tables, owns_object=_owns,
    prefixes=("torchvision", "timm", "hf", "smp", "ultralytics"),
    runner=TorchRunner, chooses_device=True,
    several_images=True, add_op=add_op)
