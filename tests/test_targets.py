"""Targets resolved in one place, native input sizes, bare layers and the (C, H, W)
reading of input sizes, with fields checked against back-propagation."""

from __future__ import annotations

import pytest

import rfield
from cli_run import run
from rfield.cli import as_flags, main
from rfield.targets import resolve


@pytest.mark.parametrize("target,kind", [
    ("example:seed2", "spec"), ("spec.json", "spec"), ("conv(3); maxpool(2)", "spec"),
    ("m.onnx", "onnx"), ("torchvision:resnet18", "torchvision"), ("timm:resnet50", "timm"),
    ("nets.py:build", "factory"), ("mypackage.models:unet", "factory"),
    ([{"op": "conv", "kernel": 3}], "spec"),
])
def test_resolve(target, kind):
    assert resolve(target).kind == kind


def test_library_messages_name_arguments_and_the_command_its_flags():
    msg = "a model needs an input size: give input_size=(224, 224); run without strict=True"
    assert as_flags(msg) == "a model needs an input size: give --input 224,224; " \
        "run without --strict"


def test_a_torch_factory_without_input_size_is_refused(capsys, tmp_path):
    """A factory is called first (a Keras model it returns carries its own input size);
    a torch module without one is refused before any capture."""
    pytest.importorskip("torch")
    path = tmp_path / "nets.py"
    path.write_text("import torch\ndef build():\n    return torch.nn.Conv2d(3, 3, 3)\n")
    code, out, err = run(capsys, "analyze", f"{path}:build")
    assert code == 2 and out == "" and "needs an input size: give --input" in err


def test_fields_is_a_mapping_and_provenance_is_set_once():
    a = rfield.analyze("example:seed2")
    assert list(a.fields) == ["conv1", "conv2", "conv3"]
    assert "conv3" in repr(a.fields) and dict(a.fields)["conv3"].rf == (19, 19)
    with pytest.raises(TypeError):
        a.graph.provenance.aliases["x"] = "conv1"
    with pytest.raises(rfield.RfieldError):
        a.graph.set_provenance(a.graph.provenance)


def test_ops_lists_every_front_end_from_its_table(capsys):
    from rfield.frontends.onnx_graph import HANDLERS as ONNX
    from rfield.frontends.torch_ops import HANDLERS as TORCH

    code, out, _ = run(capsys, "ops")
    assert code == 0
    for name in list(TORCH) + list(ONNX):
        assert name in out, name
    assert "Slice (opset 1, 10)" in out
    code, _, err = run(capsys, "ops", "tensorflow")
    assert code == 2 and "no front-end 'tensorflow'" in err


torch = pytest.importorskip("torch")
nn = torch.nn

from torch_checks import check_model  # noqa: E402


class InAList(nn.Module):
    """Layers kept in a plain Python list: no registered submodule does the work."""

    def __init__(self):
        super().__init__()
        self.layers = [nn.Conv2d(3, 4, 3, stride=2), nn.Conv2d(4, 4, 3, dilation=2)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


@pytest.mark.parametrize("model", [nn.Conv2d(3, 8, 3), nn.MaxPool2d(3, stride=2)],
                         ids=["conv", "pool"])
def test_a_bare_layer(model):
    a, checked = check_model(model, (21, 17), modules=[""])
    assert checked and list(a.graph.nodes) in (["conv"], ["maxpool"])
    b = rfield.analyze(model, input_size=(3, 21, 17))
    assert b.graph.input_size == (21, 17) and b.field().rf == a.field().rf


def test_a_root_that_does_the_work_with_layers_in_a_list():
    model = InAList()
    # the measurement runs registered modules only: it checks the same layers in a
    # Sequential, and the list model must be analysed the same
    a, checked = check_model(nn.Sequential(*model.layers), (21, 17), modules=[""])
    b = rfield.analyze(model, input_size=(3, 21, 17))
    assert checked and b.graph.input_size == (21, 17)
    for unit in ((0, 0), (3, 2), (5, 3)):
        assert b.box(None, unit).ranges == a.box(None, unit).ranges


@pytest.mark.parametrize("model", [
    nn.ConvTranspose2d(4, 2, 3, stride=2),
    nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(3, stride=1)),
    nn.Sequential(nn.ConvTranspose1d(5, 2, 4, stride=2, padding=1)),
], ids=["transposed", "no-conv", "transposed-1d"])
def test_channels_first_input_size_without_a_plain_conv(model):
    """(C, *spatial) is read as torch shapes go when the model declares its dims."""
    size = (5, 12) if isinstance(model[0] if isinstance(model, nn.Sequential) else model,
                                  nn.ConvTranspose1d) else (4, 12, 10)
    a, checked = check_model(model, size[1:], modules=[""])
    b = rfield.analyze(model, input_size=size)
    assert b.graph.input_size == size[1:] and b.graph.input_channels == size[0]
    assert [f.rf for f in b.layers] == [f.rf for f in a.layers] and checked


