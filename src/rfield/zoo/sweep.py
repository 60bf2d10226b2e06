"""The atlas sweep: every model of the zoos users hold (torchvision, timm, Hugging Face
vision model types, segmentation_models_pytorch, ultralytics' yamls, keras.applications)
at its native input size, each feature stage's field, each stage checked by
back-propagation.

One model is one line of JSON Lines, written as it finishes; a run skips the models
its output already holds (a failure is a line too, with its one-line reason), so an
interrupted sweep goes on where it stopped. Models run on a local process pool, or
on a Ray cluster when given its address (``pip install ray``). Each model has a time
limit, so one that hangs is a failure, not the end of the sweep.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ..errors import RfieldError, require
from .atlas import LIBRARIES, STANDARD

#: stages are measured for models up to this many parameters (a forward pass stops at
#: the last stage measured, so VGG's 120 M-parameter head costs only its float64 copy)
MAX_VERIFY_PARAMS = 150e6
#: the encoders every segmentation_models_pytorch architecture is swept with (DPT reads
#: timm ViTs only)
SMP_ENCODERS = ("resnet34", "efficientnet-b0")
SMP_ENCODERS_OF = {"DPT": ("tu-vit_tiny_patch16_224", "tu-vit_small_patch16_224")}
#: lines of an older verification standard (atlas.STANDARD) are measured again


def models(library: str, pattern: str = "*") -> list[tuple[str, str, str]]:
    """(library, model, family) of every model of ``library`` matching ``pattern``:
    torchvision's classification, segmentation, detection, video and optical flow
    registry (quantized models aside), or all of
    ``timm.list_models()``."""
    picked = []
    if library == "torchvision":
        tv = require("torchvision", "vision")
        for name in tv.models.list_models():
            module = tv.models.get_model_builder(name).__module__.split(".")
            if module[2] == "quantization":
                continue  # not float models
            family = module[-1] if module[2] not in ("detection", "video", "optical_flow") \
                else f"{module[2]}.{module[-1]}"
            picked.append((library, name, family))
    elif library == "timm":
        timm = require("timm", "timm")
        for module in timm.list_modules():
            picked += [(library, n, module) for n in timm.list_models(module=module)]
    elif library in OTHERS:
        picked = [(library, n, family) for n, family in OTHERS[library]()]
    else:
        raise RfieldError(f"the sweep reads {', '.join(LIBRARIES)}, not {library!r}")
    return sorted(m for m in picked if fnmatch.fnmatch(m[1], pattern))


def _hf_types() -> list[tuple[str, str]]:
    """Hugging Face model types with an image-classification, segmentation or depth
    head (their bare AutoModel is read; a type that does not build from its config
    offline is a failure line with its reason)."""
    auto = require("transformers", "hf").models.auto.modeling_auto
    kinds = {"image classification": auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
             "segmentation": auto.MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
             "depth": auto.MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES}
    types: dict[str, str] = {}
    for kind, names in kinds.items():
        for name in names:
            types.setdefault(name, f"hf.{kind}")
    # a text-and-image model (CLIP, SigLIP, Gemma) is not one an image is fed alone
    config = require("transformers", "hf").AutoConfig.for_model
    return sorted((n, k) for n, k in types.items()
                  if not hasattr(_quiet(config, n), "text_config"))


def _quiet(make: Callable[[str], Any], name: str) -> Any:
    try:
        return make(name)
    except Exception:
        return None  # built again by the sweep, which records why it fails


def _smp_models() -> list[tuple[str, str]]:
    """Every segmentation_models_pytorch architecture over each of SMP_ENCODERS."""
    from ..models.torch_models import smp_architectures

    return [(f"{arch}/{enc}", arch) for arch in smp_architectures()
            for enc in SMP_ENCODERS_OF.get(arch, SMP_ENCODERS)]


def _ultralytics_models() -> list[tuple[str, str]]:
    """Each yaml ultralytics ships, at scale n where it has scales."""
    from ..models.torch_models import ultralytics_yamls

    out = []
    for path in ultralytics_yamls():
        stem = path.name[:-len(".yaml")]
        scales = (require("yaml", "core").safe_load(path.read_text()) or {}).get("scales")
        named = re.match(r"(yolo(?:e-)?v?\d+)(.*)$", stem)
        if isinstance(scales, dict) and scales and named and named[2][:1] not in scales:
            # the scale after the version (yolov8n-seg), unless the name has one
            scale = "n" if "n" in scales else sorted(scales)[0]
            stem = f"{named[1]}{scale}{named[2]}"
        elif isinstance(scales, dict) and named and named[2][:1] not in ("n", ""):
            continue  # one yaml per scale (yolov10s.yaml): the n scale's is swept
        out.append((stem, path.parent.name))
    return out


def _keras_models() -> list[tuple[str, str]]:
    from ..models.keras_models import application_names

    return [(n, "keras.applications") for n in application_names(require("keras", "keras"))]


OTHERS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "hf": _hf_types, "smp": _smp_models, "ultralytics": _ultralytics_models,
    "keras": _keras_models}


def versions() -> dict[str, str]:
    """rfield's and the model libraries' versions, without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("rfield", "torch", "torchvision", "timm", "transformers",
                 "segmentation-models-pytorch", "ultralytics", "keras", "jax"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class _TimeLimit(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _TimeLimit()


def run_one(library: str, name: str, family: str, verify: bool = True,
            limit: int = 600, cap_memory: bool = True, device: str = "cpu") -> dict:
    """One model's line of the atlas; never raises (a failure is a line with its
    reason). ``cap_memory`` caps the worker's address space (not on Ray, whose
    workers map their object store into it; Ray's own monitor guards memory there)."""
    from .stages import analyse_model

    if library == "keras":
        os.environ.setdefault("KERAS_BACKEND", "jax")  # the backend rfield's tests use
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    else:
        require("torch", "torch").set_num_threads(1)  # one core a worker
    if cap_memory:
        _cap_memory()
    start = time.perf_counter()
    line: dict[str, Any] = {"model": name, "library": library, "family": family}
    try:
        found, check = _limited(limit, lambda: analyse_model(library, name, verify,
                                                            MAX_VERIFY_PARAMS, device))
        line.update(found)
        line["analysis_seconds"] = round(time.perf_counter() - start, 2)
        if check is not None:  # the analysis stays whatever the measurement does
            try:
                line.update(_limited(limit, check))
            except _TimeLimit:
                line["verify_note"] = f"the measurement took over {limit} s"
            except Exception as exc:
                line["verify_note"] = f"the measurement failed: {_one_line(exc)}"
    except _TimeLimit:
        line["error"] = f"took over {limit} s"
    except Exception as exc:  # any model's failure is recorded, never the sweep's end
        line["error"] = _one_line(exc)
    line["seconds"] = round(time.perf_counter() - start, 2)
    if verify:
        line["standard"] = STANDARD
    line["versions"] = versions()
    return line


#: a worker's address space: past it an allocation is a MemoryError (a failure line),
#: not the kernel's out-of-memory killer taking the worker and the pool with it
MEMORY_CAP = int(os.environ.get("RFIELD_ZOO_MEMORY_GB", "10")) << 30


def _cap_memory() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > MEMORY_CAP:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, hard))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"


