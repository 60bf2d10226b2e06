"""The TensorFlow Lite front-end against the Keras front-end on the same networks, and
against TensorFlow Lite's own interpreter opening the file.

keras.applications models are converted by TensorFlow's converter (in a process of
its own, as the tests do); then, at 224x224 (median of 3): rfield reading and
analysing the .tflite file, rfield reading and analysing the Keras model it came from
(``keras:NAME``), and ``tf.lite.Interpreter`` loading the file and allocating its
tensors (run in that other process: TensorFlow is not loaded beside JAX here). Checks
both rfield readings give the same final field. Writes bench/results/tflite.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import rfield  # noqa: E402

from timing import timed, write_result  # noqa: E402

MODELS = ["MobileNetV2", "ResNet50", "EfficientNetB0", "DenseNet121"]

CONVERT = """
import json, os, statistics, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras, tensorflow as tf
out, times = sys.argv[1], {}
for name in sys.argv[2:]:
    model = getattr(keras.applications, name)(weights=None)
    path = os.path.join(out, name + ".tflite")
    open(path, "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        tf.lite.Interpreter(model_path=path).allocate_tensors()
        runs.append(time.perf_counter() - start)
    times[name] = statistics.median(runs)
print(json.dumps(times))
"""


def main() -> None:
    rows = ["| model | nodes (tflite / keras) | tflite | keras | ratio | TFLite interpreter "
            "load | same final field |", "|---|---|---:|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-c", CONVERT, tmp, *MODELS],
                             capture_output=True, text=True, check=True)
        interpreter = json.loads(run.stdout.strip().splitlines()[-1])
        for name in MODELS:
            path = Path(tmp) / f"{name}.tflite"
            t_flat, f = timed(lambda p=path: rfield.analyze(str(p)))
            t_keras, k = timed(lambda n=name: rfield.analyze(f"keras:{n}", (224, 224)))
            ff, fk = f.field(), k.field()
            same = (ff.rf, ff.local_rf, ff.jump, ff.is_global) == \
                (fk.rf, fk.local_rf, fk.jump, fk.is_global)
            rows.append(f"| {name} | {len(f.graph.nodes)} / {len(k.graph.nodes)} | "
                        f"{t_flat:.3f} s | {t_keras:.3f} s | {t_flat / t_keras:.2f} | "
                        f"{interpreter[name]:.3f} s | {'yes' if same else 'NO'} |")
            print(rows[-1], flush=True)
    write_result("tflite.md", "# TensorFlow Lite front-end against the Keras front-end "
                 "(224x224, median of 3)\n\nThe TFLite interpreter column is TensorFlow "
                 "opening the same file and allocating its tensors.\n\n" + "\n".join(rows)
                 + "\n")


if __name__ == "__main__":
    main()
