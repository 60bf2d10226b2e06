"""The effective receptive field (Luo et al., NeurIPS 2016).

The gradient of the centre unit of a layer (summed over channels) with
respect to the input, in absolute value, averaged over N inputs: Gaussian
noise by default or the images of a folder. The figures are RepLKNet's
high-contribution area ratios (the smallest centred square holding t of the
total, over the input area) and the spread (standard deviation) per axis.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RfieldError, TargetError, require
from ..models.torch_models import input_tensor_shape
from ..safeio import check_regular, read_regular

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
MAX_WEIGHTS_BYTES = 8 * 1024 ** 3
MAX_IMAGE_BYTES = 256 * 1024 ** 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class ERF:
    node: str
    heat: np.ndarray  # mean |gradient| per input position, summed over channels
    area_ratio: dict[float, Fraction]  # t -> smallest centred square's area / input area
    std: tuple[float, ...]  # spread per axis, in input positions
    rf: tuple[int, ...] | None  # theoretical field at the node
    samples: int
    extra: dict = field(default_factory=dict)


def area_ratios(heat: np.ndarray, thresholds=THRESHOLDS) -> dict[float, Fraction]:
    """Smallest centred square (cube, segment) holding share t of the total, over the
    area: a ratio of two counts of positions, kept exact."""
    total = float(heat.sum())
    if total <= 0:
        return {t: Fraction(0) for t in thresholds}
    centre = [s // 2 for s in heat.shape]
    reach = max(max(c, s - 1 - c) for c, s in zip(centre, heat.shape))
    sums = []
    for r in range(reach + 1):
        sl = tuple(slice(max(c - r, 0), c + r + 1) for c in centre)
        sums.append(float(heat[sl].sum()))
    out = {}
    for t in thresholds:
        r = next((i for i, v in enumerate(sums) if v >= t * total - 1e-12), reach)
        side = [min(c + r, s - 1) - max(c - r, 0) + 1 for c, s in zip(centre, heat.shape)]
        out[t] = Fraction(int(np.prod(side)), int(heat.size))
    return out


def spread(heat: np.ndarray) -> tuple[float, ...]:
    total = heat.sum()
    if total <= 0:
        return (0.0,) * heat.ndim
    out = []
    for axis in range(heat.ndim):
        marginal = heat.sum(axis=tuple(a for a in range(heat.ndim) if a != axis))
        pos = np.arange(len(marginal))
        mean = (marginal * pos).sum() / total
        out.append(float(np.sqrt((marginal * (pos - mean) ** 2).sum() / total)))
    return tuple(out)


def load_images(folder: str, shape, torch):
    """Images of a folder as float tensors of the input shape (resized, 0..1 scaled)."""
    p = Path(folder)
    if not p.is_dir():
        raise TargetError(f"{folder}: not a folder of images")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise TargetError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    try:
        from PIL import Image
    except ImportError:
        raise RfieldError('reading images needs Pillow: pip install "rfield[plot]"') from None
    F = torch.nn.functional
    out = []
    for f in files:
        check_regular(f, "image", MAX_IMAGE_BYTES)
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB" if shape[1] == 3 else "L"), dtype=np.float32)
        except Exception:
            raise TargetError(f"{f}: cannot be read as an image") from None
        t = torch.from_numpy(arr / 255.0)
        t = t.permute(2, 0, 1) if t.dim() == 3 else t[None]
        t = F.interpolate(t[None], size=tuple(shape[2:]), mode="bilinear", align_corners=False)
        out.append(t)
    return out


def load_state(model, path: str, torch) -> None:
    """Weights from a state_dict file, never unpickling anything but tensors."""
    import io
    import warnings

    data = read_regular(path, "state_dict file", MAX_WEIGHTS_BYTES)
    if not data:
        raise TargetError(f"{path}: is empty, not a state_dict file")
    try:
        with warnings.catch_warnings():  # torch's own warnings would print beside our line
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TargetError(f"{path}: not a state_dict that can be loaded safely "
                          f"(weights_only=True refused it: {str(exc).splitlines()[0][:160]})"
                          ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(
            state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TargetError(f"{path}: holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise TargetError(f"{path} does not match the model: {' '.join(lines[1:3])[:300]}") \
            from None


def effective_rf(model, input_shape, module: str = "", samples: int = 16,
                 images: str | None = None, weights: str | None = None,
                 device: str = "cpu", seed: int = 0, progress: bool = False,
                 rf=None, node: str | None = None) -> ERF:
    from .gradient import check_device

    torch = require("torch", "torch")
    check_device(torch, device)
    if weights:
        load_state(model, weights, torch)
    model = model.to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    if images and not input_shape[1]:
        raise RfieldError("--images reads pictures; this model's input has no channel dim "
                          "(a waveform): its ERF is measured on noise")
    inputs = load_images(images, input_shape, torch) if images else None
    n = len(inputs) if inputs is not None else samples
    target = dict(model.named_modules()).get(module) if module else None
    if module and target is None:
        raise RfieldError(f"no module named {module!r}")
    grabbed: dict[str, Any] = {}

    def hook(_m, _i, out) -> None:
        grabbed.setdefault("out", out if isinstance(out, torch.Tensor) else out[0])

    handle = target.register_forward_hook(hook) if target is not None else None
    heat = torch.zeros(input_shape[2:], dtype=torch.float64)
    shape = input_tensor_shape(input_shape)
    try:
        # two samples a pass, never one: torch's CPU batch-norm backward misplaces
        # gradients that arrive channels-last in a batch of one (an odd last sample
        # runs beside a copy of itself, whose gradient is not counted)
        for k in range(0, n, 2):
            pair = [inputs[i] if inputs is not None else
                    torch.randn(shape, generator=gen) for i in range(k, min(k + 2, n))]
            counted = len(pair)
            x = torch.cat(pair + pair[:2 - counted]).to(device).requires_grad_(True)
            grabbed.clear()
            out = model(x)
            y = grabbed.get("out", out)
            if isinstance(y, dict):
                y = next(iter(y.values()))
            if not isinstance(y, torch.Tensor) or y.dim() != len(input_shape):
                raise RfieldError(f"{module or 'the output'} has no spatial map")
            centre = tuple(s // 2 for s in y.shape[2:])
            y[(slice(0, counted), slice(None)) + centre].sum().backward()
            heat += x.grad[:counted].abs().sum((0, 1) if input_shape[1] else 0).double().cpu()
            if progress:
                done = int(30 * (k + counted) / n)
                sys.stderr.write(f"\rerf [{'#' * done}{'.' * (30 - done)}] {k + counted}/{n}")
                sys.stderr.flush()
    finally:
        if handle is not None:
            handle.remove()
        if progress:
            sys.stderr.write("\n")
    h = (heat / n).numpy()
    return ERF(node or module or "output", h, area_ratios(h), spread(h), rf, n)
