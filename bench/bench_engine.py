"""Engine speed: a 100,000-layer chain and a 500-block DenseNet-style graph at 224x224.

Run: make bench (or python bench/bench_engine.py). Results go to bench/results/engine.txt.
The baseline measured in the same run is a plain Python loop of the textbook
recurrence over the same chain (the least work any calculator can do), so the
ratio says what the generality of the engine costs.
"""

from __future__ import annotations

import gc
import platform

from rfield.core import Analysis, Graph
from rfield.core.ops import Conv, Merge, Pointwise

from timing import timed, write_result


def best_of(fn, repeat=3):
    return timed(fn, repeat, pick=min)


def chain(n):
    g = Graph((224, 224))
    for i in range(n):
        g.add(f"c{i}", Conv(3, 1, 1) if i % 2 == 0 else Pointwise("relu"))
    return g


def densenet(blocks):
    g = Graph((224, 224))
    g.add("stem", Conv(3, 1, 1))
    outs = ["stem"]
    for i in range(blocks):
        if len(outs) > 1:
            g.add(f"cat{i}", Merge("concat"), outs)
            g.add(f"conv{i}", Conv(3, 1, 1), [f"cat{i}"])
        else:
            g.add(f"conv{i}", Conv(3, 1, 1), outs)
        outs = outs + [f"conv{i}"]
    return g


def recurrence(n):
    r, j = 1, 1
    for i in range(n):
        if i % 2 == 0:
            r += 2 * j
    return r


def main() -> None:
    lines = [f"python {platform.python_version()} on {platform.machine()}, "
             f"{platform.processor() or 'cpu'}"]
    t_build, g = best_of(lambda: chain(100_000), 1)
    t_an, a = best_of(lambda: Analysis(g))
    t_box, box = best_of(lambda: a.box(), 1)
    t_rec, r = best_of(lambda: recurrence(100_000))
    assert a.fields["c99998"].rf == (r, r)
    lines.append(f"chain 100,000 layers: build {t_build:.3f} s, analysis {t_an:.3f} s "
                 f"(rf {a.field().rf[0]}), centre-unit box {t_box:.3f} s; "
                 f"bare recurrence loop {t_rec:.4f} s (analysis = {t_an / t_rec:.0f}x it)")
    del g, a
    gc.collect()
    t_build, g = best_of(lambda: densenet(500), 1)
    edges = sum(len(n.inputs) for n in g.nodes.values())
    t_an, a = best_of(lambda: Analysis(g))
    t_box, _ = best_of(lambda: a.box(), 1)
    lines.append(f"densenet 500 blocks ({len(g.nodes)} nodes, {edges} edges): build "
                 f"{t_build:.3f} s, analysis {t_an:.3f} s (rf {a.field().rf[0]}), "
                 f"centre-unit box {t_box:.3f} s")
    write_result("engine.txt", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
