"""The JAX front-end from the command line: a factory returning a linen module, an NNX
module or a function, with module paths, verify, erf, report and one-line refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")


from cli_run import run  # noqa: E402

TESTS = Path(__file__).parent

FACTORIES = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import jax_models as M

def resnet18():
    return M.ResNet18()

def nnx():
    return M.nnx_net()

def function():
    return M.plain_function

def broken():
    return M.ResNet18(), {{"params": {{}}}}
"""


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "models.py").write_text(FACTORIES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path



def test_a_linen_factory_prints_module_paths(models, capsys):
    code, out, _ = run(capsys, "analyze", "models.py:resnet18", "--input", "224,224",
                       "--depth", "all")
    assert code == 0
    assert "ResNet18/BasicBlock_7/Conv_1" in out and "ResNet18/conv_init" in out
    # the last spatial map, as verify measures it in test_jax.py at 64 x 64
    assert "435 x 435, jump 32 x 32" in out
    code, out, _ = run(capsys, "analyze", "models.py:resnet18", "--input", "224,224",
                       "--node", "ResNet18/BasicBlock_3", "--json")
    data = json.loads(out)
    assert code == 0 and data["node"] == "ResNet18/BasicBlock_3/relu_1"


def test_verify_erf_and_report_on_nnx(models, capsys, tmp_path):
    code, out, _ = run(capsys, "verify", "models.py:nnx", "--input", "20,21")
    assert code == 0 and "equals back-propagation" in out
    code, out, _ = run(capsys, "erf", "models.py:nnx", "--input", "20,21", "--samples", "2",
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["node"] == "NnxNet/body/add"
    page = tmp_path / "r.html"
    assert run(capsys, "report", "models.py:nnx", "--input", "20,21", "-o", str(page))[0] == 0
    assert "NnxNet/body/conv" in page.read_text()


def test_a_function_in_nchw(models, capsys):
    code, out, _ = run(capsys, "analyze", "models.py:function", "--input", "19,24",
                       "--layout", "nchw")
    assert code == 0 and "receptive field 7 x 9, jump 4 x 4" in out


@pytest.mark.parametrize("argv,words", [
    (["analyze", "models.py:resnet18"], "needs an input size"),
    (["analyze", "models.py:broken", "--input", "64,64"], "JAX cannot run the program"),
    (["analyze", "models.py:resnet18", "--input", "64,64", "--node", "ResNet18/nope"],
     "nope"),
])
def test_refusals_are_one_line(models, capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
