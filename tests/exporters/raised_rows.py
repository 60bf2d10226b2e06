"""The measurement both exporter scripts share: which input rows and columns each
output unit of a positive NHWC network depends on, found by raising one row (then
one column) of a constant input per batch item. Framework-free: ``run`` maps an
(N, H, W, C) numpy array to the network's (N, h, w, c) output."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def dependency_boxes(run: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...],
                     base: float, raise_by: float, tolerance: float,
                     dtype=np.float64) -> tuple[list, list]:
    """(output spatial size, per output unit in row-major order the [first, last]
    input index per axis whose raise changes the unit, or None)."""
    h, w, c = shape
    ref = run(np.full((1, h, w, c), base, dtype))[0].sum(-1)
    ranges = []
    for axis, n in ((0, h), (1, w)):
        x = np.full((n, h, w, c), base, dtype)
        for i in range(n):
            if axis == 0:
                x[i, i] += raise_by
            else:
                x[i, :, i] += raise_by
        y = np.concatenate([run(x[k:k + 16]) for k in range(0, n, 16)]).sum(-1)
        hit = np.abs(y - ref) > tolerance * np.abs(ref)  # every unit is positive
        per_unit = []
        for unit in np.ndindex(*ref.shape):
            idx = np.flatnonzero(hit[(slice(None), *unit)])
            per_unit.append([int(idx[0]), int(idx[-1])] if len(idx) else None)
        ranges.append(per_unit)
    return list(ref.shape), [list(pair) for pair in zip(*ranges)]
