"""The ONNX front-end against the PyTorch front-end on the same torchvision models.

Times reading + analysing the exported file, against capturing + analysing the
module, at 224x224 (median of 3), and checks both give the same final field.
Writes bench/results/onnx.md.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch
import torchvision

import rfield

from timing import timed, write_result

MODELS = ["resnet18", "resnet50", "mobilenet_v3_large", "densenet121", "efficientnet_b0",
          "vgg16"]


def main() -> None:
    rows = ["| model | nodes (onnx / torch) | onnx | torch | ratio | same final field |",
            "|---|---|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            model = torchvision.models.get_model(name, weights=None).eval()
            path = Path(tmp) / f"{name}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), dynamo=False,
                                  opset_version=17)
            t_onnx, o = timed(lambda p=path: rfield.analyze(str(p)))
            t_torch, t = timed(lambda m=model: rfield.analyze(m, (224, 224)))
            fo = o.fields[o.last_spatial(o.graph.last())]
            ft = t.fields[t.last_spatial(t.graph.last())]
            same = (fo.rf, fo.local_rf, fo.jump) == (ft.rf, ft.local_rf, ft.jump)
            rows.append(f"| {name} | {len(o.graph.nodes)} / {len(t.graph.nodes)} | "
                        f"{t_onnx:.3f} s | {t_torch:.3f} s | {t_onnx / t_torch:.2f} | "
                        f"{'yes' if same else 'NO'} |")
            print(rows[-1], flush=True)
    write_result("onnx.md", "# ONNX front-end against the PyTorch front-end (224x224, "
                 "median of 3)\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
