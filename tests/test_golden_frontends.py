"""One golden table per front-end, on one model each: what a user of that framework
sees, kept exactly (the numbers in them are checked against back-propagation by each
front-end's own tests; these keep the presentation: names, depth, op column, notes).
``RFIELD_UPDATE_GOLDEN=1`` rewrites them; a missing one fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_run import check_golden, run


def _check(capsys, name: str, *args: str) -> None:
    code, out, err = run(capsys, "analyze", *args)
    assert code == 0, err
    check_golden(f"{name}.txt", out)


def test_torch(capsys):
    pytest.importorskip("torchvision")
    _check(capsys, "torch_resnet18", "torchvision:resnet18", "--input", "64,64")


def test_onnx(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    pytest.importorskip("onnx")
    path = tmp_path / "r18.onnx"
    torch.onnx.export(tv.models.resnet18().eval(), torch.zeros(1, 3, 64, 64), str(path),
                      dynamo=False, input_names=["image"])
    _check(capsys, "onnx_resnet18", str(path), "--depth", "1")


def test_keras(capsys):
    pytest.importorskip("keras")
    _check(capsys, "keras_mobilenetv2", "keras:MobileNetV2", "--input", "96,96")


def test_jax(capsys):
    pytest.importorskip("flax")
    models = Path(__file__).parent / "jax_models.py"
    _check(capsys, "jax_resnet18", f"{models}:ResNet18", "--input", "64,64", "--depth", "2")
