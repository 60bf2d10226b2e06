"""Export a Flax NNX model to ONNX with jax2onnx (which keeps the input NHWC), and measure
the exported network's dependency boxes in JAX itself.

Run as a script in its own process: ``python jax_onnx.py OUTDIR``. Writes
``OUTDIR/NAME.onnx`` and ``OUTDIR/measured.json`` (per output unit and input axis, the
first and last input index whose change changes that unit, as ``keras_onnx.py`` does).

The measurement shares no code with rfield: kernels are made positive (scaled by fan-in)
and biases zero, so with an input of ones every unit is positive and the ReLUs are
identities; each input row (then column) is raised by far more than the rest of the input
in its own batch item, so a max pooling window that holds it changes too.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from raised_rows import dependency_boxes  # noqa: E402

SIZE = (31, 26)
BASE, RAISE = 1.0, 1e3


def build():
    import jax
    from flax import nnx

    class Small(nnx.Module):
        """Same padding with stride 2, dilation, a depthwise conv, max pooling, a
        transposed convolution and a merge of two branches."""

        def __init__(self, rngs: nnx.Rngs):
            self.stem = nnx.Conv(3, 8, (3, 3), strides=2, padding="SAME", rngs=rngs)
            self.dilated = nnx.Conv(8, 8, (3, 3), kernel_dilation=2, padding="SAME",
                                    feature_group_count=8, rngs=rngs)
            self.wide = nnx.Conv(8, 8, (1, 5), padding=((0, 0), (1, 3)), rngs=rngs)
            self.narrow = nnx.Conv(8, 8, (1, 1), rngs=rngs)
            self.up = nnx.ConvTranspose(8, 4, (3, 3), strides=(2, 2), padding="VALID",
                                        rngs=rngs)

        def __call__(self, x):
            x = jax.nn.relu(self.stem(x))
            x = self.dilated(x)
            x = jax.lax.reduce_window(x, -np.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                      "SAME")
            x = self.wide(x) + self.narrow(x)
            return self.up(jax.nn.relu(x))

    return Small(nnx.Rngs(0))


def make_positive(model) -> None:
    import jax.numpy as jnp
    from flax import nnx

    for _, param in nnx.iter_graph(model):
        if isinstance(param, nnx.Param):
            w = np.asarray(param.get_value())
            if w.ndim <= 1:
                param.set_value(jnp.zeros_like(w))
            else:
                param.set_value(jnp.asarray((np.abs(w) + 1) / max(1, int(np.prod(w.shape[:-1])))))


def measure(model) -> tuple[list, list]:
    import jax.numpy as jnp

    run = lambda x: np.asarray(model(jnp.asarray(x)))
    return dependency_boxes(run, (*SIZE, 3), BASE, RAISE, 1e-4, np.float32)


def main(out: str) -> None:
    import jax2onnx

    model = build()
    make_positive(model)
    shape, boxes = measure(model)
    jax2onnx.to_onnx(model, [(1, *SIZE, 3)], opset=17, return_mode="file",
                     output_path=os.path.join(out, "small.onnx"))
    with open(os.path.join(out, "measured.json"), "w") as f:
        json.dump({"small": {"output": shape, "boxes": boxes}}, f)


if __name__ == "__main__":
    main(sys.argv[1])
