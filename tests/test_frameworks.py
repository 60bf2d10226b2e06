"""The framework registry: one record per framework, asked by every command; nothing
outside it branches on which framework a target is. Checked without any framework
installed (recognition imports nothing) and, where one is, through its commands."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rfield
from cli_run import run
from rfield.frameworks import BY_NAME, REGISTRY
from rfield.report.formats import grouped
from rfield.targets import resolve

SRC = Path(__file__).resolve().parent.parent / "src" / "rfield"
NAMES = {f.name for f in REGISTRY}


def test_every_record_is_complete_and_named_once():
    assert [f.name for f in REGISTRY] == ["keras", "jax", "torch", "onnx", "pt2", "torchscript",
                                          "tflite", "spec"]
    for f in REGISTRY:
        tables = f.op_tables()
        assert tables and all(ops for ops in tables.values()), f.name
        assert (f.runner is None) == bool(f.cannot_run), f.name
    suffixes = [s for f in REGISTRY for s in f.suffixes]
    prefixes = [p for f in REGISTRY for p in f.prefixes]
    assert len(suffixes) == len(set(suffixes)) and len(prefixes) == len(set(prefixes))


@pytest.mark.parametrize("target,framework,kind", [
    ("m.onnx", "onnx", "onnx"), ("M.ONNX", "onnx", "onnx"), ("m.keras", "keras", "keras"),
    ("r18.pt2", "pt2", "pt2"), ("r18.pt", "torchscript", "torchscript"),
    ("m.tflite", "tflite", "tflite"),
    ("smp:Unet/resnet34", "torch", "smp"),
    ("ultralytics:yolov8n", "torch", "ultralytics"),
    ("keras:ResNet50", "keras", "keras"), ("timm:resnet50", "torch", "timm"),
    ("hf:facebook/dinov2-small", "torch", "hf"), ("torchvision:resnet18", "torch", "torchvision"),
    ("conv(3); maxpool(2)", "spec", "spec"), ("example:seed2", "spec", "spec"),
    ("net.yaml", "spec", "spec"), ("nets.py:build", "", "factory"),
])
def test_names_are_recognised_by_suffix_then_spec_then_prefix(target, framework, kind):
    t = resolve(target)
    assert (t.framework, t.kind) == (framework, kind)


def test_recognising_a_target_imports_no_framework():
    """In a process of its own: the test run has imported the frameworks already."""
    code = ("import sys\nfrom rfield.targets import resolve\n"
            "kinds = [resolve(t).kind for t in (object(), 'timm:x', 'm.onnx', 'm.keras')]\n"
            "print(kinds, sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'keras', 'jax', 'flax', 'onnx', 'tensorflow'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['spec', 'timm', 'onnx', 'keras'] []"


def _branches_on_a_framework(tree: ast.AST) -> list[int]:
    """Lines comparing a ``.source``, ``.framework`` or ``.kind`` with a framework's name."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        sides += [e for s in sides if isinstance(s, (ast.Tuple, ast.Set, ast.List)) for e in s.elts]
        named = any(isinstance(s, ast.Constant) and s.value in NAMES for s in sides)
        asked = any(isinstance(s, ast.Attribute) and s.attr in ("source", "framework", "kind")
                    for s in sides)
        if named and asked:
            found.append(node.lineno)
    return found


def test_no_module_outside_the_registry_branches_on_the_framework():
    outside = [p for p in sorted(SRC.rglob("*.py"))
               if "frameworks" not in p.parts and p.name != "targets.py"]
    found = [f"{p.relative_to(SRC)}:{line}" for p in outside
             for line in _branches_on_a_framework(ast.parse(p.read_text(encoding="utf-8")))]
    assert not found, found
    # and the check can fail: the old form of the Keras separator
    assert _branches_on_a_framework(ast.parse(
        'sep = "/" if a.graph.provenance.source == "keras" else "."')) == [1]


def test_a_graph_object_is_verified_only_where_it_can_be_run():
    """A spec's Graph is built in torch as its spec is, at its own size; it cannot be
    re-read at a larger one, and a model's Graph holds no model: both refused."""
    torch = pytest.importorskip("torch")
    from rfield.empirical.verify import verify

    checks = verify(rfield.analyze("example:seed2").graph)
    assert checks and all(c.ok for c in checks)
    with pytest.raises(rfield.RfieldError, match="measured at its own size 20"):
        verify(rfield.analyze("conv(5)*4", 20).graph)
    with pytest.raises(rfield.RfieldError, match="holds no model to run"):
        verify(rfield.analyze(torch.nn.Conv2d(3, 3, 3), (8, 8)).graph)


def test_onnx_refuses_to_run_with_the_records_reason(capsys, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not read")
    for command in ("verify", "erf"):
        code, out, err = run(capsys, command, str(path))
        assert code == 2 and out == ""
        assert err.strip() == (f"rfield: error: {command} runs a PyTorch, Keras or JAX model "
                               f"or a layer spec; {BY_NAME['onnx'].cannot_run}")


def test_a_python_file_with_dataclasses_is_a_factory(capsys, tmp_path):
    """Flax modules are dataclasses, which look their module up in sys.modules while
    the file runs: the file is registered as an import would register it."""
    pytest.importorskip("torch")
    path = tmp_path / "cfgnet.py"
    path.write_text("from dataclasses import dataclass\nimport torch\n\n"
                    "@dataclass\nclass Cfg:\n    kernel: int = 5\n\n"
                    "def build():\n    return torch.nn.Conv2d(3, 4, Cfg().kernel)\n")
    code, out, err = run(capsys, "analyze", f"{path}:build", "--input", "20,20", "--json")
    assert code == 0, err
    import json

    layers = json.loads(out)["layers"]
    assert layers[-1]["rf"] == [5, 5]  # one 5x5 conv: nothing to propagate


def test_jax_module_paths_are_grouped_by_their_separator():
    """``--depth`` on a Flax model: ``ResNet18/BasicBlock_0`` is depth 2, its
    ``conv_proj`` depth 3 (counting '.' made every path depth 1)."""
    pytest.importorskip("flax")
    import jax_models as M

    a = rfield.analyze(M.ResNet18(), (64, 64))
    labels = [label for label, _ in grouped(a, 2)]
    assert [label for label in labels if "BasicBlock" in label] == \
        [f"ResNet18/BasicBlock_{i}" for i in range(8)]
    assert all(label.count("/") <= 1 for label in labels)
    assert [label for label, _ in grouped(a, 1)] == ["ResNet18"]
    # and jax.nn.relu is named relu, not the max it is made of
    assert a.fields["ResNet18/relu"].kind == "relu"
