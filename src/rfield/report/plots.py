"""Pictures (matplotlib, the optional 'plot' extra): growth charts, fields over an
image, the ERF heat map. Each figure's data is computed by a ``*_data`` function
that the tests check; drawing only renders it."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..core.analysis import Analysis
from ..errors import RfieldError, require
from ..numbers import exact
from ..safeio import check_writable, read_regular, write_atomic


def _plt(out: str | None = None):
    """matplotlib, once ``out`` (the picture to write) is known writable: a path that
    cannot be written is said first, with or without the plot extra."""
    if out is not None:
        check_writable(out)
    mpl = require("matplotlib", "plot")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def growth_data(a: Analysis) -> dict:
    """Per layer: the largest field so far (largest axis; local rf on global layers: a
    side branch, ResNet's 1x1 downsample, does not make the curve dip) and the jump
    (local on global layers), and the layers where the jump changes (stage boundaries)."""
    names: list[str] = []
    rf: list[int] = []
    jump: list[Fraction | None] = []
    stages: list[int] = []
    prev: Fraction | None = Fraction(1)  # the input has jump 1
    for f in a.layers:
        size = f.local_rf if f.is_global else f.rf
        if size is None:
            continue
        names.append(f.name)
        rf.append(max([max(size)] + rf[-1:]))
        steps = f.local_jump if f.is_global else f.jump
        j = max(steps) if steps is not None else None  # exact; drawn as a float
        jump.append(j)
        if j is not None and prev is not None and j != prev:
            stages.append(len(names) - 1)
        prev = j if j is not None else prev
    return {"names": names, "rf": rf, "jump": jump, "stages": stages}


def plot_growth(a: Analysis, path: str) -> dict:
    plt = _plt(path)
    d = growth_data(a)
    if not d["names"]:
        raise RfieldError("no layer with a field to plot")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = np.arange(len(d["names"]))
    ax.plot(x, d["rf"], label="receptive field (largest so far)", color="tab:blue", lw=2)
    jumps = [np.nan if j is None else float(j) for j in d["jump"]]
    ax.plot(x, jumps, label="jump (effective stride)", color="tab:orange", lw=2)
    for s in d["stages"]:
        ax.axvline(s - 0.5, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("input pixels")
    ax.set_title("receptive field and jump per layer (dotted: the jump changes)")
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step])
    ax.set_xticklabels([d["names"][i] for i in x[::step]], rotation=35, ha="right",
                       fontsize=7)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return d


def demo_image(shape) -> np.ndarray:
    """A built-in picture: a checkerboard with a soft gradient, in [0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // 16 + xx // 16) % 2) * 0.35 + 0.3
    return np.clip(board + 0.3 * xx / max(w - 1, 1), 0, 1)


def _save(fig, path: str) -> None:
    """A figure as PNG bytes, written whole or not at all (see safeio)."""
    import io

    buf = io.BytesIO()
    try:
        fig.savefig(buf, dpi=110, format="png")
    finally:
        _plt().close(fig)
    write_atomic(path, buf.getvalue())


def load_picture(path: str, size) -> np.ndarray:
    """A PNG/JPEG as an array in [0, 1], resampled (nearest) to the input size."""
    import io

    plt = _plt()
    data = read_regular(path, "picture", 256 * 1024 ** 2)
    try:
        img = plt.imread(io.BytesIO(data), format=path.rsplit(".", 1)[-1].lower())
    except (OSError, ValueError, SyntaxError):
        raise RfieldError(f"{path}: cannot be read as an image") from None
    if img.dtype.kind in "ui":
        img = img / 255.0
    h, w = size
    rows = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
    cols = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
    return img[rows][:, cols]


def boxes_data(a: Analysis, node: str, units) -> list[dict]:
    out = []
    for u in units:
        b = a.box(node, u)
        out.append({"unit": list(b.units[i][0] for i in range(len(b.units))),
                    "box": [list(r) for r in b.ranges]})
    return out


def plot_boxes(a: Analysis, node: str, path: str, units=None, image=None) -> list[dict]:
    """Fields of chosen units (default: centre and corners) over an image (2-D only)."""
    if a.graph.ndim != 2:
        raise RfieldError("fields over an image need a 2-D network")
    plt = _plt(path)
    size = a.graph.nodes[node].size
    if units is None:
        units = [(size[0] // 2, size[1] // 2), (0, 0), (size[0] - 1, size[1] - 1)]
    data = boxes_data(a, node, units)
    img = demo_image(a.graph.input_size) if image is None else image
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange"]
    for k, d in enumerate(data):
        (r0, r1), (c0, c1) = d["box"]
        ax.add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                                   lw=2, color=colors[k % len(colors)],
                                   label=f"unit {tuple(d['unit'])}"))
    ax.set_title(f"fields of {node} on the input")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return data


def plot_erf(erf, path: str, box=None) -> None:
    plt = _plt(path)
    heat = erf.heat
    fig, ax = plt.subplots(figsize=(6, 5))
    if heat.ndim == 1:
        ax.plot(heat)
        if box:
            ax.axvspan(box[0][0], box[0][1], color="tab:red", alpha=0.15,
                       label="theoretical field")
    else:
        shown = heat if heat.ndim == 2 else heat[heat.shape[0] // 2]
        im = ax.imshow(np.log10(shown + shown.max() * 1e-6), cmap="magma")
        fig.colorbar(im, ax=ax, label="log10 mean |gradient|")
        if box:
            (r0, r1), (c0, c1) = box[-2], box[-1]
            ax.add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1,
                                       fill=False, lw=2, color="cyan",
                                       label="theoretical field"))
    ratio = erf.area_ratio.get(0.2)
    ax.set_title(f"ERF of {erf.node} (20% area ratio {exact(ratio)})")
    if box:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
