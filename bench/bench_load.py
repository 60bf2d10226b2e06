"""Loading large spec files: a 1,000,000-layer chain and a 2,000-block dense DAG.

Each file is written to a temporary folder, then read in a fresh process that times
the parse (json), the graph build, the analysis and the centre unit's box, and
reports its peak memory; the whole ``rfield analyze FILE --json -o OUT`` command is
timed too. Aims (issue 9): the chain in under 10 s and 1.5 GB, the DAG in under
15 s, and the loading (parse + build) no more than the analysis. Writes
bench/results/load.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import write_result

CHILD = """
import resource, sys, time
from rfield.core.analysis import Analysis
from rfield.spec.parse import graph_from_dict, read_spec_file
t0 = time.perf_counter(); data, line_of = read_spec_file(sys.argv[1])
t1 = time.perf_counter(); g = graph_from_dict(data, None, sys.argv[1], line_of)
t2 = time.perf_counter(); a = Analysis(g); rf = a.field().rf
t3 = time.perf_counter(); box = a.box()
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rf)
"""


def chain(n: int) -> dict:
    return {"input": [224, 224],
            "layers": [{"op": "conv", "kernel": 3, "padding": 1} for _ in range(n)]}


def dag(blocks: int) -> dict:
    """Each block a conv on the concatenation of every earlier conv (DenseNet-style)."""
    layers = []
    for i in range(blocks):
        layers.append({"name": f"c{i}", "op": "conv", "kernel": 3, "padding": 1,
                       "inputs": ["input" if i == 0 else f"cat{i - 1}"]})
        layers.append({"name": f"cat{i}", "op": "concat",
                       "inputs": [f"c{j}" for j in range(i + 1)]})
    return {"input": [64, 64], "layers": layers}


def measure(path: Path) -> tuple[list[float], float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                         text=True, check=True).stdout.split()
    parse, build, analysis, box, rss = (float(v) for v in out[:5])
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", str(path), "--json",
                    "-o", str(path.with_suffix(".out"))], check=True)
    return [parse, build, analysis, box], rss / 1024 ** 2, time.perf_counter() - t


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for label, spec, edges in (("chain, 1,000,000 layers", chain(1_000_000), 1_000_000),
                                   ("dense DAG, 2,000 blocks", dag(2_000), 2_000 * 2_001)):
            path = Path(d) / "spec.json"
            path.write_text(json.dumps(spec))
            size = path.stat().st_size / 1024 ** 2
            (parse, build, analysis, box), gb, whole = measure(path)
            rows.append(f"| {label} ({edges:,} edges, {size:.0f} MB) | {parse:.2f} s | "
                        f"{build:.2f} s | {analysis:.2f} s | {box:.2f} s | {gb:.2f} GB | "
                        f"{whole:.1f} s |")
    write_result("load.md", "# Loading large spec files (one run each, 2 cores)\n\n"
                 "| file | parse | build | analysis | box | peak memory | whole command "
                 "(--json -o) |\n|---|---:|---:|---:|---:|---:|---:|\n"
                 + "\n".join(rows) + "\n\nBefore (issue 9's measurements, PyYAML finding "
                 "every layer's line): the chain took 316 s and 3.7 GB, the DAG 86 s. The "
                 "whole command includes rendering one JSON line per layer.\n")


if __name__ == "__main__":
    main()
