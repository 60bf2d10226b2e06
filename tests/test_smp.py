"""segmentation_models_pytorch, as users build it (random weights), against
back-propagation at the output mask: the boxes of the same units, not only a size (after
align_corners upsampling the field depends on the unit's position). Their FPN and PAN
decoders normalise with GroupNorm, which reads every position: global, with the local
field beside it."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("torch")
smp = pytest.importorskip("segmentation_models_pytorch")

from torch_checks import check_model  # noqa: E402

ARCHS = ["Unet", "UnetPlusPlus", "FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "Linknet",
         "MAnet", "PAN"]
UNITS = ("centre", 0, -1, 5)


def _check(arch: str, encoder: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(smp, arch)(encoder_name=encoder, encoder_weights=None,
                                   classes=2).eval()
    size = (128, 128) if arch == "PAN" else (64, 64)  # PAN pools its input down to 1/64
    return check_model(model, size, modules=[""], units_per_axis=UNITS)


def test_fpn_groupnorm_is_global_with_its_local_field():
    a, checked = _check("FPN", "resnet34")
    f = a.field()
    assert checked == 4 and f.is_global and f.local_rf is not None
    assert not a.graph.unknown_ops


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["resnet34", "efficientnet-b0"])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_smp_architecture(arch, encoder):
    a, checked = _check(arch, encoder)
    assert checked == 4
