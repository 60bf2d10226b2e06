"""The Keras front-end reads the same graph on every backend: the small models of
keras_models.py, each unit checked against back-propagation in that backend (torch's
autograd, TensorFlow's GradientTape; JAX in test_keras.py), run in their own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras")

HERE = Path(__file__).parent

# what TensorFlow's CPU kernels cannot run at all (the model, not rfield, fails there),
# and a measurement TensorFlow cannot make (no float64 3-D average pooling)
TF_CANNOT = {
    "same_odd": "only supports equal length strides",  # depthwise conv, strides (1, 2)
    "same_even": "only supports equal length strides",
    "transposed": "do not yet support dilation rates larger than 1",
    "channels_first": "only supports the NHWC tensor format on the CPU",
    "volumes": "AvgPool3D",
}


def run(backend: str) -> dict:
    done = subprocess.run([sys.executable, str(HERE / "keras_backend_run.py"), backend],
                          capture_output=True, text=True, timeout=900, cwd=HERE)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_torch_backend():
    pytest.importorskip("torch")
    result = run("torch")
    assert set(result.values()) == {"ok"}, result


@pytest.mark.slow  # 25 s on 2 cores (TensorFlow's import and compile): make test-slow
def test_the_tensorflow_backend():
    pytest.importorskip("tensorflow")
    result = run("tensorflow")
    for name, outcome in result.items():
        if name in TF_CANNOT:
            assert TF_CANNOT[name] in outcome, (name, outcome)
        else:
            assert outcome == "ok", (name, outcome)


def test_a_backend_keras_cannot_load_is_one_line():
    import os

    env = {**os.environ, "KERAS_BACKEND": "nonexistent"}
    done = subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", "keras:ResNet50"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "keras is installed but does not import" in done.stderr
    assert "nonexistent" in done.stderr
