"""One model of the atlas: its feature stages' fields, and the final stage checked by
back-propagation.

Stages are timm's declared ``feature_info`` (module and reduction) where the model has
one, else the stage outputs rfield finds (:func:`stage_modules`). Where a declared
reduction differs from the analysed jump, the line says so; the verification measures
which is right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.analysis import Analysis
from ..errors import RfieldError, require
from ..numbers import json_value


def _nums(values: Any) -> list | None:
    """Exact values for the atlas's JSON (see :func:`json_value`)."""
    return None if values is None else [json_value(v) for v in values]


def declared(model: Any) -> list[tuple[str, int | None]]:
    """(module, declared reduction) of a timm model's feature_info, if it has one."""
    info = getattr(model, "feature_info", None)
    if not isinstance(info, list):
        return []
    out = []
    for item in info:
        if isinstance(item, dict) and isinstance(item.get("module"), str):
            out.append((item["module"], item.get("reduction")))
    return out


def stage_modules(a: Analysis) -> list[str]:
    """A model's stages where it declares none: per jump (and whether global), the
    module output least deep in the module tree (the last of those): ``layer1``,
    ``features.1``, not a norm inside the next stage's downsampling."""
    g = a.graph
    order = {n: i for i, n in enumerate(g.nodes)}
    best: dict[tuple, tuple[int, int, str]] = {}
    for module, node in g.aliases.items():
        if not module or not all(v > 1 for v in g.nodes[node].size):
            continue
        if "[" in module:  # one map's anchors: the name holds counts of this input size,
            continue       # which the unclipped measurement's larger input changes
        if not any(d is not None for d in g.alias_layouts.get(module, ())):
            continue  # tokens or windows of a map: its positions, not laid out as one
        f = a.fields[node]
        jump = f.local_jump if f.is_global else f.jump
        if jump is None:  # no local path left: nothing to say per stage
            continue
        key = (tuple(jump), f.is_global)
        pick = (module.count("."), -order[node], module)
        if key not in best or pick < best[key]:
            best[key] = pick
    return [m for _, _, m in sorted(best.values(), key=lambda p: -p[1])]


def stage_record(a: Analysis, module: str, reduction: int | None) -> dict:
    g = a.graph
    node = g.aliases[module]
    f = a.fields[node]
    jump = f.local_jump if f.is_global else f.jump
    rec: dict[str, Any] = {
        "module": module, "size": list(g.nodes[node].size), "rf": _nums(f.rf),
        "jump": _nums(jump), "start": _nums(f.local_start if f.is_global else f.start),
        "padding": _nums(f.effective_padding), "global": f.is_global,
        "local_rf": _nums(f.local_rf), "exact": all(f.exact)}
    if reduction is not None:
        rec["reduction"] = reduction
        if jump is not None and any(j != reduction for j in jump):
            rec["reduction_differs"] = True
    return rec


def analyse_model(library: str, name: str, verify: bool, max_params: float,
                  device: str = "cpu") -> tuple[dict, Callable[[], dict] | None]:
    """The atlas line of one model (without its name, time and versions), and the
    verification still to run on it (None if there is none to run)."""
    from ..frameworks.pytorch import build_module, native_size, same_image
    from ..frontends.torch_capture import graph_from_module
    from ..targets import resolve

    if library not in ("torchvision", "timm"):
        return analyse_run(library, name, verify, max_params, device)
    require("torch", "torch")
    t = resolve(f"{library}:{name}")
    size = _native(t, native_size(t)[0])
    # timm's sizes are channels first (3, 224, 224); torchvision's spatial, a video
    # model's three axes (16, 112, 112)
    channels, spatial = (size[0], size[1:]) if library == "timm" else (3, size)
    model, prefix = build_module(t, None, meta=True)
    params = _params(model)
    inputs = _inputs(library, name)
    model = same_image(model, inputs)  # RAFT: one image to both inputs
    try:
        a = Analysis(graph_from_module(model, spatial, channels=channels, prefix=prefix))
    except RfieldError:
        if spatial == (224, 224):
            raise
        # a size from weights the model is not built with (vit_h_14's 518 is SWAG's)
        spatial = (224, 224)
        a = Analysis(graph_from_module(model, spatial, channels=channels, prefix=prefix))
    g = a.graph
    stages = [(m if not prefix else f"{prefix}.{m}", r) for m, r in declared(model)]
    stages = [(m, r) for m, r in stages if m in g.aliases]
    if not stages:
        stages = [(m, None) for m in stage_modules(a)]
    line, spatial_stages = _line(a, channels, spatial, params, stages)
    return _with_check(line, params, max_params, verify, lambda: _measure(
        t, line, spatial_stages, prefix, channels, spatial, device, inputs))


def _inputs(library: str, name: str) -> int:
    """Images a model takes: two for torchvision's optical flow, fed the same image
    (its fields are over that image, the union of both inputs' contributions)."""
    from ..frameworks.pytorch import image_pairs

    return 2 if library == "torchvision" and image_pairs(name) else 1


