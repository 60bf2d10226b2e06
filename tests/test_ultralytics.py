"""ultralytics YOLO as users hold it (``YOLO("yolov8n.yaml")``, random weights): the
wrapper object is read through its network and left as it was, a shared activation
instance is named by its call site, the per-level maps the detection head reads are
checked against back-propagation, and the head's decoding (anchor grids from
constants, flattened positions) is not printed as an image."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("torch")
ultralytics = pytest.importorskip("ultralytics")

import rfield  # noqa: E402
from rfield.cli import main  # noqa: E402

from torch_checks import check_model  # noqa: E402

LEVELS = ["model.15", "model.18", "model.21"]  # what yolov8n's Detect (model.22) reads


@pytest.fixture(scope="module")
def yolo():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ultralytics.YOLO("yolov8n.yaml")


def test_the_wrapper_is_read_through_its_network_and_left_as_it_was(yolo):
    before = {name: m.training for name, m in yolo.model.named_modules()}
    a = rfield.analyze(yolo, (320, 320))
    assert {name: m.training for name, m in yolo.model.named_modules()} == before
    import torch  # and it still runs: nothing the capture made (meta anchors) is left

    yolo.model(torch.zeros(1, 3, 320, 320))
    # the decoding of the anchors of three maps is followed map by map
    assert not a.graph.unknown_ops
    assert a.field().name == a.graph.aliases["model.22[0:1600]"]  # P3's anchors
    assert not a.field().is_global


def test_levels_equal_back_propagation(yolo):
    a, checked = check_model(yolo.model, (256, 256), modules=LEVELS, exact=True)
    assert checked >= 3 * 3
    jumps = [a.field(m).jump for m in LEVELS]
    assert [j[0] for j in jumps] == [8, 16, 32]


def test_decoded_anchors_equal_back_propagation(yolo):
    """The head's output (boxes decoded with the distribution focal loss, scores),
    one anchor range per map, unit by unit against back-propagation."""
    anchors = ["model.22[0:1024]", "model.22[1024:1280]", "model.22[1280:1344]"]
    a, checked = check_model(yolo.model, (256, 256), modules=anchors,
                             units_per_axis=("centre", 0, -1, 3), exact=True)
    assert checked >= 3 * 4 and not a.graph.unknown_ops
    for anchor, level in zip(anchors, LEVELS):
        assert a.field(anchor).jump == a.field(level).jump
        assert a.field(anchor).rf >= a.field(level).rf  # the head's 3 x 3 convs


def test_a_shared_activation_is_named_where_it_is_called(yolo):
    a = rfield.analyze(yolo.model, (320, 320))
    aliases = a.graph.aliases
    assert aliases["model.15.cv2.act"] == aliases["model.15.cv2"] == aliases["model.15"]
    assert "model.22.cv2.0.1.act" in aliases
    assert not any(name.startswith("model.0.act_") for name in a.graph.nodes)


def test_cli_prints_each_level(tmp_path, capsys, monkeypatch):
    (tmp_path / "yolo_factory.py").write_text(
        "def yolo():\n    from ultralytics import YOLO\n    return YOLO('yolov8n.yaml')\n")
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "yolo_factory.py:yolo", "--input", "320,320"]) == 0
    out = capsys.readouterr().out
    assert "returned maps:" in out
    for level, (size, jump) in zip(LEVELS, ((40, 8), (20, 16), (10, 32))):
        assert f"({level}.cv2.act, {size}x{size}): receptive field" in out
        assert f"jump {jump} x {jump}" in out
    # one side of 32: the 1-wide P5 map no longer stops the reading of P3
    assert main(["analyze", "yolo_factory.py:yolo", "--input", "640,32",
                 "--node", "model.15"]) == 0


def test_an_object_holding_a_network_is_named(capsys):
    class Holder:
        def __init__(self):
            import torch

            self.model = torch.nn.Conv2d(3, 3, 3)

    with pytest.raises(rfield.RfieldError, match=r"pass Holder\(...\).model"):
        rfield.analyze(Holder(), (32, 32))


def test_an_onnx_export_reads_its_anchors_as_the_module(yolo, tmp_path):
    """The head in export mode, exported by torch's TorchScript-based exporter: each
    C2f slices at a size computed from the last block's shape (shape inference settles
    one block a pass), and the decoded anchors read map by map, with the fields the
    module's own reading gives."""
    pytest.importorskip("onnx")
    import torch

    head = yolo.model.model[-1]
    head.export, head.format = True, "onnx"
    try:
        path = tmp_path / "yolov8n.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(yolo.model, torch.zeros(1, 3, 320, 320), str(path),
                              dynamo=False, opset_version=17)
        module = rfield.analyze(yolo.model, (320, 320))
    finally:
        head.export, head.format = False, None
    a = rfield.analyze(str(path))
    assert not a.graph.unknown_ops and not module.graph.unknown_ops
    import onnx

    returned = onnx.load(str(path)).graph.output[0].name
    pieces = sorted(k for k in a.graph.aliases if k.startswith(returned + "["))
    assert [k[k.index("["):] for k in pieces] == ["[0:1600]", "[1600:2000]", "[2000:2100]"]
    for key in pieces:
        got = a.field(a.graph.aliases[key])
        want = module.field(module.graph.aliases["model.22" + key[key.index("["):]])
        assert (got.rf, got.jump, got.start) == (want.rf, want.jump, want.start), key
