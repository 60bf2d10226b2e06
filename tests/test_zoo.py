"""The atlas and ``rfield zoo``: the committed atlas still matches a fresh sweep of a few
models (whose analysis the other tests check against back-propagation, and whose
final stage the sweep itself verifies here), the queries and their formats, the
version note, and the sweep's resumption and failure lines."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

import rfield
from cli_run import run
from rfield.cli import main
from rfield.zoo import atlas
from rfield.zoo.sweep import read_lines, run_one, sweep

#: what a fresh sweep must reproduce (times and versions may differ)
SAME = ("input", "params", "unknown_ops")
#: a stage's measurement (zoo/measure.py), beside its analysis
MEASURED = {"verified", "measured_rf", "measured_jump", "measured_on", "verify_note"}


def analysis_of(stages: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k not in MEASURED} for s in stages]
FEW = [("torchvision", "resnet18", "resnet"), ("torchvision", "mobilenet_v3_small",
                                                "mobilenetv3"),
       ("timm", "resnet10t", "resnet"), ("timm", "convnext_atto", "convnext"),
       ("torchvision", "swin_t", "swin_transformer")]  # windows and rolls


@pytest.fixture(scope="module")
def lines():
    return atlas.load()



@pytest.mark.parametrize("library,name,family", FEW)
def test_the_atlas_matches_a_fresh_sweep(lines, library, name, family):
    pytest.importorskip("torchvision")
    pytest.importorskip("timm")
    committed = next(m for m in lines if (m["library"], m["model"]) == (library, name))
    fresh = run_one(library, name, family, verify=library == "timm", limit=300,
                    cap_memory=False)  # in this process: never cap pytest itself
    assert "error" not in fresh, fresh["error"]
    assert {k: fresh[k] for k in SAME} == {k: committed[k] for k in SAME}
    assert analysis_of(fresh["stages"]) == analysis_of(committed["stages"])
    if library == "timm":  # every stage against back-propagation, unclipped
        assert fresh["verified"] == "exact", fresh
        for s in fresh["stages"]:
            assert s["verified"] == "exact", s
            assert s["global"] or s["measured_rf"] == s["rf"], s
        if committed.get("standard") == atlas.STANDARD:
            assert fresh["stages"] == committed["stages"]


def test_the_atlas_covers_the_registries(lines):
    read = [m for m in lines if "error" not in m]
    tv = {m["model"] for m in read if m["library"] == "torchvision"}
    assert {"resnet50", "convnext_tiny", "deeplabv3_resnet50", "fasterrcnn_resnet50_fpn",
            "ssd300_vgg16"} <= tv
    timm_lines = [m for m in lines if m["library"] == "timm"]
    assert len([m for m in timm_lines if "error" not in m]) >= 0.95 * len(timm_lines)


def test_the_atlas_covers_every_library(lines):
    """What users hold: every torchvision model (quantized ones aside) with RAFT and the
    video models, Hugging Face types, smp architectures, ultralytics yamls, keras."""
    read = [m for m in lines if "error" not in m]
    by = {lib: {m["model"] for m in read if m["library"] == lib} for lib in atlas.LIBRARIES}
    assert {"raft_small", "raft_large", "r3d_18", "mvit_v2_s", "swin3d_t"} <= by["torchvision"]
    assert len(by["keras"]) >= 35 and len(by["hf"]) >= 10
    assert {"resnet", "convnext", "convnextv2", "vit", "deit", "beit", "dinov2", "swin",
            "swinv2", "segformer", "mobilevit", "dpt", "pvt", "efficientnet",
            "regnet"} <= by["hf"]
    assert {"Unet/resnet34", "FPN/efficientnet-b0", "DPT/tu-vit_small_patch16_224"} <= \
        by["smp"]
    assert {"yolov8n", "yolo11n", "yolov8n-seg"} <= by["ultralytics"]
    # every line is measured or says why not (never a verdict left unexplained)
    assert all(m.get("verified") or m.get("verify_note") for m in read
               if m["library"] in ("keras", "torchvision") and m.get("standard"))
    assert {"MobileNetV2", "NASNetMobile"} <= {m["model"] for m in read if m["library"] ==
                                               "keras" and m.get("verified") == "exact"}


def test_a_model_has_each_stage(capsys):
    code, out, _ = run(capsys, "zoo", "resnet50", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["library"] for r in rows} == {"torchvision", "timm"}
    tv = [r for r in rows if r["library"] == "torchvision"]
    assert [r["module"] for r in tv] == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert tv[-1]["rf"] == [427, 427] and tv[-1]["jump"] == [32, 32]


def test_filters_pick_exactly_the_stages_that_pass(lines, capsys):
    code, out, _ = run(capsys, "zoo", "--rf-min", "400", "--stride", "16", "--csv")
    got = {(r["model"], r["stage"]) for r in csv.DictReader(io.StringIO(out))}
    want = {(f"{m['library']}:{m['model']}", s["module"]) for m in lines
            for s in m.get("stages", [])
            if s["jump"] == [16, 16] and (s["global"] or min(s["rf"]) >= 400)}
    assert code == 0 and got == want and got
    code, out, _ = run(capsys, "zoo", "--rf-min", "400", "--stride", "16", "--local", "--csv")
    local = {(r["model"], r["stage"]) for r in csv.DictReader(io.StringIO(out))}
    assert local == {(f"{m['library']}:{m['model']}", s["module"]) for m in lines
                     for s in m.get("stages", [])
                     if s["jump"] == [16, 16] and s["local_rf"] and min(s["local_rf"]) >= 400}


def test_a_family_in_markdown(capsys):
    code, out, _ = run(capsys, "zoo", "--family", "convnext", "--markdown")
    assert code == 0 and out.startswith("| model | input | stage |")
    assert "convnext_tiny" in out and "resnet50" not in out


def test_the_version_note(lines, monkeypatch):
    import importlib.metadata

    assert atlas.version_note(lines) is None or "installed" in atlas.version_note(lines)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1")
    note = atlas.version_note(lines)
    assert note and "timm" in note and "(installed: 0.0.1)" in note


def test_answers_import_no_framework():
    code = ("import sys; from rfield.cli import main; main(['zoo', 'resnet18']); "
            "print([m for m in ('torch', 'timm', 'torchvision') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("[]")


def test_refusals(capsys):
    assert run(capsys, "zoo")[0] == 2
    code, _, err = run(capsys, "zoo", "not_a_model_at_all")
    assert code == 2 and "no model in the atlas matches" in err
    code, _, err = run(capsys, "zoo", "resnet50", "--atlas", "/nonexistent.jsonl")
    assert code == 2 and "no such atlas" in err


def test_a_failure_is_a_line_and_a_sweep_resumes(tmp_path):
    pytest.importorskip("timm")
    bad = run_one("timm", "no_such_model_xyz", "none", verify=False, limit=60,
                  cap_memory=False)
    assert "error" in bad and "seconds" in bad
    out, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    argv = ["zoo", "build", "--library", "timm", "--models", "resnet10t", "--no-verify",
            "--workers", "1", "--out", str(out), "--pack", str(packed)]
    assert main(argv) == 0 and len(out.read_text().splitlines()) == 1
    assert main(argv) == 0 and len(out.read_text().splitlines()) == 1  # nothing left to do
    assert read_lines(out)["timm:resnet10t"]["stages"] == atlas.load(packed)[0]["stages"]
    # a verifying run verifies what was only analysed
    sweep(out, [("timm", "resnet10t", "resnet")], workers=1, verify=True, limit=300)
    assert read_lines(out)["timm:resnet10t"]["verified"] == "exact"


def test_the_sweep_runs_on_ray(tmp_path, lines):
    """On a Ray cluster (here one of its own, "local"): a task a model, the same line as
    the committed atlas's. Ray's workers map its object store into their address space,
    so the pool's memory cap is not set there (it made every Ray worker abort)."""
    pytest.importorskip("ray")
    pytest.importorskip("timm")
    out = tmp_path / "ray.jsonl"
    argv = ["zoo", "build", "--library", "timm", "--models", "resnet10t", "--no-verify",
            "--ray", "local", "--out", str(out)]
    assert main(argv) == 0
    got = read_lines(out)["timm:resnet10t"]
    want = next(m for m in lines if m["model"] == "resnet10t" and m["library"] == "timm")
    assert "error" not in got and got["stages"] == analysis_of(want["stages"])


