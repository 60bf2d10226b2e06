"""Keras models read natively against the conversion route users take today (Keras ->
ONNX with Keras' own ``model.export(format="onnx")`` -> ``rfield analyze model.onnx``),
both in the same run on the same built model (TensorFlow backend: the exporter needs
it). Native: the graph walk and the analysis. Conversion: the export and reading the
file. Also whether both routes give the same last spatial field. Run as
``KERAS_BACKEND=tensorflow python bench/bench_keras.py``; writes bench/results/keras.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from timing import timed, write_result  # noqa: E402

# up to ~30 M parameters: Keras' ONNX export (tf2onnx) of VGG16 took all 24 GB here
MODELS = ["MobileNet", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0",
          "EfficientNetV2B0", "DenseNet121", "ResNet50", "InceptionV3", "Xception",
          "ConvNeXtTiny"]


def last_field(a) -> tuple:
    last = a.last_spatial(a.graph.last()) or a.graph.last()
    f = a.fields[last]
    return (f.local_rf if f.is_global else f.rf), (f.local_jump if f.is_global else f.jump)


def main() -> None:
    import keras
    import numpy as np

    import rfield
    from rfield.frontends.keras_targets import build_application

    rows = []
    for name in MODELS:
        t0 = time.perf_counter()
        model = build_application(name, input_size=(224, 224) if name.startswith(
            "MobileNetV3") else None)
        build = time.perf_counter() - t0
        native, a = timed(lambda m=model: rfield.analyze(m), repeat=3)
        shape = (1, *a.graph.input_size, 3)
        model(np.zeros(shape, "float32"))  # Keras exports only a model called once
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            t0 = time.perf_counter()
            model.export(path, format="onnx", verbose=False)
            export = time.perf_counter() - t0
            read, b = timed(lambda p=path: rfield.analyze(p), repeat=3)
        same = last_field(a) == last_field(b)
        unknown = sum(b.graph.unknown_ops.values())
        rows.append((name, build, native, export + read, export, read, same, unknown))
        print(name, f"{native:.2f} s vs {export + read:.1f} s", same, file=sys.stderr)
    lines = [f"# Keras models: the native front-end against Keras -> ONNX -> rfield "
             f"(Keras {keras.__version__}, {keras.backend.backend()} backend, 2 cores)", "",
             "Both routes start from the same built model (building it is the same for "
             "both and shown apart). Native: reading the functional graph and the "
             "analysis (median of 3). Conversion: `model.export(format=\"onnx\")` once, "
             "then reading the file (median of 3); the model is called once before the "
             "export (Keras exports only a model that has run), not timed.", "",
             "| model | build (both) | native | conversion | export | read ONNX | ratio "
             "| same last field | unknown ops in the ONNX file |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, build, native, conv, export, read, same, unknown in rows:
        lines.append(f"| {name} | {build:.1f} s | {native:.2f} s | {conv:.1f} s | "
                     f"{export:.1f} s | {read:.2f} s | {conv / native:.0f}x | "
                     f"{'yes' if same else 'NO'} | {unknown} |")
    total_native = sum(r[2] for r in rows)
    total_conv = sum(r[3] for r in rows)
    lines += ["", f"In all: native {total_native:.1f} s, conversion {total_conv:.1f} s "
              f"({total_conv / total_native:.0f}x).", "",
              "Where the fields differ, the export left operators tf2onnx could not "
              "convert (ConvNeXt's exact GELU: Erfc, kept as StatefulPartitionedCall), "
              "which rfield reports as unknown and reads as global; the native reading "
              "is the one checked against back-propagation (tests/test_keras_cli.py). "
              "Keras' export of VGG16 (138 M parameters) took all 24 GB of memory here, "
              "so the list stops at about 30 M parameters."]
    write_result("keras.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
