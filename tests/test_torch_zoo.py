"""torchvision's registry against back-propagation: every classification model, the
segmentation models and the detection backbones with FPN.

Boxes of the centre, first and last unit of each stage output and of the final
spatial map must equal the measured ones. A few small models run in every test
run; the whole registry is the slow sweep (pytest -m slow, run by CI).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision")

from rfield.models.torch_models import build_target, detection_backbone  # noqa: E402

from torch_checks import check_model, input_size  # noqa: E402

# not classification/segmentation/detection image models, or needing other inputs
SKIP = ("raft_", "quantized", "ssd", "ssdlite", "keypointrcnn", "mvit", "s3d", "r3d", "mc3",
        "r2plus1d", "swin3d")
FAST = ["resnet18", "mobilenet_v3_small", "googlenet", "squeezenet1_1", "shufflenet_v2_x0_5",
        "lraspp_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_fpn", "regnet_x_400mf"]


def zoo() -> list[str]:
    names = tv.models.list_models(module=tv.models) + tv.models.list_models(
        module=tv.models.segmentation)
    names += [n for n in tv.models.list_models(module=tv.models.detection) if "fpn" in n]
    return sorted(n for n in dict.fromkeys(names) if not n.startswith(SKIP))


def check(name: str) -> int:
    model, prefix = detection_backbone(build_target(f"torchvision:{name}", meta=False))
    size = (64, 64) if prefix else input_size(name)
    a, checked = check_model(model, size, copy_model=False)
    assert checked >= 3
    assert a.graph.captured_on == "meta"  # no silent fallback to a real forward pass
    return checked


@pytest.mark.parametrize("name", FAST)
def test_fast_subset(name):
    check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in zoo() if n not in FAST])
def test_whole_registry(name):
    check(name)


def test_zoo_covers_every_family():
    names = zoo()
    for family in ("resnet50", "vgg16", "densenet121", "efficientnet_b0", "convnext_tiny",
                   "vit_b_16", "swin_t", "inception_v3", "fcn_resnet50", "deeplabv3_resnet50",
                   "lraspp_mobilenet_v3_large", "fasterrcnn_resnet50_fpn"):
        assert family in names


@pytest.mark.parametrize("name", ["squeezenet1_1",
                                  pytest.param("shufflenet_v2_x0_5", marks=pytest.mark.slow),
                                  pytest.param("mnasnet0_5", marks=pytest.mark.slow),
                                  pytest.param("resnet18", marks=pytest.mark.slow)])
def test_rf_and_jump_on_an_unclipped_input(name):
    """rf and jump, measured where the field touches no border (rfield verify)."""
    from rfield.empirical.verify import verify

    model = build_target(f"torchvision:{name}", meta=False)
    checks = verify(model, (3, 64, 64))
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    measured = [c for c in checks if c.rf[1] is not None]
    assert measured and all(c.rf[0] == c.rf[1] and c.jump[0] == c.jump[1]
                            for c in measured)
