"""The PyTorch front-end against back-propagation through the real modules."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import rfield  # noqa: E402
from cli_run import run  # noqa: E402
from rfield.cli import main  # noqa: E402
from rfield.errors import TargetError, UnsupportedError  # noqa: E402

from torch_checks import check_model  # noqa: E402


class Functional(nn.Module):
    """Functional calls, in-place ops, merges, views, interpolation, control flow."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 5))
        self.branch = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.same = nn.Conv2d(8, 8, (5, 3), padding="same")
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2, padding_mode="reflect")
        self.lin = nn.Linear(8, 8)
        self.up = nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1)

    def forward(self, x):
        y = F.conv2d(x, self.w, padding=(1, 2))
        y = F.relu(y, inplace=True)
        y = F.max_pool2d(y, 3, stride=2, padding=1, ceil_mode=True)
        z = self.branch(y)
        z.add_(y)
        y = torch.cat([z, y * 2], dim=1)[:, :8]
        if y.shape[-1] > 4:  # Python control flow on shapes
            for _ in range(2):
                y = self.same(y)
        b, c, h, w = y.shape
        y = y.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)  # channel shuffle
        y = self.lin(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # NHWC linear
        y = self.dw(y) + self.grouped(y)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = self.up(F.avg_pool2d(y, 2))
        return F.pixel_shuffle(y[:, :, 1:-1, ::2], 2)


def test_functional_calls_views_and_control_flow():
    a, checked = check_model(Functional(), (40, 36), modules=["", "branch", "same", "up"],
                             channels=3)
    assert checked >= 8
    assert not a.graph.unknown_ops


class Audio(nn.Module):
    """A WaveNet-style causal dilated Conv1d stack."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(4, 4, 2, dilation=d) for d in (1, 2, 4, 8))
        self.stem = nn.Conv1d(1, 4, 3, stride=2)

    def forward(self, x):
        x = self.stem(x)
        for conv in self.convs:
            x = x + conv(F.pad(x, (conv.dilation[0], 0)))
        return x


class Narrowed(nn.Module):
    """A U-Net style crop of a skip connection with torch.narrow, then a merge."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3)
        self.skip = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.down(x)
        s = torch.narrow(torch.narrow(self.skip(x), 2, 1, y.shape[2]), 3, 1, y.shape[3])
        return torch.cat([y, s], dim=1)


def test_narrow_crops_exactly():
    a, _ = check_model(Narrowed(), (12, 14), modules=[""])
    assert not a.graph.unknown_ops


def test_conv1d_causal_stack():
    a, _ = check_model(Audio(), (200,), modules=["", "convs.3", "stem"])
    f = a.field()
    assert f.rf == (3 + 2 * (1 + 2 + 4 + 8),) and f.jump == (2,)


def test_conv3d_video():
    m = nn.Sequential(nn.Conv3d(3, 4, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3)),
                      nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
                      nn.Conv3d(4, 4, 3, padding=1, dilation=(1, 2, 2)))
    check_model(m, (6, 30, 30), modules=["", "0", "1"])


class SE(nn.Module):
    def __init__(self, gate: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc = nn.Conv2d(8, 8, 1)
        self.gate = gate

    def forward(self, x):
        x = self.conv2(F.relu(self.conv1(x)))
        if self.gate:
            x = x * torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))
        return F.relu(x)


def test_global_gate_reports_whole_input_and_local_rf():
    a, _ = check_model(SE(), (20, 20), modules=[""])
    f = a.field()
    assert f.is_global and f.rf is None
    plain = rfield.analyze(SE(gate=False), (20, 20)).field()
    assert f.local_rf == plain.rf == (5, 5)
    # the local field is the measured field of the same network without the gate
    _, checked = check_model(SE(gate=False), (20, 20), modules=[""])
    assert checked


