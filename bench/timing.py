"""What every benchmark here shares: timing a call and writing its result file."""

from __future__ import annotations

import statistics
import time
from pathlib import Path


def timed(fn, repeat: int = 3, pick=statistics.median):
    """(seconds, result) of ``fn``: the median (or ``pick``) over ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return pick(times), out


def write_result(name: str, text: str) -> None:
    """bench/results/NAME, and the same text on stdout."""
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
