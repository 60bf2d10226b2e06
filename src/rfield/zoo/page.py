"""docs/zoo.md from the atlas: one table per family, the declared reductions rfield
disagrees with, and the models the sweep could not read. ``python -m rfield.zoo.page``
prints it (a test keeps the committed page equal to the committed atlas)."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

from .atlas import Row, axes_text, load, model_verdict, stage_verdict, verdict_counts


def _stage(m: dict, s: dict) -> str:
    rf = f"global (local {axes_text(s['local_rf'])})" if s["global"] else axes_text(s["rf"])
    return (f"{s['module']} {rf}/{axes_text(s['jump'])}/{axes_text(s['padding'])} "
            f"*{stage_verdict(m, s)}*")


def _measured_share(read: list[dict]) -> str:
    """How many local stages carry a measured rf equal to their rf on every axis."""
    local = [s for m in read for s in m["stages"] if not s["global"] and s["rf"]]
    equal = sum(s.get("measured_rf") == s["rf"] for s in local)
    share = f" ({100 * equal // len(local)}%)" if local else ""
    return f"{equal} of {len(local)} local stages{share}"


def _final(m: dict) -> str:
    spatial = [s for s in m["stages"] if all(v > 1 for v in s["size"])]
    if not spatial:
        return "-"
    s = spatial[-1]
    return f"global (local {axes_text(s['local_rf'])})" if s["global"] else axes_text(s["rf"])


def page(lines: list[dict]) -> str:
    read = [m for m in lines if "error" not in m]
    failed = [m for m in lines if "error" in m]
    versions = Counter(f"{k} {v}" for m in read for k, v in m.get("versions", {}).items())
    out = ["# The receptive-field atlas", "",
           "Every torchvision model (classification, segmentation, detection, video, "
           "optical flow; quantized variants aside), every model of `timm.list_models()`, "
           "the Hugging Face vision model types (`hf:`), segmentation_models_pytorch's "
           "architectures over two encoders (`smp:`), ultralytics' model yamls at scale n "
           "(`ultralytics:`) and keras.applications (`keras:`, on JAX), built with random "
           "weights at its native input size and read by `rfield zoo build` (see the "
           "README). Per feature stage (timm's `feature_info`; elsewhere the last module "
           "output at each jump): rf / jump / effective padding per axis (one number when "
           "the axes agree); `global` where a stage reads the whole input, with its local "
           "field beside it, then each stage's verdict in italics. Each stage is measured by "
           "back-propagation through the model, per axis on an input long enough that "
           "its units' fields touch no border (a strip, thin on the other axis): "
           "`exact` (analysed boxes equal the measured ones, unclipped; a global stage "
           "measured whole on an input larger than its local field); `covers` (equal, "
           "but the field reached the border, as at a native size a model cannot leave: "
           "the size is not confirmed); `contains` (the analysis holds the measured box, "
           "where rfield reported operators it cannot follow); `differs`; `-` not "
           "measured (the atlas says why); `not yet` for lines from the earlier sweep, "
           "which measured only the final stage at the native size. *verified*: the "
           "model's worst stage. Query it with `rfield zoo`; browse it with `rfield zoo "
           "--html atlas.html`.", "",
           f"Models read: {len(read)}; failed: {len(failed)}. Verdicts, "
           + verdict_counts([Row(m, st) for m in read for st in m["stages"]])
           + ". Measured rf equal to rf: " + _measured_share(read) + ". Made with "
           + ", ".join(v for v, _ in versions.most_common()
                       if versions[v] >= len(read) // 10) + ".", ""]
    families: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for m in read:
        families[(m["library"], m["family"])].append(m)
    out += _contents(lines, families)
    out += _reductions(read)
    out += _disagreements(read)
    for (lib, fam), models in sorted(families.items()):
        out += [f"## {lib}: {fam}", "", "| model | input | stages: rf/jump/padding | final "
                "| verified |", "|---|---|---|---|---|"]
        for m in models:
            stages = "<br>".join(_stage(m, s) for s in m["stages"])
            unknown = " (unknown: " + ", ".join(sorted(m["unknown_ops"])) + ")" \
                if m.get("unknown_ops") else ""
            out.append(f"| {m['model']} | {axes_text(m['input'][1:])} | {stages} | "
                       f"{_final(m)}{unknown} | {model_verdict(m)} |")
        out.append("")
    if failed:
        out += ["## Not read", "", "| model | why |", "|---|---|"]
        out += [f"| {m['library']}:{m['model']} | {m['error'].replace('|', '/')} |"
                for m in failed]
        out.append("")
    return "\n".join(out)


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _contents(lines: list[dict], families: dict[tuple[str, str], list[dict]]) -> list[str]:
    """Per library: its models, how many were read, met no unknown operator and have
    every measured stage exact; then its families, each a link to its table."""
    out = ["## Contents", "", "| library | models | read | no unknown operator | "
           "every measured stage exact | families |", "|---|---|---|---|---|---|"]
    for lib in sorted({m["library"] for m in lines}):
        mine = [m for m in lines if m["library"] == lib]
        read = [m for m in mine if "error" not in m]
        links = ", ".join(f"[{fam}](#{_anchor(f'{lib}: {fam}')})"
                          for (lb, fam) in sorted(families) if lb == lib)
        out.append(f"| {lib} | {len(mine)} | {len(read)} | "
                   f"{sum(not m.get('unknown_ops') for m in read)} | "
                   f"{sum(model_verdict(m) == 'exact' for m in read)} | {links} |")
    return out + [""]


def _disagreements(read: list[dict]) -> list[str]:
    """Every stage whose measurement differs from the analysis (or that the analysis
    only contains), with both numbers."""
    rows = [(m, s) for m in read for s in m["stages"]
            if s.get("verified") in ("differs", "contains")
            or (s.get("verified") and s.get("verify_note"))]
    if not rows:
        return ["No measured stage differs from its analysis.", ""]
    out = ["## Stages whose measurement differs from the analysis", "",
           "Where the measured box differs (`differs`), is only contained (`contains`), "
           "or reached the border of an input long enough for the recorded field "
           "(`covers`, with the note: the field grows with the input size).", "",
           "| model | stage | verdict | rf | measured rf | jump | measured jump | "
           "measured on |", "|---|---|---|---|---|---|---|---|"]
    for m, s in rows:
        rf = "global" if s["global"] else axes_text(s["rf"])
        on = ", ".join(axes_text(v) for v in s.get("measured_on", []))
        out.append(f"| {m['library']}:{m['model']} | {s['module']} | {s['verified']} | "
                   f"{rf} | {axes_text(s.get('measured_rf'))} | {axes_text(s['jump'])} | "
                   f"{axes_text(s.get('measured_jump'))} | {on} |")
    return out + [""]


def _reductions(read: list[dict]) -> list[str]:
    """timm's declared reductions that differ from the analysed jump."""
    rows = [(m, s) for m in read for s in m["stages"] if s.get("reduction_differs")]
    if not rows:
        return ["timm's declared reductions all equal the analysed jumps.", ""]
    out = ["## Declared reductions that differ from the analysed jump", "",
           f"{len(rows)} stages. The analysed jump is that of the map the module returns "
           "first (checked against back-propagation where *verified* says so); timm's "
           "`reduction` is declared by hand. A module that returns several maps (HRNet's "
           "stages: one per branch, the highest resolution first) is read at its first "
           "map, while timm's `reduction` describes the map its feature head takes.", "",
           "| model | stage | declared | analysed jump | verified |", "|---|---|---|---|---|"]
    out += [f"| {m['model']} | {s['module']} | {s['reduction']} | {axes_text(s['jump'])} | "
            f"{stage_verdict(m, s)} |" for m, s in rows]
    return out + [""]


if __name__ == "__main__":
    sys.stdout.write(page(load(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))
