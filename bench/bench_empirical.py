"""verify and erf on resnet50 at 224x224 on the CPU, against the analysis.

Writes bench/results/empirical.md.
"""

from __future__ import annotations

import time

import torchvision

import rfield
from rfield.empirical.erf import effective_rf
from rfield.empirical.verify import verify

from timing import write_result


def main() -> None:
    model = torchvision.models.resnet50().eval()
    t = time.perf_counter()
    a = rfield.analyze(model, (224, 224))
    t_an = time.perf_counter() - t
    t = time.perf_counter()
    checks = verify(model, (3, 224, 224))
    t_ver = time.perf_counter() - t
    t = time.perf_counter()
    e = effective_rf(model, (1, 3, 224, 224), "layer4", samples=16)
    t_erf = time.perf_counter() - t
    ok = all(c.ok for c in checks)
    lines = [
        "# verify and erf on resnet50, 224x224, CPU (2 cores)", "",
        "| step | seconds | against the analysis |", "|---|---:|---:|",
        f"| analysis (capture + analysis) | {t_an:.2f} | 1x |",
        f"| verify ({len({c.node for c in checks})} layers, input 224 and "
        f"an unclipped one; {'all agree' if ok else 'DIFFERS'}) | {t_ver:.1f} | "
        f"{t_ver / t_an:.0f}x |",
        f"| erf (layer4, 16 noise inputs; 20% area ratio {e.area_ratio[0.2]:.3f}) | "
        f"{t_erf:.1f} | {t_erf / t_an:.0f}x |",
    ]
    write_result("empirical.md", "\n".join(lines) + "\n")
    if a.field("layer4").rf != (427, 427):
        raise SystemExit("unexpected analysis")


if __name__ == "__main__":
    main()