def test_global_gate_in_table_and_json(capsys, tmp_path):
    path = tmp_path / "se.py"
    path.write_text(textwrap.dedent("""
        import torch
        from torch import nn
        import torch.nn.functional as F

        class SE(nn.Module):
            def __init__(self, width=8):
                super().__init__()
                self.conv = nn.Conv2d(3, width, 3, padding=1)
                self.fc = nn.Conv2d(width, width, 1)

            def forward(self, x):
                x = self.conv(x)
                return x * torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))

        def build(width=8):
            return SE(width)
    """))
    assert main(["analyze", f"{path}:build", "--input", "16,16", "--kwargs",
                 '{"width": 4}']) == 0
    out = capsys.readouterr().out
    assert "local" in out.splitlines()[0] and "global" in out
    assert main(["analyze", f"{path}:build", "--input", "16,16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    last = data["layers"][-1]
    assert last["global"] is True and last["rf"] is None and last["local_rf"] == [3, 3]


class Rolls(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.flip(self.conv(x), dims=[-1]))


def test_unknown_operator_is_reported_and_never_identity(capsys):
    a = rfield.analyze(Rolls(), (12, 12))
    assert a.graph.unknown_ops == {"flip": 1}
    assert any("flip" in w and "not known" in w for w in a.warnings)
    assert a.field().is_global  # taken to read everything, never as identity
    with pytest.raises(UnsupportedError, match="flip"):
        rfield.analyze(Rolls(), (12, 12), strict=True)


def test_module_names_are_nodes():
    tv = pytest.importorskip("torchvision")
    a = rfield.analyze(tv.models.resnet18(), (3, 64, 64))
    for name in ("layer4", "layer3.1", "layer2.0.conv1", "layer1.0.bn2", "conv1"):
        assert a.field(name).rf is not None
    assert a.field("layer4").rf == (435, 435)
    assert a.field("layer4").jump == (32, 32)


def test_channels_from_first_layer_and_override():
    m = nn.Sequential(nn.Conv2d(5, 4, 3), nn.ReLU())
    assert rfield.analyze(m, (9, 9)).field().output_size == (7, 7)
    assert rfield.analyze(m, (5, 9, 9)).field().output_size == (7, 7)
    with pytest.raises(TargetError, match="could not be run"):
        rfield.analyze(m, (9, 9), channels=3)
    stem_last = nn.Sequential()
    stem_last.add_module("later", nn.Conv2d(4, 4, 3))
    stem_last.add_module("stem", nn.Conv2d(2, 4, 3))
    stem_last.forward = lambda x: stem_last.later(stem_last.stem(x))
    assert rfield.analyze(stem_last, (9, 9)).graph.input_channels == 2


# --------------------------------------------------------------------------- CLI


def test_torchvision_target_json(capsys):
    pytest.importorskip("torchvision")
    code, out, err = run(capsys, "analyze", "torchvision:resnet18", "--input", "64,64",
                         "--node", "layer3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["node"] == "layer3.1.relu_1" and data["box"] == [[0, 63], [0, 63]]


def test_package_module_factory(capsys, tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n"
        "def tiny(k=3):\n    return nn.Sequential(nn.Conv2d(3, 3, k), nn.Conv2d(3, 3, k))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run(capsys, "analyze", "mynets:tiny", "--input", "16,16", "--kwargs",
                         '{"k": 5}', "--json")
    assert code == 0, err
    assert json.loads(out)["layers"][-1]["rf"] == [9, 9]


BAD_FACTORIES = {
    "raises.py": ("def build():\n    raise ValueError('no such width')\n",
                  ["raised ValueError: no such width"]),
    "noimport.py": ("import not_a_module_anywhere\n", ["does not import", "ModuleNotFound"]),
    "notmodule.py": ("def build():\n    return 42\n",
                     ["gave a int, not a torch.nn.Module, a keras.Model, a Flax module"]),
    "small.py": ("from torch import nn\ndef build():\n"
                 "    return nn.Sequential(nn.Conv2d(3, 3, 3), nn.MaxPool2d(2),\n"
                 "                         nn.Conv2d(3, 3, 5))\n",
                 ["could not be run", "Conv2d", "2"]),
}


@pytest.mark.parametrize("fname", sorted(BAD_FACTORIES))
def test_bad_model_targets(capsys, tmp_path, fname):
    text, needles = BAD_FACTORIES[fname]
    path = tmp_path / fname
    path.write_text(text)
    code, out, err = run(capsys, "analyze", f"{path}:build", "--input", "8,8")
    assert code == 2 and out == "" and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_missing_factory_and_unknown_torchvision_name(capsys, tmp_path):
    path = tmp_path / "nets.py"
    path.write_text("x = 1\n")
    code, _, err = run(capsys, "analyze", f"{path}:build", "--input", "8,8")
    assert code == 2 and "has no 'build'" in err
    pytest.importorskip("torchvision")
    code, _, err = run(capsys, "analyze", "torchvision:resnet19", "--input", "8,8")
    assert code == 2 and "did you mean" in err


def test_torch_is_imported_lazily():
    import subprocess

    code = "import sys, rfield; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_depth_groups_rows_by_module(capsys):
    pytest.importorskip("torchvision")
    assert main(["analyze", "torchvision:resnet18", "--input", "64,64", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    table, note = out.split("\n\n")[0].rsplit("\n", 1)
    names = [line.split()[0] for line in table.splitlines()[2:]]
    assert names == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                     "layer4", "avgpool", "fc"]
    assert note.startswith("(module outputs to depth 1: 10 of ")
    assert "Sequential" in out
    row = next(line for line in out.splitlines() if line.startswith("layer4 "))
    a = rfield.analyze("torchvision:resnet18", (64, 64))
    assert "x".join(map(str, a.field("layer4").rf)) in row


@pytest.mark.parametrize("name", ["convnext_atto", "resnet18", "efficientnet_b0"])
def test_timm_targets_against_the_measurement(name):
    pytest.importorskip("timm")
    from rfield.models.torch_models import build_target

    model = build_target(f"timm:{name}")
    a, checked = check_model(model, (64, 64))
    assert checked >= 3 and not a.graph.unknown_ops


def test_tresnet_space_to_depth_stem_is_followed():
    """TResNet's stem regroups 4 x 4 pixel blocks into channels with a view, a permute
    and a view: PixelUnshuffle(4). Its SE gates make the field global; the local field
    is that of the same network without them, which is measured."""
    timm = pytest.importorskip("timm")
    import copy

    model = timm.create_model("tresnet_m", pretrained=False).eval()
    a = rfield.analyze(model, (128, 128))
    assert not a.graph.unknown_ops
    last = a.fields[a.last_spatial(a.field().name)]
    assert last.is_global and last.local_rf is not None
    plain = copy.deepcopy(model)
    for name, module in list(plain.named_modules()):
        if type(module).__name__ == "SEModule":
            parent, _, attr = name.rpartition(".")
            setattr(plain.get_submodule(parent), attr, nn.Identity())
    b, checked = check_model(plain, (128, 128), modules=["body.s2d", "body.conv1",
                                                         "body.layer2", "body.layer4"])
    assert checked >= 8 and not b.fields[b.graph.aliases["body.layer4"]].is_global
    plain_last = b.fields[b.graph.aliases["body.layer4"]]
    assert (last.local_rf, last.local_jump) == (plain_last.rf, plain_last.jump)


class Tokens(nn.Module):
    """ViT-style: patches to tokens, then an op rfield does not know on the tokens."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 4, 4, stride=4)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        return torch.flip(t, dims=[1])


def test_unknown_ops_on_tokens_are_reported_by_name():
    """The tokens keep their positions (the view is followed); a flip of them is not."""
    a = rfield.analyze(Tokens(), (16, 16))
    assert a.graph.unknown_ops == {"flip": 1}
    assert a.field().is_global and a.field("patch").rf == (4, 4)


class Normed(nn.Module):
    """A norm whose statistics run over positions between two convolutions."""

    def __init__(self, norm):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2)
        self.norm = norm
        self.b = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return self.b(self.norm(self.a(x)))


@pytest.mark.parametrize("norm", [nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
                                  nn.LayerNorm([4, 7, 7])], ids=["group", "instance", "layer"])
def test_norms_over_positions_are_global_with_a_local_field(norm):
    a, checked = check_model(Normed(norm), (16, 16), modules=["norm", "b"])
    assert checked and a.field("b").is_global
    # the local field is the one of the same network without the norm, measured too
    plain, _ = check_model(Normed(nn.Identity()), (16, 16), modules=["b"])
    f, g = a.field("b"), plain.field("b")
    assert (f.local_rf, f.local_jump, f.local_start) == (g.rf, g.jump, g.start)


def test_a_layer_norm_over_channels_stays_pointwise():
    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3)
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            return self.norm(self.a(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    a, checked = check_model(ChannelsLast(), (12, 12), modules=[""])
    assert checked and not a.field().is_global and a.field().rf == (3, 3)


def test_the_default_node_is_what_the_model_returns():
    """A model returning a dict (as Hugging Face and segmentation models do) is answered
    for its first spatial output, and each returned tensor is a named node."""

    class Returns(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 5, stride=2)
            self.b = nn.Conv2d(4, 4, 3)

        def forward(self, x):
            y = self.a(x)
            pooled = self.b(y).mean((2, 3))  # computed last, but not what users ask
            return {"last_hidden_state": y, "pooler_output": pooled}

    a = rfield.analyze(Returns(), (3, 16, 16))
    assert a.field().name == a.graph.aliases["a"] and a.field().rf == (5, 5)
    assert a.field("pooler_output").is_global
    assert a.field("output.last_hidden_state") == a.field("last_hidden_state")
    a2, checked = check_model(Returns(), (16, 16), modules=["a"])
    assert checked and a2.box().ranges == a2.box("a").ranges


def test_the_model_is_left_as_it_was():
    """The capture swaps parameters for meta copies and runs forward: afterwards every
    parameter and buffer is the same object, and modes are as they were (CoaT holds
    its position encodings at several paths; the swap left plain tensors there)."""
    timm = pytest.importorskip("timm")
    model = timm.create_model("coat_mini", pretrained=False)
    model.patch_embed1.train(False)
    params = {n: p for n, p in model.named_parameters(remove_duplicate=False)}
    buffers = {n: b for n, b in model.named_buffers(remove_duplicate=False)}
    modes = {n: m.training for n, m in model.named_modules()}
    rfield.analyze(model, (224, 224))
    assert all(p is params[n] for n, p in model.named_parameters(remove_duplicate=False))
    assert all(b is buffers[n] for n, b in model.named_buffers(remove_duplicate=False))
    assert {n: m.training for n, m in model.named_modules()} == modes
    model.double()  # failed with "param must be a Parameter"


def test_cli_tokens_windows_and_space_to_depth(capsys):
    """As a user types them: ViT tokens reshaped back to their 14 x 14 grid stay a
    grid (global, after attention); Swin's window partitions and rolls are followed
    (test_windows.py); TResNet's stem is followed, so its local field is given (732, the
    field of the network without its SE gates, measured in
    test_tresnet_space_to_depth_stem_is_followed)."""
    pytest.importorskip("timm")
    assert main(["analyze", "timm:vit_tiny_patch16_224", "--kwargs",
                 '{"features_only": true, "out_indices": [-1]}']) == 0
    out = capsys.readouterr().out
    assert "reads the whole input (global)" in out and "unit (7, 7) sees" in out
    assert main(["analyze", "timm:swin_tiny_patch4_window7_224", "--depth", "all"]) == 0
    out = capsys.readouterr().out
    assert "window attention" in out and "not known" not in out
    assert main(["analyze", "timm:tresnet_m"]) == 0
    assert "without the global paths, receptive field 732 x 732" in capsys.readouterr().out


class SpaceToDepth(nn.Module):
    """Named like timm's module, but not what its handler expects: a tuple out."""

    def forward(self, x):
        return x[:, :, ::2, ::2], x


def test_a_module_read_whole_that_does_not_fit_is_reported():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), SpaceToDepth())
    a = rfield.analyze(model, (16, 16))
    assert "SpaceToDepth" in a.graph.unknown_ops  # never dropped, never an identity
    assert a.field().is_global


class EcaGate(nn.Module):
    """timm's ECA gate (a Conv1d over channels) where the channels equal the map's side:
    the gate expanded back onto the map must land on the spatial dims, not dims 1-2."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.eca = nn.Conv1d(1, 1, 3, padding=1)
        self.head = nn.Conv2d(32, 16, 3)

    def forward(self, x):
        x = self.stem(x)
        y = self.eca(x.mean((2, 3)).view(x.shape[0], 1, -1))
        y = torch.sigmoid(y).view(x.shape[0], -1, 1, 1)
        return self.head(x * y.expand_as(x))


def test_a_gate_expanded_where_channels_equal_the_side():
    a, checked = check_model(EcaGate(), (64, 64), modules=["head"], units_per_axis=(0, -1))
    f = a.field("head")
    assert checked and f.is_global  # the boxes of both corner units equal the measured


def test_a_detector_object_is_read_as_its_name_is():
    """An SSD300 passed as an object was read through its transform's untracked batch
    (rf 1, no warning); it takes the name's path, through its backbone (issue 22,
    item 16)."""
    tv = pytest.importorskip("torchvision")
    model = tv.models.detection.ssd300_vgg16(weights=None, weights_backbone=None)
    obj = rfield.analyze(model, (300, 300))
    name = rfield.analyze("torchvision:ssd300_vgg16", (300, 300))
    assert [(f.name, f.rf, f.jump) for f in obj.layers] == \
        [(f.name, f.rf, f.jump) for f in name.layers]
    assert obj.field().rf == (92, 92)  # not 1: the backbone was read (the sweep measures it)


@pytest.mark.parametrize("norm", ["batch", "group", "layer"])
def test_a_model_torch_cannot_run_is_refused(norm):
    """A norm over more channels than it is given: torch raises, so must the capture
    (a transformers config with 320 channels into a BatchNorm of 2560 was answered;
    issue 22, item 17)."""
    from rfield.errors import TargetError

    bad = {"batch": nn.BatchNorm2d(16), "group": nn.GroupNorm(2, 16),
           "layer": nn.LayerNorm([30, 31])}[norm]
    with pytest.raises(RuntimeError):
        nn.Sequential(nn.Conv2d(3, 8, 3), bad).eval()(torch.zeros(1, 3, 32, 32))
    with pytest.raises(TargetError, match="could not be run"):
        rfield.analyze(nn.Sequential(nn.Conv2d(3, 8, 3), bad), (32, 32))


def test_a_max_pool_padded_with_minus_infinity_is_measured():
    """TF 'same' max pooling pads with -inf (timm's MaxPool2dSame, NesT's _jx models):
    as the measurement averages, -inf must not poison the windows (it overflowed)."""
    import torch.nn.functional as F

    class SameMaxPool(nn.Module):
        def forward(self, x):  # then a gate, which reads the pooled values themselves
            y = F.max_pool2d(F.pad(x, (1, 1, 1, 1), value=-float("inf")), 3, 2)
            return y * torch.sigmoid(y)

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), SameMaxPool(),
                          nn.Conv2d(4, 4, 3, padding=1))
    _, checked = check_model(model, (17, 17))
    assert checked >= 3


class Repeats(nn.Module):
    """repeat_interleave along both spatial dims (nearest upsampling by 2 and 3) and
    along channels, then rms_norm over channels (issue 23's unknown operators)."""

    def __init__(self, spatial_norm: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.head = nn.Conv2d(8, 4, 3)
        self.spatial_norm = spatial_norm

    def forward(self, x):
        y = self.conv(x).repeat_interleave(2, dim=2).repeat_interleave(3, dim=3)
        y = y.repeat_interleave(2, dim=1)
        if self.spatial_norm:  # statistics over a spatial dim: global
            return self.head(F.rms_norm(y, (y.shape[-1],)))
        return self.head(F.rms_norm(y.permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2))


def test_repeat_interleave_and_rms_norm_are_followed():
    a, checked = check_model(Repeats(), (20, 20), modules=["head"],
                             units_per_axis=("centre", 0, -1, 1, 2, 3, 5), exact=True)
    assert checked >= 7 and not a.graph.unknown_ops
    g = rfield.analyze(Repeats(spatial_norm=True), (20, 20))
    assert g.fields[g.graph.aliases["head"]].is_global and not g.graph.unknown_ops


class Norms(nn.Module):
    """ConvNeXt-V2's GRN (a norm over the spatial dims, channels last) and a norm over
    channels: torch.norm, linalg.vector_norm and Tensor.norm (issue 23's ``norm``)."""

    def __init__(self, over_space: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Conv2d(4, 4, 3)
        self.over_space = over_space

    def forward(self, x):
        y = self.conv(x)
        if self.over_space:
            t = y.permute(0, 2, 3, 1)
            g = torch.norm(t, p=2, dim=(1, 2), keepdim=True)
            t = t * (g / (torch.linalg.vector_norm(g, dim=-1, keepdim=True) + 1e-6))
            y = t.permute(0, 3, 1, 2)
        else:
            y = y / y.norm(dim=1, keepdim=True)
        return self.head(y)


@pytest.mark.parametrize("over_space", [False, True])
def test_norm_is_a_reduction_over_its_dims(over_space):
    a, checked = check_model(Norms(over_space), (14, 12), modules=["head"],
                             units_per_axis=("centre", 0, -1, 1), exact=True)
    assert checked >= 4 and not a.graph.unknown_ops
    f = a.fields[a.graph.aliases["head"]]
    assert f.is_global == over_space and (over_space or f.rf == (5, 5))


class RoutedConv(nn.Module):
    """CondConv as timm writes it (efficientnet_cc): expert kernels mixed by routing
    weights pooled from the whole map, applied per sample through groups."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.route = nn.Linear(2, 3)
        self.experts = nn.Parameter(torch.randn(3, 2 * 2 * 3 * 3))
        self.head = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        y = self.stem(x)
        b, c, h, w = y.shape
        r = torch.sigmoid(self.route(y.mean((2, 3))))
        weight = (r @ self.experts).view(b * 2, 2, 3, 3)
        z = nn.functional.conv2d(y.reshape(1, b * c, h, w), weight, padding=1, groups=b)
        return self.head(z.view(b, 2, h, w))


def test_a_conv_with_routed_expert_weights_is_global_beside_its_window():
    a, checked = check_model(RoutedConv(), (16, 16), modules=[""], exact=True,
                             units_per_axis=("centre", 0, -1, 3))
    f = a.field()
    assert checked >= 4 and not a.graph.unknown_ops
    assert f.is_global and f.local_rf == (7, 7)
