"""Hand-built 1-D ONNX graphs and the oracle they are checked against: ONNX's own
reference evaluator run on one-hot inputs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import rfield


def model_1d(nodes, n, inits=(), opset=18, out_len=None):
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def weight(name, shape):
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


class _Runtime:
    """onnxruntime behind the reference evaluator's ``run``."""

    def __init__(self, model) -> None:
        import onnxruntime

        self.sess = onnxruntime.InferenceSession(model.SerializeToString())

    def run(self, names, feeds):
        return self.sess.run(names, feeds)


def oracle_boxes(model, n, runtime: bool = False):
    """Per output unit, the box of input indices it depends on, by running the model on
    one-hot inputs (ONNX's reference evaluator, or onnxruntime; all weights positive,
    no bias)."""
    sess = _Runtime(model) if runtime else ReferenceEvaluator(model)
    base = sess.run(None, {"x": np.zeros((1, 1, n), np.float32)})[0][0].sum(0)
    deps = None
    for i in range(n):
        x = np.zeros((1, 1, n), np.float32)
        x[0, 0, i] = 1
        y = sess.run(None, {"x": x})[0][0].sum(0)
        hit = np.abs(y - base) > 1e-6
        if deps is None:
            deps = [[] for _ in range(len(hit))]
        for o in np.flatnonzero(hit):
            deps[o].append(i)
    return [(min(d), max(d)) if d else (0, -1) for d in deps]


def assert_matches_oracle(model, n, path, oracle_model=None, runtime: bool = False):
    onnx.save(model, path)
    a = rfield.analyze(str(path))
    want = oracle_boxes(oracle_model or model, n, runtime)
    node = a.graph.last()
    assert a.graph.nodes[node].size == (len(want),)
    for o, box in enumerate(want):
        assert a.box(node, (o,)).ranges == (box,), (o, a.box(node, (o,)).ranges, box)
    return a


def require_installed(*modules: str) -> None:
    """Skip the calling test module unless ``modules`` are installed, without importing
    them here: jaxlib and TensorFlow loaded beside torch can crash the process (a
    segfault in triton's import). Under RFIELD_REQUIRE_EXTRAS=1 a missing one fails."""
    import importlib.util
    import os

    import pytest

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing and os.environ.get("RFIELD_REQUIRE_EXTRAS") == "1":
        raise ImportError(f"RFIELD_REQUIRE_EXTRAS=1 but {', '.join(missing)} missing")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed", allow_module_level=True)


def run_exporter(script: str, out) -> dict:
    """Run ``exporters/<script>`` in its own process (a framework that is not loaded
    beside torch); it writes ONNX files and ``measured.json`` into ``out``."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).parent / "exporters" / script
    run = subprocess.run([sys.executable, str(path), str(out)], capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((Path(out) / "measured.json").read_text())


def unit_boxes(a, shape) -> list:
    """Per unit of the model's output (row-major), per input axis, [first, last]."""
    node = a.graph.last()
    assert a.graph.nodes[node].size == tuple(shape)
    return [[list(r) for r in a.box(node, unit).ranges] for unit in np.ndindex(*shape)]
