"""The atlas's per-stage measurement (zoo/measure.py) on small networks whose fields are
known by construction: a deep stage is measured on a strip long enough to leave its
field unclipped, a wrong analysis is caught, a model that runs only at its native size
says ``covers`` for a field that reaches the border, a global stage is measured whole on
an input larger than its local field."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from rfield.core.analysis import Analysis  # noqa: E402
from rfield.frontends.torch_capture import graph_from_module  # noqa: E402
from rfield.zoo.measure import judge, measure_stages, sizes_to_try, torch_run  # noqa: E402
from rfield.zoo.stages import stage_record  # noqa: E402

nn = torch.nn
NATIVE = (32, 32)


def convs(n: int, stride_at: int = 2) -> nn.Sequential:
    """n 3x3 convs, the second with stride 2: rf 3 + 2 * 1 + 4 * (n - 2)."""
    return nn.Sequential(*[nn.Conv2d(2, 2, 3, stride=2 if i == stride_at - 1 else 1,
                                     padding=1) for i in range(n)])


class NativeOnly(nn.Module):
    """A model that refuses any input but its native size (a fixed embedding)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        if tuple(x.shape[-2:]) != NATIVE:
            raise RuntimeError("fixed input size")
        return self.body(x)


class Gate(nn.Module):
    """A global gate: each unit scaled by the mean of the whole map."""

    def forward(self, x):
        return x * x.mean((2, 3), keepdim=True)


def records(model, modules: list[str]) -> list[dict]:
    a = Analysis(graph_from_module(model, NATIVE, channels=2))
    return [stage_record(a, m, None) for m in modules]


def run(model, modules, build=None, native=NATIVE):
    """(stage records, measurements); the measurement turns ``model`` to float64 in
    place, so the analysis reads a copy (the sweep reads one built on meta)."""
    stages = records(model, modules)
    analysed = copy.deepcopy(model)
    build = build or (lambda size: graph_from_module(analysed, size, channels=2))
    return stages, measure_stages(build, torch_run(model, "", 2), stages, native, False)


def test_a_deep_stage_is_measured_unclipped():
    model = convs(12)
    stages, found = run(model, ["1", "11"])
    assert stages[1]["rf"] == [45, 45]  # larger than the 32 px native input
    for s in stages:
        got = found[s["module"]]
        assert got["verified"] == "exact"
        assert got["measured_rf"] == s["rf"] and got["measured_jump"] == s["jump"]
        assert all(on[axis] > 45 for axis, on in enumerate(got["measured_on"]))


def test_a_wrong_analysis_differs():
    model = convs(12)
    wrong = convs(12, stride_at=3)  # the stride one conv later: every field smaller
    stages, found = run(model, ["10"], build=lambda size: graph_from_module(
        wrong, size, channels=2))
    assert found["10"]["verified"] == "differs"


def test_a_model_that_runs_only_at_its_size_covers():
    model = NativeOnly(convs(12))
    stages, found = run(model, ["body.1", "body.11"])
    assert found["body.1"]["verified"] == "exact"  # a small field, unclipped at 32
    assert found["body.11"]["verified"] == "covers"  # 45 > 32: not confirmed
    assert found["body.11"]["measured_on"] == [list(NATIVE), list(NATIVE)]


def test_a_global_stage_is_measured_whole_on_a_larger_input():
    model = nn.Sequential(convs(4), Gate(), nn.Conv2d(2, 2, 3, padding=1))
    stages, found = run(model, ["1", "2"])
    assert stages[0]["global"] and stages[1]["global"]
    assert found["2"]["verified"] == "exact"
    assert all(on[axis] >= stages[1]["local_rf"][axis]
               for axis, on in enumerate(found["2"]["measured_on"]))


def test_strips_are_long_on_one_axis_and_thin_on_the_other():
    stage = {"global": False, "rf": [45, 3000], "jump": [2, 32], "local_rf": [45, 3000]}
    assert sizes_to_try([stage], (224, 224), 0) == [(224, 64), (224, 224)]
    assert sizes_to_try([stage], (224, 224), 1) == [(64, 3136), (224, 1024), (224, 224)]


def test_an_upsampled_stage_is_measured_at_its_widest_phase_and_off_centre():
    """After nearest upsampling the units of one period see fields of different sizes,
    and one-sided padding moves every field off its unit (smp's Unet mask): the unit
    measured is the one whose field is the recorded rf, on a strip long enough for
    the offset, so the stage is exact, not left at ``covers``."""
    model = nn.Sequential(nn.Conv2d(2, 2, 3, stride=2, padding=1),
                          nn.Conv2d(2, 2, 3, stride=2, padding=1),
                          nn.Upsample(scale_factor=4), nn.ZeroPad2d((0, 9, 0, 9)),
                          nn.Conv2d(2, 2, 10))
    assert Analysis(graph_from_module(model, NATIVE, channels=2)).axis_maps(
        "4")[0].period == 4  # fields differ by phase
    stages, found = run(model, ["4"])
    assert float(stages[0]["start"][0]) != 0  # and sit off their units
    assert found["4"]["verified"] == "exact"
    assert found["4"]["measured_rf"] == stages[0]["rf"]


def test_judge_reads_clipped_and_unclipped_boxes():
    stage = {"global": False, "rf": [5], "jump": [2], "local_rf": [5]}
    boxes = [[[8, 12]], [[10, 14]]]
    assert judge(stage, 0, (40,), boxes, boxes, [(5,), (6,)], False) == {
        "on": [40], "verdict": "exact", "rf": 5, "jump": 2, "beyond": False}
    clipped = [[[0, 3]], [[0, 5]]]
    assert judge(stage, 0, (40,), clipped, clipped, [(0,), (1,)], False)["verdict"] == "covers"
    inside = [[[9, 11]], [[11, 13]]]
    assert judge(stage, 0, (40,), boxes, inside, [(5,), (6,)], True)["verdict"] == "contains"
    assert judge(stage, 0, (40,), boxes, inside, [(5,), (6,)], False)["verdict"] == "differs"


def test_a_field_that_grows_with_the_input_is_said_so():
    """A 5 px field recorded, yet the whole of a 40 px input read (MobileViT's
    attention at one offset of every patch): covers, with the reason."""
    stage = {"global": False, "rf": [5], "jump": [2], "local_rf": [5]}
    whole = [[[0, 39]], [[0, 39]]]
    got = judge(stage, 0, (40,), whole, whole, [(5,), (6,)], False)
    assert got["verdict"] == "covers" and got["beyond"]
    assert judge(stage, 0, (12,), [[[0, 11]]], [[[0, 11]]], [(3,)], False)["beyond"] is False


def test_a_field_that_depends_on_the_size_is_measured_at_the_native_size():
    """An adaptive pool to the native map's size is an identity there and a resampling
    on a strip (VGG's avgpool): the strip cannot speak to the recorded field, so the
    stage is measured again at the native size."""
    model = nn.Sequential(convs(6), nn.AdaptiveAvgPool2d((16, 16)))
    stages, found = run(model, ["0", "1"])
    assert found["1"]["verified"] == "exact"
    assert found["1"]["measured_rf"] == stages[1]["rf"]
    assert found["1"]["measured_on"] == [list(NATIVE), list(NATIVE)]
