"""Keras targets as users give them: ``keras:NAME`` at its native size, the same model
from a ``.keras`` file, a factory, and the files rfield refuses. The numbers are checked
against back-propagation in Keras (the last spatial layer's centre unit, and more)."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
pytest.importorskip("jax")

import rfield  # noqa: E402
from rfield.cli import main  # noqa: E402
from rfield.models.keras_models import build_application  # noqa: E402

from keras_checks import check_boxes  # noqa: E402

if keras.backend.backend() != "jax":
    pytest.skip("these tests run on Keras' JAX backend", allow_module_level=True)

# name -> (native size, a layer users ask about by its Keras name); every other
# application is read at its native size and measured at 96 x 96 by the slow sweep
# (test_keras_zoo)
ISSUE_MODELS = {
    "ResNet50": ((224, 224), "conv4_block6_out"),
    "EfficientNetB0": ((224, 224), "block6a_expand_activation"),
}


def run_json(capsys, *argv) -> dict:
    assert main(["analyze", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", [
    "ResNet50",
    pytest.param("EfficientNetB0", marks=pytest.mark.slow),  # 90 s on 2 cores: make test-slow
])
def test_applications_at_their_native_size_and_from_a_keras_file(name, capsys, tmp_path):
    size, layer = ISSUE_MODELS[name]
    out = run_json(capsys, f"keras:{name}", "--node", layer)
    assert tuple(out["input_size"]) == size
    model = build_application(name)
    a = rfield.analyze(model)
    node = a.graph.aliases[layer]
    assert out["node"] == node
    last = a.last_spatial(a.graph.provenance.outputs["output"])
    # the numbers against back-propagation: the centre unit and corners of the layer
    # asked about and of the last spatial layer
    names = [n for n, v in a.graph.aliases.items() if v in (node, last) and "/" not in n]
    check_boxes(model, layers=names, limit=5)
    if name == "EfficientNetB0":  # squeeze-and-excitation: global, the local field beside
        f = a.fields[last]
        assert f.is_global and f.local_rf == (851, 851) and f.local_jump == (32, 32)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    numbers = lambda an: [(f.rf, f.jump, f.start, f.is_global, f.local_rf, f.output_size)
                          for f in an.layers]
    from_file = rfield.analyze(str(path))
    assert numbers(from_file) == numbers(a) and from_file.graph.input_size == size
    assert from_file.graph.aliases[layer] == node
    # and the command's own build of keras:NAME has the same numbers (--node keeps the
    # layers that node reads from)
    from rfield.core.query import ancestors

    wanted = set(ancestors(a.graph, node))
    assert [(r["rf"], r["jump"]) for r in out["layers"]] == \
        [([int(v) for v in f.rf] if f.rf else None,
          [float(v) if v.denominator != 1 else int(v) for v in f.jump] if f.jump else None)
         for f in a.layers if f.name in wanted]


def test_the_table_names_keras_layers_and_groups_nested_models(capsys):
    assert main(["analyze", "keras:ConvNeXtTiny", "--depth", "1"]) == 0
    text = capsys.readouterr().out
    assert "convnext_tiny_stem" in text and "convnext_tiny_stem/" not in text
    assert "Sequential" in text
    assert main(["analyze", "keras:ConvNeXtTiny", "--depth", "2",
                 "--node", "convnext_tiny_stem"]) == 0
    assert "convnext_tiny_stem/convnext_tiny_stem_conv" in capsys.readouterr().out


def test_an_input_size_builds_the_application_there(capsys):
    out = run_json(capsys, "keras:MobileNetV3Small", "--input", "160,128")
    assert out["input_size"] == [160, 128]
    out = run_json(capsys, "keras:MobileNetV3Small")  # takes any size: 224, said so
    assert out["input_size"] == [224, 224]


def test_a_factory_returning_a_keras_model(tmp_path, capsys):
    f = tmp_path / "net.py"
    f.write_text("import keras\n"
                 "def build(width=4):\n"
                 "    x = inp = keras.Input((40, 2))\n"
                 "    x = keras.layers.Conv1D(width, 5, dilation_rate=3, padding='causal',"
                 " name='c')(x)\n"
                 "    return keras.Model(inp, x)\n")
    out = run_json(capsys, f"{f}:build", "--kwargs", '{"width": 2}')
    (row,) = [r for r in out["layers"] if r["name"] == "c"]
    assert row["rf"] == [13] and row["start"] == [-6]


def test_verify_measures_a_keras_model(capsys, tmp_path):
    f = tmp_path / "net.py"
    f.write_text("import keras\n"
                 "def build():\n"
                 "    x = inp = keras.Input((33, 31, 3))\n"
                 "    x = keras.layers.Conv2D(4, 3, strides=2, padding='same', name='a')(x)\n"
                 "    x = keras.layers.MaxPooling2D(3, 2, padding='same', name='b')(x)\n"
                 "    x = keras.layers.Conv2D(4, 3, dilation_rate=2, name='c')(x)\n"
                 "    return keras.Model(inp, x)\n")
    assert main(["verify", f"{f}:build"]) == 0
    assert "equals back-propagation" in capsys.readouterr().out


def _one_line_error(capsys, argv, *needles) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_files_and_names_rfield_refuses(tmp_path, capsys):
    x = inp = keras.Input((8, 8, 1))
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(x))
    path = tmp_path / "lambda.keras"
    lam.save(path)
    _one_line_error(capsys, ["analyze", str(path)], "unsafe deserialisation", "factory")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    _one_line_error(capsys, ["analyze", str(junk)], "not a Keras model Keras can load")
    _one_line_error(capsys, ["analyze", str(tmp_path / "missing.keras")], "no such file")
    _one_line_error(capsys, ["analyze", "keras:ResNet5"], "no model 'ResNet5'",
                    "did you mean ResNet50")
    _one_line_error(capsys, ["analyze", "keras:VGG16", "--input", "224"],
                    "needs 2 input sizes")


def test_erf_of_a_keras_model_lies_in_its_field(tmp_path, capsys):
    import numpy as np

    from rfield.empirical.keras_gradient import effective_rf

    f = tmp_path / "net.py"
    f.write_text("import keras\n"
                 "def build():\n"
                 "    x = inp = keras.Input((40, 36, 3))\n"
                 "    x = keras.layers.Conv2D(4, 3, strides=2, padding='same', name='a')(x)\n"
                 "    x = keras.layers.Conv2D(4, 5, dilation_rate=2, padding='same',"
                 " name='b')(x)\n"
                 "    return keras.Model(inp, x)\n")
    assert main(["erf", f"{f}:build", "--samples", "2", "--node", "b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rf"] == [19, 19] and out["node"] == "b"
    # with random weights the gradient is non-zero on exactly the unit's box
    from rfield.models.factory import call_factory

    m = call_factory(f"{f}:build")
    a = rfield.analyze(m)
    g = a.graph
    e = effective_rf(m, g.input_size, "b", g.alias_layouts["b"], g.provenance.input_layout,
                     samples=2)
    rows, cols = np.nonzero(e.heat)
    assert [(rows.min(), rows.max()), (cols.min(), cols.max())] == list(a.box("b").ranges)
    _one_line_error(capsys, ["erf", f"{f}:build", "--weights", str(f)], "brings its weights")


def test_the_report_of_a_keras_model(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("import keras\n"
                 "def build():\n"
                 "    x = inp = keras.Input((32, 32, 3))\n"
                 "    x = keras.layers.Conv2D(4, 3, strides=2, name='stem_conv')(x)\n"
                 "    x = keras.layers.MaxPooling2D(2, name='stem_pool')(x)\n"
                 "    return keras.Model(inp, x)\n")
    out = tmp_path / "report.html"
    assert main(["report", f"{f}:build", "-o", str(out)]) == 0
    html = out.read_text()
    assert "stem_conv" in html and "stem_pool" in html
    a = rfield.analyze(f"{f}:build")
    assert a.fields["stem_pool"].rf == (5, 5)  # 3, then a window of 2 at jump 2: 3 + 1 * 2


@pytest.mark.parametrize("command", ["verify", "erf"])
def test_a_top_level_sequential_is_measured(tmp_path, capsys, command):
    """verify and erf on a keras.Sequential (issue 22, item 2: an internal error)."""
    path = tmp_path / "seq.py"
    path.write_text(
        "import keras\n\ndef build():\n    return keras.Sequential([keras.Input((32, 32, 3)), "
        "keras.layers.Conv2D(4, 3, padding='same'), keras.layers.MaxPooling2D(2), "
        "keras.layers.Conv2D(4, 3)])\n")
    argv = [command, f"{path}:build"] + (["--samples", "2"] if command == "erf" else [])
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert ("analysis equals back-propagation" in out) if command == "verify" else (
        "theoretical field 8 x 8" in out)