def test_a_factory_returning_a_bare_layer(capsys, tmp_path):
    path = tmp_path / "bare.py"
    path.write_text("from torch import nn\ndef build():\n    return nn.Conv2d(3, 3, 5)\n")
    code, out, err = run(capsys, "analyze", f"{path}:build", "--input", "9,9", "--json")
    assert code == 0, err
    assert '"rf": [5, 5]' in out


def test_strict_names_every_unknown_operator_with_where(capsys, tmp_path):
    class Flip(nn.Module):
        def forward(self, x):
            return torch.flip(x, [2])

    class Flips(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 3)
            self.f = Flip()

        def forward(self, x):
            return torch.rot90(self.f(self.c(x)), 1, [2, 3])

    with pytest.raises(rfield.UnsupportedError) as info:
        rfield.analyze(Flips(), (16, 16), strict=True)
    msg = str(info.value)
    for needle in ("flip (1 x, first in module 'f' (Flip))", "rot90 (1 x",
                   "strict=True"):
        assert needle in msg, (needle, msg)


tv = pytest.importorskip("torchvision")


def test_zoo_models_default_to_their_native_size(capsys):
    code, out, err = run(capsys, "analyze", "torchvision:inception_v3", "--node", "Mixed_5b")
    assert code == 0, err
    assert "input 299x299 (the native size, from torchvision's weights transforms)" in out
    code, out, err = run(capsys, "analyze", "torchvision:fasterrcnn_resnet50_fpn",
                         "--depth", "1")
    assert code == 0 and "input 800x800 (the size the detector's transform" in out


def test_a_video_model_takes_its_clip_of_frames(capsys):
    """torchvision's video weights give crop_size and, in their docs, clip_len: the
    native input is that many frames of that crop; the fields are 3-D."""
    import torchvision as tv

    w = list(tv.models.get_model_weights("r3d_18"))[0]
    assert "clip_len=16" in w.meta["_docs"] and w.transforms.keywords["crop_size"] == (112, 112)
    code, out, err = run(capsys, "analyze", "torchvision:r3d_18", "--node", "layer4")
    assert code == 0, err
    assert "input 16x112x112 (the native size, from torchvision's weights" in out
    # the 3-D boxes against back-propagation, on a small clip
    from torch_checks import check_model

    model = tv.models.video.r3d_18()
    _, checked = check_model(model, (8, 40, 40), modules=["layer1", "layer2", "layer3"])
    assert checked >= 6


def test_verify_without_input_uses_the_native_size(capsys):
    code, out, err = run(capsys, "verify", "torchvision:squeezenet1_1", "--node", "features.4")
    assert code == 0, err
    assert "the analysis equals back-propagation" in out


def test_report_of_a_timm_model_without_input(tmp_path, capsys):
    pytest.importorskip("timm")
    out_path = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "timm:resnet18", "-o", str(out_path))
    assert code == 0, err
    assert "224x224" in out_path.read_text()


def test_a_missing_timm_names_the_extra_that_installs_it(monkeypatch):
    import sys
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    with pytest.raises(rfield.MissingExtraError, match=r'pip install "rfield\[timm\]"'):
        rfield.analyze("timm:resnet18")
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '\ntimm = ["torch>=2.1", "torchvision>=0.16", "timm>=0.9"]' in pyproject


def test_too_few_sizes_for_the_model_says_so(capsys):
    code, out, err = run(capsys, "analyze", "torchvision:resnet18", "--input", "224")
    assert code == 2 and out == "" and "a 2-D model needs 2 sizes" in err
    assert "--input 224,224" in err