def _limited(limit: int, fn: Callable[[], Any]) -> Any:
    """``fn()``, stopped by _TimeLimit after ``limit`` seconds (0: no limit)."""
    if not limit:
        return fn()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def read_lines(path: Path) -> dict[str, dict]:
    """model -> its last line in ``path`` (none if there is no file)."""
    done: dict[str, dict] = {}
    if path.exists():
        for text in path.read_text().splitlines():
            if text.strip():
                line = json.loads(text)
                done[f"{line['library']}:{line['model']}"] = line
    return done


def _pending(todo: list[tuple[str, str, str]], done: dict[str, dict], verify: bool,
             retry: bool = False) -> list[tuple[str, str, str]]:
    """What is left: models with no line, failures (with ``retry``), and (with
    ``verify``) lines not yet verified and with no reason why not."""
    left = []
    for lib, name, family in todo:
        line = done.get(f"{lib}:{name}")
        if line is None or (retry and "error" in line) or (
                verify and "error" not in line and line.get("standard") != STANDARD):
            left.append((lib, name, family))
    return left


def sweep(out: Path, todo: list[tuple[str, str, str]], workers: int = 2, verify: bool = True,
          limit: int = 600, ray_address: str | None = None,
          progress: Callable[[int, int, dict], None] | None = None,
          retry: bool = False, device: str = "cpu") -> dict[str, dict]:
    """Run the models of ``todo`` that ``out`` does not hold yet (and its failures, with
    ``retry``), appending a line as each finishes; returns every line of ``out``."""
    done = read_lines(out)
    left = _pending(todo, done, verify, retry)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = _on_ray(ray_address, left, verify, limit, device) if ray_address else \
        _on_pool(workers, left, verify, limit, device)
    with out.open("a") as f:
        for i, line in enumerate(runs, 1):
            f.write(json.dumps(line, sort_keys=True) + "\n")
            f.flush()
            done[f"{line['library']}:{line['model']}"] = line
            if progress:
                progress(i, len(left), line)
    return done