def test_the_page_is_the_atlas(lines):
    from pathlib import Path

    from rfield.zoo.page import page

    committed = Path(__file__).parent.parent / "docs" / "zoo.md"
    assert committed.read_text() == page(lines), \
        "docs/zoo.md is stale: python -m rfield.zoo.page > docs/zoo.md"


def test_lookups_as_a_newcomer_types_them(lines, capsys):
    """The form the atlas prints, --library, any case, a family by its own name."""
    code, out, _ = run(capsys, "zoo", "torchvision:resnet50", "--csv")
    assert code == 0 and {r["model"] for r in csv.DictReader(io.StringIO(out))} == {
        "torchvision:resnet50"}
    code, out, _ = run(capsys, "zoo", "resnet50", "--library", "timm", "--csv")
    assert code == 0 and {r["model"] for r in csv.DictReader(io.StringIO(out))} == {
        "timm:resnet50"}
    code, _, err = run(capsys, "zoo", "Resnet50")
    assert code == 2 and "did you mean torchvision:resnet50" in err
    code, out, _ = run(capsys, "zoo", "ResNet50", "--csv")  # keras.applications' name
    assert code == 0 and {r["model"] for r in csv.DictReader(io.StringIO(out))} == {
        "keras:ResNet50"}
    code, _, err = run(capsys, "zoo", "--family", "nosuch")
    assert code == 2 and "Families: " in err and "convnext" in err
    code, out, _ = run(capsys, "zoo", "--family", "resnet", "--csv")
    families = {m["family"] for m in lines}
    got = {r["model"].split(":")[1] for r in csv.DictReader(io.StringIO(out))}
    assert "inception_resnet_v2" not in got and "resnet50" in got and "resnet" in families
    code, _, err = run(capsys, "zoo", "timm:resnet50", "--library", "torchvision")
    assert code == 2 and "names timm" in err