def test_json_gives_the_last_spatial_layer_of_a_classifier(capsys):
    import json

    code, out, err = run(capsys, "analyze", "torchvision:resnet18", "--input", "64,64",
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    a = rfield.analyze("torchvision:resnet18", (64, 64))
    last = data["last_spatial"]
    assert last["name"] == a.last_spatial(a.graph.last()) == "layer4.1.relu_1"
    assert last["rf"] == [435, 435] and last["box"] == [list(r) for r in a.box(
        last["name"]).ranges]


@pytest.mark.parametrize("name", ["swin_tiny_patch4_window7_224", "davit_tiny"])
def test_windowed_attention_is_followed_not_a_crash(capsys, name):
    """timm's Swin and DaViT used to end in a TypeError after torch.roll, then were
    reported as views rfield did not follow: their windows and rolls are followed now
    (checked against back-propagation in test_windows.py and the timm sweep)."""
    pytest.importorskip("timm")
    code, out, err = run(capsys, "analyze", f"timm:{name}", "--depth", "all")
    assert code == 0, err
    assert "window attention" in out and "not known" not in out


def test_an_empty_depth_level_is_a_message(capsys, tmp_path):
    path = tmp_path / "ml.py"
    path.write_text("from torch import nn\n"
                    "class M(nn.Module):\n"
                    "    def __init__(self):\n"
                    "        super().__init__()\n"
                    "        self.blocks = nn.ModuleList(\n"
                    "            [nn.Conv2d(3, 3, 3), nn.Conv2d(3, 3, 3)])\n"
                    "    def forward(self, x):\n"
                    "        for b in self.blocks:\n"
                    "            x = b(x)\n"
                    "        return x\n"
                    "def build():\n"
                    "    return M()\n")
    code, out, err = run(capsys, "analyze", f"{path}:build", "--input", "16,16", "--depth", "1")
    assert code == 2 and out == "" and "no module output at depth 1" in err
    assert "try --depth 2" in err
    code, out, err = run(capsys, "analyze", f"{path}:build", "--input", "16,16", "--depth", "2")
    assert code == 0 and "blocks.1" in out


@pytest.mark.parametrize("command", ["analyze", "verify", "erf", "report"])
@pytest.mark.parametrize("target,near", [("timm:convnext_tinyy", "convnext_tiny"),
                                         ("torchvision:resnet5", "resnet50")])
def test_a_typo_in_a_zoo_name_suggests_the_name(capsys, tmp_path, command, target, near):
    """Not 'a model needs an input size': the name is what is wrong."""
    pytest.importorskip("timm")
    argv = [command, target] + (["-o", str(tmp_path / "r.html")] if command == "report"
                                else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"did you mean {near}" in err
    assert "input size" not in err


def test_a_layer_name_is_suggested_once(capsys):
    """A module and its node spelled alike are one suggestion (issue 22, item 20)."""
    torch = pytest.importorskip("torch")
    from rfield.core.query import resolve_node
    from rfield.errors import QueryError

    net = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 3) for _ in range(16)])
    a = rfield.analyze(net, (64, 64))
    with pytest.raises(QueryError) as err:
        resolve_node(a.graph, "15x")
    hint = str(err.value).split("did you mean ")[1]
    names = [n.strip(" '?") for n in hint.split(",")]
    assert names and len(names) == len(set(names)) and "15" in names


def test_a_detector_defaults_to_its_transform_size(capsys):
    """Faster R-CNN is read at 800, SSD300 at 300: the sizes their transforms resize
    images to, not a suggestion of 224 (issue 22, item 13)."""
    pytest.importorskip("torchvision")
    assert main(["analyze", "torchvision:ssd300_vgg16", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "input 300x300 (the size the detector's transform resizes images to)" in out


def test_a_models_table_shows_its_stages_and_every_layer_on_request(capsys):
    """torchinfo's habit (issue 22, item 11): the deepest module level that fits in 40
    rows, said under the table; ``--depth all`` every layer; the rows are the fields
    of the modules they name."""
    from rfield.report.formats import FITTING_ROWS

    a = rfield.analyze("torchvision:resnet18", (64, 64))
    code, out, err = run(capsys, "analyze", "torchvision:resnet18", "--input", "64,64")
    assert code == 0, err
    table = out.split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2:] if not line.startswith("(")}
    assert 10 < len(rows) <= FITTING_ROWS < len(a.layers)
    for module in ("layer1.0", "layer2.1", "layer4.1"):
        f = a.fields[a.graph.aliases[module]]
        assert rows[module][1] == "BasicBlock" and rows[module][3] == "x".join(map(str, f.rf))
    assert f"{len(rows)} of {len(a.layers)} layers; --depth all shows every layer" in out
    code, out, _ = run(capsys, "analyze", "torchvision:resnet18", "--input", "64,64",
                       "--depth", "all")
    assert code == 0 and len(out.split("\n\n")[0].splitlines()) == 2 + len(a.layers)
    assert "--depth all" not in out
    code, out, err = run(capsys, "analyze", "torchvision:resnet18", "--depth", "0")
    assert code == 2 and out == "" and "--depth must be a level from 1, or all" in err


def test_node_keeps_the_layers_it_reads_from_in_every_format(capsys):
    import csv
    import io
    import json

    from rfield.core.query import ancestors, resolve_node

    a = rfield.analyze("torchvision:resnet18", (64, 64))
    node = resolve_node(a.graph, "layer2")
    wanted = [f.name for f in a.layers if f.name in set(ancestors(a.graph, node))]
    assert 0 < len(wanted) < len(a.layers) and wanted[-1] == node
    args = ("analyze", "torchvision:resnet18", "--input", "64,64", "--node", "layer2")
    _, out, _ = run(capsys, *args, "--json")
    assert [layer["name"] for layer in json.loads(out)["layers"]] == wanted
    _, out, _ = run(capsys, *args, "--csv")
    assert [row["name"] for row in csv.DictReader(io.StringIO(out))] == wanted