def _on_pool(workers: int, left: list, verify: bool, limit: int,
             device: str = "cpu") -> Iterator[dict]:
    """Lines as they finish, from a local process pool (one task a model). A worker
    that dies (the kernel's out-of-memory killer) fails the models it held, and a new
    pool goes on with the rest."""
    queue = iter(left)
    # a worker is replaced after 8 models (Python 3.11+), returning what they leave behind
    renew = {"max_tasks_per_child": 8} if sys.version_info >= (3, 11) else {}
    while True:
        batch = _take(queue, workers * 2)
        if not batch:
            return
        with ProcessPoolExecutor(max_workers=workers, **renew) as pool:  # type: ignore[call-overload]
            running = {pool.submit(run_one, *m, verify, limit, device=device): m
                       for m in batch}
            broken = False
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    m = running.pop(fut)
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        broken = True
                        yield {"library": m[0], "model": m[1], "family": m[2],
                               "error": "its worker died (out of memory?)"}
                if not broken:
                    running |= {pool.submit(run_one, *m, verify, limit, device=device): m
                                for m in _take(queue, len(finished))}


def _take(it: Iterator, n: int) -> list:
    return [m for _, m in zip(range(n), it)]


def _on_ray(address: str, left: list, verify: bool, limit: int,
            device: str = "cpu") -> Iterator[dict]:
    """Lines as they finish, from a Ray cluster: one task a model, scheduled by Ray."""
    ray = require("ray", "zoo-ray")
    ray.init(address=address)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_one)
        pending = {task.remote(*m, verify, limit, False, device): m for m in left}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            library, name, family = pending.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except Exception as exc:  # a worker Ray killed (out of memory): a failure line
                yield {"model": name, "library": library, "family": family,
                       "error": _one_line(exc), "versions": versions()}
    finally:
        ray.shutdown()  # a cluster of our own stops; a remote one is only disconnected


def progress_printer(stream=sys.stderr) -> Callable[[int, int, dict], None]:
    """A progress line: on a terminal rewritten in place, else every 25 models."""
    start = time.perf_counter()
    failed = 0
    tty = stream.isatty()

    def show(i: int, total: int, line: dict) -> None:
        nonlocal failed
        failed += "error" in line
        rate = i / max(time.perf_counter() - start, 1e-9) * 60
        text = (f"[{i}/{total}] {rate:.1f} models/min, {failed} failed, last "
                f"{line['library']}:{line['model']}")
        if tty:
            stream.write("\r" + text[:os.get_terminal_size(stream.fileno()).columns - 1]
                         + "\x1b[K" + ("\n" if i == total else ""))
        elif i % 25 == 0 or i == total:
            stream.write(text + "\n")
        stream.flush()
    return show


def select(libraries: Iterable[str], pattern: str) -> list[tuple[str, str, str]]:
    return [m for lib in libraries for m in models(lib, pattern)]
