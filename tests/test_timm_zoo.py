"""One model of every timm family (module), at 224 x 224 (or its native size where it
takes no other), against back-propagation at the centre unit of its final spatial map:
exact, or (where rfield reported operators it cannot follow) a box that contains the
measured one. The slow sweep (pytest -m slow, run by CI); every stage of every model
is the atlas's job.

The model of a family is its smallest-looking name (tiny, small, nano...); one over
100 M parameters is left to the atlas sweep, and one whose measurement overflows
float64 (deep attention stacks) is said so, as a skip with its reason.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import rfield  # noqa: E402
from rfield.errors import RfieldError  # noqa: E402

from torch_checks import check_model, stage_modules  # noqa: E402

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
    try:
        size: tuple[int, ...] = (224, 224)
        a = rfield.analyze(model, size)
    except RfieldError:  # a model built for one size only (a window of 8 at 256)
        size = tuple(model.pretrained_cfg["input_size"][1:])
        a = rfield.analyze(model, size)
    last = stage_modules(a)[-1:]  # the final spatial map
    if not last:
        assert a.field().is_global  # positions mixed before any module's output
        pytest.skip("no module outputs a spatial map")
    try:
        a, checked = check_model(model, size, modules=last, units_per_axis=("centre",),
                                 copy_model=False)
    except RfieldError as exc:
        if "measurement overflowed" not in str(exc):
            raise
        pytest.skip(f"the measurement overflowed float64 ({exc})")
    assert checked >= 1
