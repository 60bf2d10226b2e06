"""The JAX front-end on ResNet-18 as Flax's ImageNet example builds it (tests/jax_models.py)
at 224 x 224: the abstract trace alone (``jax.eval_shape`` of ``init`` and
``jax.make_jaxpr`` of ``apply``, what any tool reading JAX must pay) against the whole
``rfield.analyze`` (the same trace, reading the jaxpr and the analysis), in one process,
median of 5 after a warm-up; and the command ``rfield analyze models.py:resnet18`` in a
fresh process against a fresh Python importing JAX and Flax and tracing the same model.
Also the measurement (``rfield verify`` at 64 x 64). Writes bench/results/jax.md.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import timed, write_result

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

FACTORY = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import jax_models as M

def resnet18():
    return M.ResNet18()
"""

TRACE_ONLY = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import jax
import jax_models as M
m = M.ResNet18()
x = jax.ShapeDtypeStruct((1, 224, 224, 3), "float32")
v = jax.eval_shape(m.init, jax.random.key(0), x)
jax.make_jaxpr(lambda x, v: m.apply(v, x))(x, v)
"""


def fresh(argv: list[str], cwd: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    import jax

    import rfield
    from rfield.empirical.verify import verify

    import jax_models as M

    model = M.ResNet18()
    spec = jax.ShapeDtypeStruct((1, 224, 224, 3), "float32")

    def trace():
        v = jax.eval_shape(model.init, jax.random.key(0), spec)
        return jax.make_jaxpr(lambda x, v: model.apply(v, x))(spec, v)

    def analyse():
        return rfield.analyze(model, (224, 224))

    trace(), analyse()  # warm-up: JAX's caches, rfield's imports
    t_trace, jaxpr = timed(trace, 5)
    t_all, a = timed(analyse, 5)
    t_verify, checks = timed(lambda: verify(M.ResNet18(), (64, 64)), 1)
    last = a.graph.aliases["ResNet18/BasicBlock_7"]
    f = a.fields[last]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "models.py").write_text(FACTORY)
        rfield_bin = str(Path(sys.executable).parent / "rfield")
        t_cmd = fresh([rfield_bin, "analyze", "models.py:resnet18", "--input", "224,224"], tmp)
        t_base = fresh([sys.executable, "-c", TRACE_ONLY], tmp)
    eqns = len(jaxpr.jaxpr.eqns)
    verdict = "all equal" if all(c.ok for c in checks) else "NOT all equal"
    text = f"""# JAX front-end: ResNet-18 (Flax's ImageNet example) at 224 x 224

Machine: this development machine, CPU only; JAX {jax.__version__}. Run with
`python bench/bench_jax.py`.

| what | seconds |
|---|---|
| trace alone (`eval_shape` of init + `make_jaxpr`), {eqns} equations | {t_trace:.3f} |
| `rfield.analyze` (trace, read {len(a.graph.nodes)} nodes, analyse) | {t_all:.3f} |
| reading and analysis beyond the trace | {t_all - t_trace:.3f} ({t_all / t_trace:.2f}x the trace) |
| command `rfield analyze models.py:resnet18 --input 224,224`, fresh process | {t_cmd:.2f} |
| fresh Python importing JAX and Flax and tracing the model | {t_base:.2f} |
| command against that baseline | {t_cmd / t_base:.2f}x |
| `rfield verify` at 64 x 64 ({len(checks)} checks, {verdict}) | {t_verify:.1f} |

Last stage (`ResNet18/BasicBlock_7`): rf {f.rf[0]} x {f.rf[1]}, jump {f.jump[0]} x {f.jump[1]}.
Medians of 5 (in process after a warm-up; fresh processes each time for the command).
"""
    write_result("jax.md", text)


if __name__ == "__main__":
    main()
