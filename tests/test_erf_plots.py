"""The effective receptive field and the figures' data."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import rfield  # noqa: E402
from cli_run import run  # noqa: E402
from rfield.cli import main  # noqa: E402
from rfield.empirical.erf import area_ratios, effective_rf, spread  # noqa: E402
from rfield.report.plots import boxes_data, growth_data  # noqa: E402


def stack(depth: int, seed: int = 0) -> nn.Module:
    """3x3 convs, no nonlinearity, random positive weights (Luo et al.'s setting), each
    kernel scaled to sum 1 so that 64 layers neither overflow nor vanish."""
    g = torch.Generator().manual_seed(seed)
    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(depth)]
    with torch.no_grad():
        for conv in layers:
            w = torch.rand(conv.weight.shape, generator=g) + 0.5
            conv.weight.copy_(w / w.sum())
    return nn.Sequential(*layers)


def test_erf_grows_like_the_square_root_of_depth():
    size = 161
    spreads, rfs = {}, {}
    for depth in (4, 16, 64):
        e = effective_rf(stack(depth), (1, 1, size, size), samples=2)
        spreads[depth] = float(np.mean(e.std))
        rfs[depth] = rfield.analyze(stack(depth), (1, size, size)).field().rf[0]
    # theoretical rf grows linearly: 4x the depth, ~4x the field
    assert rfs[64] - 1 == 4 * (rfs[16] - 1) == 16 * (rfs[4] - 1)
    # the ERF's spread grows like sqrt(depth): 4x the depth, ~2x the spread
    for a, b in ((4, 16), (16, 64)):
        ratio = spreads[b] / spreads[a]
        assert 1.7 < ratio < 2.3, (a, b, spreads)


def test_area_ratio_and_spread_on_known_maps():
    heat = np.zeros((11, 11))
    heat[5, 5] = 1.0
    assert area_ratios(heat)[0.99] == pytest.approx(1 / 121)
    heat[:] = 1.0
    r = area_ratios(heat)
    assert r[0.99] == 1.0 and r[0.2] == pytest.approx(25 / 121)  # 5x5 holds 25/121 >= 20%
    line = np.zeros(101)
    line[[40, 60]] = 1
    assert spread(line) == (pytest.approx(10.0),)


def test_growth_and_boxes_data_match_the_analysis():
    a = rfield.analyze("example:resnet18")
    d = growth_data(a)
    assert d["rf"][d["names"].index("layer4.1")] == 435
    jumps = [d["jump"][i] for i in d["stages"]]
    assert jumps == [2, 4, 8, 16, 32]
    b = boxes_data(a, "layer2.0", [(0, 0), (14, 14)])
    assert b[1]["box"] == [list(r) for r in a.box("layer2.0", (14, 14)).ranges]


def test_plot_files(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    growth, boxes = tmp_path / "g.png", tmp_path / "b.png"
    assert main(["analyze", "example:unet", "--plot", str(growth), "--boxes", str(boxes)]) == 0
    assert growth.read_bytes()[:4] == b"\x89PNG" and boxes.read_bytes()[:4] == b"\x89PNG"
    heat = tmp_path / "e.png"
    assert main(["erf", "example:seed2", "--samples", "2", "--plot", str(heat), "--json"]) == 0
    data = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert data["rf"] == [19, 19] and set(data["area_ratio"]) == {"20", "30", "50", "99"}
    assert heat.read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- bad input

@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "net.py"
    p.write_text("from torch import nn\n"
                 "def build():\n"
                 "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))\n")
    return f"{p}:build"



def test_folder_without_images(capsys, tmp_path, model_file):
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "erf", model_file, "--input", "16,16", "--images",
                         str(tmp_path / "empty"))
    assert code == 2 and out == "" and "no images" in err


def test_unreadable_image(capsys, tmp_path, model_file):
    pytest.importorskip("PIL")
    d = tmp_path / "imgs"
    d.mkdir()
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    code, out, err = run(capsys, "erf", model_file, "--input", "16,16", "--images", str(d))
    assert code == 2 and "broken.png: cannot be read as an image" in err


def test_images_are_used(capsys, tmp_path, model_file):
    Image = pytest.importorskip("PIL.Image")
    d = tmp_path / "imgs"
    d.mkdir()
    for k in range(2):
        Image.fromarray((np.random.rand(20, 30, 3) * 255).astype("uint8")).save(d / f"{k}.png")
    code, out, err = run(capsys, "erf", model_file, "--input", "16,16", "--images", str(d),
                         "--json")
    assert code == 0, err
    assert json.loads(out)["samples"] == 2


def test_state_dict_that_does_not_match(capsys, tmp_path, model_file):
    p = tmp_path / "w.pt"
    torch.save({"0.weight": torch.zeros(2, 2)}, p)
    code, out, err = run(capsys, "erf", model_file, "--input", "16,16", "--weights", str(p))
    assert code == 2 and "does not match the model" in err


def test_matching_state_dict_is_loaded(capsys, tmp_path, model_file):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    p = tmp_path / "w.pt"
    torch.save(net.state_dict(), p)
    code, out, err = run(capsys, "erf", model_file, "--input", "16,16", "--weights", str(p),
                         "--samples", "2")
    assert code == 0, err


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_refused_by_weights_only(capsys, tmp_path, model_file):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    code, out, err = run(capsys, "erf", model_file, "--input", "16,16", "--weights", str(p))
    assert code == 2 and "weights_only=True refused it" in err
    assert "this must never run" not in out


def test_boxes_over_a_picture_and_a_bad_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    Image = pytest.importorskip("PIL.Image")
    pic = tmp_path / "p.png"
    Image.fromarray((np.random.rand(40, 50, 3) * 255).astype("uint8")).save(pic)
    out = tmp_path / "b.png"
    assert main(["analyze", "example:seed2", "--boxes", str(out), "--image", str(pic)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    bad = tmp_path / "bad.png"
    bad.write_text("no")
    code = main(["analyze", "example:seed2", "--boxes", str(tmp_path / "c.png"), "--image",
                 str(bad)])
    o, err = capsys.readouterr()
    assert code == 2 and o == "" and "cannot be read as an image" in err


def test_erf_of_a_torchvision_model_runs_its_random_initialisation(capsys):
    """torchvision models are built without initialisation for the analysis and the
    measurement (which set their own weights); the ERF runs the model's random weights,
    so it must have them (uninitialised memory gave NaN)."""
    import math

    pytest.importorskip("torchvision")
    code, out, err = run(capsys, "erf", "torchvision:resnet18", "--input", "64,64",
                         "--samples", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert all(math.isfinite(s) and s > 0 for s in data["std"])
    assert 0 < data["area_ratio"]["20"] < 1


def test_growth_keeps_the_jump_on_global_layers_and_never_dips():
    """An SE gate makes layers global: their local jump is charted and marks stages;
    a side branch (ResNet's 1x1 downsample) does not make the field curve dip
    (issue 22, item 7)."""
    from rfield.report.html import growth_svg

    class Gated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.b = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)

        def forward(self, x):
            x = self.a(x)
            x = x * x.mean((2, 3), keepdim=True).sigmoid()
            return self.b(x)

    d = growth_data(rfield.analyze(Gated(), (32, 32)))
    assert None not in d["jump"] and [d["jump"][i] for i in d["stages"]] == [2, 4]
    r50 = rfield.analyze("example:resnet18")
    g = growth_data(r50)
    assert g["rf"] == sorted(g["rf"])
    assert max(g["rf"]) == max(max(f.rf) for f in r50.layers if f.rf)
    svg = growth_svg(r50)
    assert svg.count('class="stage"') == len(g["stages"]) and "layer4.0" in svg
