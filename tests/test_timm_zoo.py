"""One model of every timm family (module), at its native input size, against
back-propagation: exact, or (where rfield reported operators it cannot follow) a box
that contains the measured one. The slow sweep (pytest -m slow, run by CI).

The model of a family is its smallest-looking name (tiny, small, nano...); one over
100 M parameters is left to the atlas sweep, and one whose measurement overflows
float64 (deep attention stacks) is said so, as a skip with its reason.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from rfield.errors import RfieldError  # noqa: E402

from torch_checks import check_model  # noqa: E402

SMALL = ("atto", "femto", "pico", "nano", "tiny", "small", "mini", "xxs", "xs", "s0", "b0",
         "18", "10")
NOT_NATIVE = ["*_384*", "*_448*", "*_512*", "*in22k*", "*_clip_*", "*_siglip*", "*_dino*",
              "*_eva*"]
MAX_PARAMS = 100e6


def families() -> list[str]:
    picks = []
    for module in timm.list_modules():
        names = timm.list_models(module=module, exclude_filters=NOT_NATIVE)
        small = [n for n in names if any(s in n for s in SMALL)]
        if names:
            picks.append(sorted(small or names, key=len)[0])
    return picks


@pytest.mark.slow
@pytest.mark.parametrize("name", families())
def test_one_model_per_timm_family(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            count = sum(p.numel() for p in timm.create_model(name).parameters())
        if count > MAX_PARAMS:
            pytest.skip(f"{count / 1e6:.0f} M parameters: measured in the atlas sweep")
        model = timm.create_model(name, pretrained=False).eval()
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224))[1:])
    try:
        a, checked = check_model(model, size, copy_model=False)
    except RfieldError as exc:
        if "measurement overflowed" not in str(exc):
            raise
        pytest.skip(f"the measurement overflowed float64 ({exc})")
    assert checked >= 3