def test_filtered_stages_that_just_pass_come_first(capsys):
    code, out, _ = run(capsys, "zoo", "--rf-min", "400", "--stride", "16", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    local = [r for r in rows if r["rf"] != "global"]
    assert code == 0 and local and rows[:len(local)] == local  # local fields first
    sizes = [min(int(v) for v in r["rf"].split("x")) for r in local]
    assert sizes == sorted(sizes) and sizes[0] >= 400


def test_a_video_model_line_has_three_dimensional_stages():
    """torchvision's video models are in the sweep's list, read at clip_len frames of
    their crop (torchvision sizes are spatial; timm's channels first)."""
    pytest.importorskip("torchvision")
    from rfield.zoo.stages import analyse_model
    from rfield.zoo.sweep import models

    assert ("torchvision", "r3d_18", "video.resnet") in models("torchvision", "r3d_*")
    line, _ = analyse_model("torchvision", "r3d_18", verify=False, max_params=0)
    assert line["input"] == [3, 16, 112, 112] and not line["unknown_ops"]
    assert all(len(s["size"]) == 3 for s in line["stages"])
    analysed = rfield.analyze("torchvision:r3d_18")
    last = line["stages"][-1]
    assert last["rf"] == list(analysed.fields[analysed.graph.aliases[last["module"]]].rf)


def test_an_optical_flow_model_reads_one_image_as_both_frames():
    """RAFT takes two frames: the sweep feeds one image to both, so the fields are over
    that image. Its feature encoder normalises per instance (global, checked by
    back-propagation here in float32) and the correlation lookup samples where the
    flow points (grid_sample, reported by name, never guessed)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from rfield.zoo.stages import analyse_model
    from rfield.zoo.sweep import models

    assert ("torchvision", "raft_small", "optical_flow.raft") in models("torchvision",
                                                                         "raft_*")
    line, _ = analyse_model("torchvision", "raft_small", verify=False, max_params=0)
    assert line["input"] == [3, 384, 512] and "grid_sample" in line["unknown_ops"]
    stages = {s["module"]: s for s in line["stages"]}
    assert stages["feature_encoder.layer1"]["global"]
    assert not stages["context_encoder.layer1"]["global"]
    import torchvision

    model = torchvision.models.optical_flow.raft_small(weights=None).eval()
    got = {}
    for name in ("feature_encoder.layer1", "context_encoder.layer1"):
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: got.setdefault(name, out))
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    model(x, x, num_flow_updates=1)
    reach = {}
    for name, out in got.items():
        grad, = torch.autograd.grad(out[0, :, 8, 8].sum(), x, retain_graph=True)
        reach[name] = int((grad.abs().sum(1)[0] > 0).sum())
    assert reach["feature_encoder.layer1"] == 128 * 128  # every pixel: global
    side = stages["context_encoder.layer1"]["rf"][0]
    assert reach["context_encoder.layer1"] <= side * side
