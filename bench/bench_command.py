"""Time to answer: the whole ``rfield analyze TARGET`` command against the floor any
tool pays, a fresh Python that imports the framework and builds the same model
(issue 13's aim: within 1.2x). Each run is a fresh process, as a user's is; the
median of 5 runs of each, interleaved, so a busy moment hits both. Also where the
import time goes (``python -X importtime``): rfield's own modules, and the framework.
Writes bench/results/command.md.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import write_result

RFIELD = str(Path(sys.executable).with_name("rfield"))
CASES = [
    ("torchvision:resnet18", "import torchvision; torchvision.models.resnet18(weights=None)"),
    ("torchvision:mobilenet_v3_large",
     "import torchvision; torchvision.models.mobilenet_v3_large(weights=None)"),
    ("timm:convnext_tiny", "import timm; timm.create_model('convnext_tiny')"),
    ("hf:resnet", "import transformers as t; "
     "t.AutoModel.from_config(t.AutoConfig.for_model('resnet'))"),
]
RUNS = 5


def _seconds(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def _own_import_ms() -> float:
    """Cumulative import time of rfield.cli without any framework (microseconds -> ms)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import rfield.cli"],
                         capture_output=True, text=True, check=True).stderr
    line = next(ln for ln in err.splitlines() if ln.rstrip().endswith("| rfield.cli"))
    return int(line.split("|")[1]) / 1000


def main() -> None:
    rows = []
    for target, build in CASES:
        ours, floor = [], []
        for _ in range(RUNS):
            ours.append(_seconds([RFIELD, "analyze", target]))
            floor.append(_seconds([sys.executable, "-c", build]))
        a, b = statistics.median(ours), statistics.median(floor)
        rows.append(f"| {target} | {a:.2f} s | {b:.2f} s | {a / b:.2f} |")
    own = _own_import_ms()
    text = "\n".join([
        "# Time to answer (median of 5 fresh processes each, 2 cores)",
        "",
        "| target | `rfield analyze TARGET` | import the framework + build the model "
        "| ratio |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"`import rfield.cli` alone (no framework; numpy and the engine): {own:.0f} ms. "
        "The framework is imported only for a target that needs it; the capture runs on "
        "meta tensors, so the rest is the framework's own import and model building.",
        "",
    ])
    write_result("command.md", text)


if __name__ == "__main__":
    main()
