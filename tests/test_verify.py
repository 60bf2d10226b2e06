"""rfield verify: analysis against back-propagation, on specs and on torch models."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from rfield.cli import main  # noqa: E402
from rfield.empirical.verify import verify  # noqa: E402


@pytest.mark.parametrize("target,size", [
    ("example:seed2", None), ("example:unet", None), ("example:fpn", None),
    ("example:inception", None), ("example:aspp", None), ("example:wavenet", "600"),
    ("example:video3d", "8,24,24"),
    ("conv(3,p=1); up=upsample(3,mode=linear,align_corners=true); crop([[1,2]]); "
     "pad([[2,1]],mode=reflect); adaptivepool(7); pixelshuffle(2); slice(1,step=2)", "19"),
])
def test_specs_verify(capsys, target, size):
    argv = ["verify", target] + (["--input", size] if size else [])
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "analysis equals back-propagation" in out


class Flipping(nn.Module):
    """Mirrors with torch.flip, which rfield cannot represent (it reverses positions):
    the analysis must say so and verify must catch the difference."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.b(torch.flip(self.a(x), dims=[3]))


def test_verify_catches_a_network_built_to_fool_it(capsys, tmp_path):
    path = tmp_path / "fool.py"
    path.write_text("import torch\nfrom torch import nn\n" + _source(Flipping) +
                    "\ndef build():\n    return Flipping()\n")
    code = main(["verify", f"{path}:build", "--input", "16,16", "--node", "b"])
    out = capsys.readouterr().out
    assert code == 1
    assert "DIFFERS" in out and "differs from back-propagation at b" in out


def _source(cls) -> str:
    import inspect

    return inspect.getsource(cls)


def test_verify_torch_model_defaults_to_stages():
    tv = pytest.importorskip("torchvision")
    checks = verify(tv.models.squeezenet1_1(), (3, 48, 48))
    assert checks and all(c.ok for c in checks)
    assert len({c.node for c in checks}) >= 2


def test_verify_refuses_onnx(capsys, tmp_path):
    code = main(["verify", str(tmp_path / "m.onnx")])
    assert code == 2 and "ONNX" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["verify", "erf"])
def test_a_device_torch_cannot_use_is_one_line(capsys, command):
    """--device names where a PyTorch model is measured; one torch cannot use here is
    refused in one line (CI has no GPU; on a GPU machine cuda is a real run)."""
    torch = pytest.importorskip("torch")
    devices = ["tpu7"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in devices:
        code = main([command, "example:seed2", "--device", device])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and f"--device {device}" in err


def test_verify_on_the_cpu_device(capsys):
    assert main(["verify", "example:seed2", "--device", "cpu"]) == 0


@pytest.mark.parametrize("command", ["verify", "erf"])
def test_an_onnx_file_is_refused_by_the_command_asked(capsys, command):
    """erf on an ONNX file speaks of erf, not of verify (issue 22, item 9)."""
    assert main([command, "r18.onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rfield: error: {command} runs a PyTorch") and "ONNX" in err


def test_verify_says_what_it_measures():
    """A long measurement is not silent (the command prints this on a terminal;
    issue 22, item 10)."""
    heard: list[str] = []
    verify("example:seed2", say=heard.append)
    assert len(heard) == 2 and heard[0].endswith("layers on the 64x64 input")
    assert heard[1] == "measuring them again on a 64x64 input (the whole field)"
