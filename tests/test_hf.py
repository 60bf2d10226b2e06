"""Hugging Face transformers vision models built from their configs (random weights,
nothing downloaded), as ``hf:TYPE`` targets and as modules: the default node is what
the model returns (last_hidden_state, not the pooler), checked against
back-propagation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rfield.cli import main  # noqa: E402

from torch_checks import check_model  # noqa: E402


@pytest.mark.parametrize("kind,modules", [
    ("resnet", ["embedder", "encoder.stages.1", "encoder.stages.3"]),
    ("convnext", ["embeddings", "encoder.stages.2", "encoder.stages.3"]),
])
def test_hf_models_equal_back_propagation(kind, modules):
    config = transformers.AutoConfig.for_model(kind)
    model = transformers.AutoModel.from_config(config).eval()
    a, checked = check_model(model, (64, 64), modules=modules + [""])
    assert checked >= 3 * len(modules) and not a.graph.unknown_ops
    # the default node: last_hidden_state, the first spatial tensor returned
    outputs = a.graph.provenance.outputs
    assert a.field().name == outputs["output.last_hidden_state"]
    assert not a.field().is_global
    assert a.field("pooler_output").is_global


def test_hf_target_builds_from_the_config(capsys):
    assert main(["analyze", "hf:resnet"]) == 0
    out = capsys.readouterr().out
    assert "input 224x224 (ImageNet's usual size: the config names no image_size)" in out
    assert "encoder.stages.3" in out and "pooler" not in out.splitlines()[-2]
    assert main(["analyze", "hf:convnext", "--node", "last_hidden_state", "--json"]) == 0


def test_hub_names_are_refused_in_one_line(capsys):
    assert main(["analyze", "hf:microsoft/resnet-50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "downloads nothing" in err[0]
