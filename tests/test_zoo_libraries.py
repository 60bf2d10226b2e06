"""The atlas beyond torchvision and timm: Hugging Face model types, smp architectures,
ultralytics' yamls and keras.applications are listed, built by their targets
(``hf:resnet``, ``smp:Unet/resnet34``, ``ultralytics:yolov8n``, ``keras:ResNet50``) and
swept through the runner ``rfield verify`` uses: every stage measured by
back-propagation, unclipped."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("torch")

from rfield.cli import main  # noqa: E402
from rfield.errors import TargetError  # noqa: E402
from rfield.zoo import sweep  # noqa: E402


def _measured_exact(line: dict) -> None:
    assert "error" not in line, line.get("error")
    assert line["stages"], line
    for s in line["stages"]:
        if s.get("verify_note") == "holds tokens: analysed, not measured":
            continue
        assert s["verified"] == "exact", s
        axes = range(len(s["size"]))
        field = s["local_rf"] if s["global"] else s["rf"]
        assert [s["measured_rf"][a] for a in axes] == field  # the whole field, unclipped


def test_ultralytics_yamls_are_swept_at_scale_n():
    pytest.importorskip("ultralytics")
    names = [m[1] for m in sweep.models("ultralytics")]
    assert {"yolov8n", "yolov8n-seg", "yolo11n", "yolov10n", "yolov5n", "yolov3"} <= set(names)
    assert "yolov10s" not in names and "yolov8s" not in names  # one scale a yaml


def test_smp_architectures_over_two_encoders():
    pytest.importorskip("segmentation_models_pytorch")
    names = {m[1] for m in sweep.models("smp")}
    assert {"Unet/resnet34", "Unet/efficientnet-b0", "FPN/resnet34"} <= names
    assert {n.partition("/")[2] for n in names if n.startswith("DPT/")} == set(
        sweep.SMP_ENCODERS_OF["DPT"])  # DPT reads timm ViTs only


def test_hf_types_are_image_models():
    pytest.importorskip("transformers")
    names = {m[1] for m in sweep.models("hf")}
    assert {"resnet", "convnext", "vit", "dinov2", "swin", "segformer", "dpt"} <= names
    assert not {"clip", "siglip"} & names  # text and image: not fed one image


def test_an_ultralytics_model_is_swept_and_measured():
    pytest.importorskip("ultralytics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        line = sweep.run_one("ultralytics", "yolov8n-cls", "v8", cap_memory=False)
    assert line["input"] == [3, 224, 224]  # ultralytics' classification size
    _measured_exact(line)
    assert line["stages"][-1]["jump"] == [32, 32]


def test_a_hugging_face_type_is_swept_and_measured():
    pytest.importorskip("transformers")
    line = sweep.run_one("hf", "resnet", "hf.image classification", cap_memory=False)
    _measured_exact(line)
    assert line["stages"][-1]["jump"] == [32, 32]


def test_bad_smp_and_ultralytics_names_are_one_line(capsys):
    pytest.importorskip("segmentation_models_pytorch")
    assert main(["analyze", "smp:Unett/resnet34"]) == 2
    err = capsys.readouterr().err
    assert "no architecture 'Unett'" in err and "Unet" in err and len(err.splitlines()) == 1
    pytest.importorskip("ultralytics")
    with pytest.raises(TargetError, match="could not be built"):
        from rfield.models.torch_models import build_ultralytics

        build_ultralytics("yolov99z", {})


def test_a_hugging_face_type_with_only_a_task_model_is_built_with_its_head():
    """Depth Anything has no bare AutoModel: its depth model is read instead."""
    pytest.importorskip("transformers")
    from rfield.models.torch_models import build_hf

    model = build_hf("depth_anything", {})
    assert type(model).__name__ == "DepthAnythingForDepthEstimation"
    with pytest.raises(TargetError, match="not a transformers model type"):
        build_hf("no_such_type", {})