def _line(a: Analysis, channels: int, spatial: tuple[int, ...], params: int,
          stages: list[tuple[str, int | None]]) -> tuple[dict, list[dict]]:
    """A model's atlas line before its measurement, and its stages that can be measured
    (maps whose positions are laid out; a stage holding tokens is analysed only)."""
    g = a.graph
    line: dict[str, Any] = {
        "input": [channels, *spatial], "params": params,
        "stages": [stage_record(a, m, r) for m, r in stages],
        "unknown_ops": dict(g.unknown_ops), "verified": None}
    maps = [s for s in line["stages"] if all(v > 1 for v in s["size"])]
    spatial_stages = [s for s in maps
                      if any(d is not None for d in g.alias_layouts.get(s["module"], ()))]
    for s in maps:
        if s not in spatial_stages:
            s["verify_note"] = "holds tokens: analysed, not measured"
    if not spatial_stages:
        line["verify_note"] = "no stage is a spatial map" + (
            " (tokens are not measured)" if maps else "")
    return line, spatial_stages


def analyse_run(library: str, name: str, verify: bool, max_params: float,
                device: str = "cpu") -> tuple[dict, Callable[[], dict] | None]:
    """:func:`analyse_model` for a model rfield runs through its framework's runner
    (``hf:``, ``smp:``, ``ultralytics:``, ``keras:``), as ``rfield verify`` does: built
    once with random weights, read at its native size, measured at the strip sizes."""
    from ..frameworks import framework
    from ..targets import runner

    # the torch and Keras runners the sweep uses hold their model (the protocol does not)
    r: Any = runner(f"{library}:{name}", None, {}, init=True, command="the atlas",
                    device=device)
    a = Analysis(r.graph)
    g = a.graph
    hookable = framework(g.provenance.source).hookable
    stages: list[tuple[str, int | None]] = [(m, None) for m in stage_modules(a)
                                            if hookable(m)]
    params = _params(r.model)
    line, spatial_stages = _line(a, g.input_channels, tuple(g.input_size), params, stages)
    return _with_check(line, params, max_params, verify, lambda: _measure_run(
        r, line, spatial_stages, tuple(g.input_size), device))


def _with_check(line: dict, params: int, max_params: float, verify: bool,
                check: Callable[[], dict]) -> tuple[dict, Callable[[], dict] | None]:
    """The line, and its measurement where one is asked for and can run (a line with
    no measurable stage, or too many parameters, says why instead)."""
    if "verify_note" in line or not verify:
        return line, None
    if params > max_params:
        line["verify_note"] = f"{params / 1e6:.0f} M parameters: over the " \
                              f"{max_params / 1e6:.0f} M the sweep verifies"
        return line, None
    return line, check


def _params(model: Any) -> int:
    """A torch module's or a Keras model's parameter count."""
    if hasattr(model, "count_params"):
        return int(model.count_params())
    return int(sum(p.numel() for p in model.parameters()))


def _measure_run(r: Any, line: dict, stages: list[dict], spatial: tuple[int, ...],
                 device: str) -> dict:
    from .measure import measure_stages

    nodes = [r.graph.aliases[s["module"]] for s in stages]
    found = measure_stages(
        lambda size: r.graph_at(size, nodes),
        lambda g, modules, units, layouts: r.measure(g, modules, units, layouts, device),
        stages, spatial, bool(line["unknown_ops"]))
    return _verdicts(line, stages, found)


def _native(t: Any, size: Any) -> tuple[int, ...]:
    """The size a model is fed: its library's (a torchvision detector's, the shorter side
    its transform resizes images to: SSD300 300, Faster R-CNN 800); else 224."""
    return tuple(size) if size else (224, 224)


def _measure(t: Any, line: dict, stages: list[dict], prefix: str, channels: int,
             spatial: tuple[int, ...], device: str = "cpu", inputs: int = 1) -> dict:
    """Every spatial stage measured by back-propagation (see :mod:`.measure`); the
    line's own ``verified`` is its final stage's verdict."""
    from ..frameworks.pytorch import build_module, same_image
    from ..frontends.torch_capture import graph_from_module
    from .measure import measure_stages, torch_run

    meta = same_image(build_module(t, None, meta=True)[0], inputs)
    model = same_image(build_module(t, None, meta=False, init=True)[0], inputs)
    found = measure_stages(
        lambda size: graph_from_module(meta, size, channels=channels, prefix=prefix),
        torch_run(model, prefix, channels, device), stages, tuple(spatial),
        bool(line["unknown_ops"]))
    return _verdicts(line, stages, found)


def _verdicts(line: dict, stages: list[dict], found: dict[str, dict]) -> dict:
    """The line's stages with their measurements; its own ``verified`` is its final
    stage's verdict."""
    for s in line["stages"]:
        s.update(found.get(s["module"], {}))
    final = found[stages[-1]["module"]]
    out: dict[str, Any] = {"stages": line["stages"], "verified": final["verified"]}
    if final["verified"] is None:
        out["verify_note"] = final["verify_note"]
    return out
