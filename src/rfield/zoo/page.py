"""docs/zoo.md from the atlas: one table per family, the declared reductions rfield
disagrees with, and the models the sweep could not read. ``python -m rfield.zoo.page``
prints it (a test keeps the committed page equal to the committed atlas)."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

from .atlas import axes_text, load, verdict


def _stage(s: dict) -> str:
    rf = "global" if s["global"] else axes_text(s["rf"])
    return f"{s['module']} {rf}/{axes_text(s['jump'])}/{axes_text(s['padding'])}"


def _final(m: dict) -> str:
    spatial = [s for s in m["stages"] if all(v > 1 for v in s["size"])]
    if not spatial:
        return "-"
    s = spatial[-1]
    return f"global (local {axes_text(s['local_rf'])})" if s["global"] else axes_text(s["rf"])


def page(lines: list[dict]) -> str:
    read = [m for m in lines if "error" not in m]
    failed = [m for m in lines if "error" in m]
    verdicts = Counter(m.get("verified") or "not verified" for m in read)
    versions = Counter(f"{k} {v}" for m in read for k, v in m.get("versions", {}).items())
    out = ["# The receptive-field atlas", "",
           "Every torchvision classification, segmentation and detection model and every "
           "model of `timm.list_models()`, built with random weights at its native input "
           "size and read by `rfield zoo build` (see the README). Per feature stage "
           "(timm's `feature_info`; elsewhere the last module output at each jump): "
           "rf / jump / effective padding per axis (one number when the axes agree); "
           "`global` where a stage reads the whole input (the final column gives its "
           "local field). *verified*: the final stage's centre and corner units against "
           "back-propagation through the model (`exact`; `contains` where rfield "
           "reported operators it cannot follow; `-` where not measured, with the "
           "reason in the atlas). Query it with `rfield zoo`.", "",
           f"Models read: {len(read)}; failed: {len(failed)}. Verification: "
           + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())) + ". Made with "
           + ", ".join(v for v, _ in versions.most_common()
                       if versions[v] >= len(read) // 10) + ".", ""]
    out += _reductions(read)
    families: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for m in read:
        families[(m["library"], m["family"])].append(m)
    for (lib, fam), models in sorted(families.items()):
        out += [f"## {lib}: {fam}", "", "| model | input | stages: rf/jump/padding | final "
                "| verified |", "|---|---|---|---|---|"]
        for m in models:
            stages = "<br>".join(_stage(s) for s in m["stages"])
            unknown = " (unknown: " + ", ".join(sorted(m["unknown_ops"])) + ")" \
                if m.get("unknown_ops") else ""
            out.append(f"| {m['model']} | {axes_text(m['input'][1:])} | {stages} | "
                       f"{_final(m)}{unknown} | {verdict(m)} |")
        out.append("")
    if failed:
        out += ["## Not read", "", "| model | why |", "|---|---|"]
        out += [f"| {m['library']}:{m['model']} | {m['error'].replace('|', '/')} |"
                for m in failed]
        out.append("")
    return "\n".join(out)


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
            f"{verdict(m)} |" for m, s in rows]
    return out + [""]


if __name__ == "__main__":
    sys.stdout.write(page(load(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))
