"""The atlas sweep's speed on this machine: a fixed sample of models (every 80th of
torchvision's and timm's lists) swept with and without verification, on the process
pool `rfield zoo build` uses (2 workers here, one core each); and `rfield zoo NAME`,
which answers from the committed atlas, against a bare Python start. Writes
bench/results/zoo.md. The whole atlas's own wall time is in its lines (`seconds`)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import write_result


def sweep_rate(todo: list, verify: bool) -> tuple[float, int]:
    from rfield.zoo.sweep import sweep

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        done = sweep(Path(tmp) / "a.jsonl", todo, workers=2, verify=verify, limit=600)
        took = time.perf_counter() - start
    return took, sum("error" in m for m in done.values())


def command(argv: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    from rfield.zoo import atlas
    from rfield.zoo.sweep import select

    todo = select(["torchvision", "timm"], "*")[::80]
    plain, failed = sweep_rate(todo, verify=False)
    checked, failed_v = sweep_rate(todo, verify=True)
    lines = atlas.load()
    own = sum(m.get("seconds", 0) for m in lines)
    rfield_bin = str(Path(sys.executable).parent / "rfield")
    t_zoo = command([rfield_bin, "zoo", "resnet50"])
    t_py = command([sys.executable, "-c", "pass"])
    n = len(todo)
    text = f"""# The atlas sweep

Machine: this development machine (2 cores, CPU only). Run with `python bench/bench_zoo.py`.

A fixed sample of {n} models (every 80th of torchvision's and timm's lists), swept on a
process pool of 2 workers (one core each), as `rfield zoo build` does:

| sweep | wall time | models per minute | failed |
|---|---|---|---|
| analysis only (`--no-verify`) | {plain:.0f} s | {n / plain * 60:.1f} | {failed} |
| with every stage measured unclipped | {checked:.0f} s | {n / checked * 60:.1f} | {failed_v} |

The committed atlas ({len(lines)} models): the models' own times add up to
{own / 60:.0f} minutes of worker time.

`rfield zoo resnet50` (answered from the committed atlas, no framework imported):
{t_zoo:.2f} s, against {t_py:.2f} s for a Python that does nothing ({t_zoo / t_py:.1f}x);
medians of 5 fresh processes.
"""
    write_result("zoo.md", text)


if __name__ == "__main__":
    main()