class Waveform(nn.Module):
    """Takes (batch, time) and adds the channel itself, as torchaudio's wav2vec2 and
    Conv-TasNet do (issue 22, item 18)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 10, stride=5)
        self.conv2 = nn.Conv1d(4, 4, 3, stride=2, dilation=2)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv(x.unsqueeze(1))))


def test_a_waveform_model_takes_an_input_without_channels(capsys):
    """Read without a channel dim once every channel count fails (or with channels=0),
    and measured so: back-propagation through (batch, time) inputs agrees."""
    from rfield.empirical.verify import verify

    a = rfield.analyze(Waveform(), 400)
    assert a.graph.input_channels == 0 and a.fields["conv2"].rf == (30,)
    assert rfield.analyze(Waveform(), 400, channels=0).fields["conv2"].rf == (30,)
    checks = verify(Waveform(), 400)
    assert checks and all(c.ok for c in checks)
    assert {c.node: c.rf for c in checks}["conv2"] == (30, 30)
    with pytest.raises(rfield.RfieldError, match="could not be run on an input of shape"):
        rfield.analyze(Waveform(), 400, channels=1)


class TwoImages(nn.Module):
    """forward(image1, image2), as RAFT's and stereo networks' (issue 22, item 19)."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3)
        self.second = nn.Conv2d(3, 4, 5, padding=1, dilation=1)
        self.head = nn.Conv2d(4, 2, 3, stride=2)

    def forward(self, image1, image2):
        return self.head(self.first(image1) + self.second(image2))


def test_a_model_of_two_images_takes_one_image_twice(capsys, tmp_path):
    """Refused with the way out named; with inputs=2 the one image goes to both, the
    field is the union of both paths, and back-propagation agrees."""
    from rfield.empirical.verify import verify

    path = tmp_path / "pair.py"
    path.write_text("from test_targets import TwoImages\n\ndef build():\n"
                    "    return TwoImages()\n")
    code, out, err = run(capsys, "analyze", f"{path}:build", "--input", "32,32")
    assert code == 2 and out == "" and "The model takes 2 images: give --inputs 2" in err
    a = rfield.analyze(TwoImages(), (32, 32), inputs=2)
    assert a.fields["head"].rf == (7, 7)  # the 5x5 path, then a 3x3 at stride 1
    checks = verify(TwoImages(), (32, 32), inputs=2, nodes=["head"])
    assert checks and all(c.ok for c in checks) and checks[0].rf == (7, 7)
    assert set(a.graph.aliases) >= {"first", "second", "head"}  # the model's own paths
    code, out, err = run(capsys, "analyze", "example:seed2", "--inputs", "2")
    assert code == 2 and "--inputs N (one image passed to N inputs) is read for PyTorch" in err


class Blur5(nn.Module):
    """A 5x5 mean through ``unfold``, which rfield does not follow (issue 22: a user
    adds the handler, as fvcore's set_op_handle)."""

    def forward(self, x):
        p = nn.functional.pad(x, (2, 2, 2, 2))
        return p.unfold(2, 5, 1).unfold(3, 5, 1).mean((-1, -2))


def test_a_user_adds_a_module_handler_without_editing_rfield():
    from rfield.empirical.verify import verify
    from rfield.frontends.torch_ops import MODULE_HANDLERS

    net = nn.Sequential(nn.Conv2d(3, 3, 3), Blur5(), nn.Conv2d(3, 3, 3, stride=2))
    assert rfield.analyze(net, (24, 24)).fields["2"].is_global  # unknown: read as global

    def blur(capture, module, x, out):
        capture.kernel.window("avgpool", capture.t(x), capture.t(out), [5, 5], 1, [[2, 2]] * 2)

    try:
        rfield.set_op_handle("torch", "Blur5", blur, module=True)
        a = rfield.analyze(net, (24, 24))
        assert a.fields["2"].rf == (9, 9) and not a.graph.unknown_ops
        checks = verify(net, (24, 24), nodes=["1", "2"])
        assert all(c.ok for c in checks) and {c.rf for c in checks} == {(7, 7), (9, 9)}
    finally:
        MODULE_HANDLERS.pop("Blur5", None)
    with pytest.raises(rfield.RfieldError, match="no operator table for 'spec'"):
        rfield.set_op_handle("spec", "blur", blur)
