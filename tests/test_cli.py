"""The rfield command: golden outputs, JSON keys, queries and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rfield
from cli_run import check_golden, run
from rfield.cli import main
from rfield.spec.parse import EXAMPLES

from reference import Reference


@pytest.mark.parametrize("target", ["example:seed2", "example:fpn", "example:resnet18",
                                    "example:wavenet"])
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_golden(capsys, target, fmt):
    args = ["analyze", target] + ([] if fmt == "table" else [f"--{fmt}"])
    code, out, err = run(capsys, *args)
    assert code == 0 and err == ""
    check_golden(f"{target.split(':')[1]}.{ {'table': 'txt', 'markdown': 'md'}.get(fmt, fmt)}",
                 out)


def test_table_fits_80_columns(capsys):
    for target in ("example:seed2", "example:resnet18", "example:video3d", "example:unet"):
        code, out, _ = run(capsys, "analyze", target)
        assert code == 0
        table = out.split("\n\n")[0]
        assert max(len(line) for line in table.splitlines()) <= 80


def test_json_numbers_match_the_reference(capsys):
    spec = json.loads((EXAMPLES / "seed2.json").read_text())
    code, out, _ = run(capsys, "analyze", "example:seed2", "--json", "--unit", "3,5")
    data = json.loads(out)
    ref = Reference(spec["layers"], spec["input"])
    assert data["node"] == "conv3" and data["unit"] == [3, 5]
    assert data["box"] == [list(ref.box("conv3", 0, 3)), list(ref.box("conv3", 1, 5))]
    for layer in data["layers"]:
        o = ref.interior(layer["name"], 0)[0]
        lo, hi = ref.box(layer["name"], 0, o)
        assert layer["rf"] == [hi - lo + 1] * 2
        o2 = ref.interior(layer["name"], 0)[1]
        assert layer["jump"] == [sum(ref.box(layer["name"], 0, o2)) / 2 - (lo + hi) / 2] * 2
        assert layer["start"] == [(lo + hi) / 2 - o * layer["jump"][0]] * 2
    for key in ("input_size", "node", "unit", "box", "layers", "warnings"):
        assert key in data
    for key in ("name", "op", "output_size", "rf", "rf_min", "jump", "start",
                "effective_padding"):
        assert key in data["layers"][0]


def test_the_seed_summary_says_19(capsys):
    code, out, _ = run(capsys, "analyze", "example:seed2")
    assert "receptive field 19 x 19, jump 4 x 4" in out


def test_compact_string_span_and_reverse_queries(capsys):
    code, out, _ = run(capsys, "analyze", "conv(3,s=2); conv(3)", "--input", "32", "--json",
                       "--unit", "4", "--span", "3", "--seeing", "10..11", "--inside")
    data = json.loads(out)
    layers = [{"name": "conv1", "op": "conv", "kernel": 3, "stride": 2},
              {"name": "conv2", "op": "conv", "kernel": 3}]
    ref = Reference(layers, [32])
    boxes = [ref.box("conv2", 0, o) for o in (4, 5, 6)]
    assert data["box"] == [[boxes[0][0], boxes[2][1]]]
    assert data["units"] == [[4, 6]]
    seeing = [o for o in range(ref.sizes["conv2"][0])
              if ref.deps("conv2", 0, o)[0] & {10, 11}]
    assert data["units_seeing"] == [[[seeing[0], seeing[-1]]]]
    assert data["units_inside"] == [[[0, ref.sizes["conv2"][0] - 1]]]


def test_output_file_is_written_whole(capsys, tmp_path):
    target = tmp_path / "out.json"
    code, out, _ = run(capsys, "analyze", "example:seed1", "--json", "-o", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["node"] == "conv2"


def test_examples_command_lists_every_example(capsys):
    code, out, _ = run(capsys, "examples")
    assert code == 0
    for p in EXAMPLES.glob("*.json"):
        assert f"example:{p.stem}" in out


def test_help_documents_the_compact_form_and_ops(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    out = capsys.readouterr().out
    assert "conv(7,s=2,p=3)" in out and "convtranspose(" in out and "causal" in out


# --------------------------------------------------------------------------- bad input

def write(tmp_path, name, text):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return str(p)


def spec(*layers, size=(32, 32)):
    return json.dumps({"input": list(size), "layers": list(layers)}, indent=1)


BAD = [
    ("bad.json",
     '{"input": [32, 32],\n "layers": [\n  {"op": "conv", "kernel": 3},\n  {"op": }\n]}',
     ["bad.json:4", "malformed JSON"]),
    ("bad.yaml", "input: [32, 32]\nlayers:\n  - op: conv\n    kernel: [3\n  - op: relu\n",
     ["bad.yaml:", "malformed YAML"]),
    ("op.json", spec({"name": "c1", "op": "convv", "kernel": 3}),
     ["op.json:", "c1", "unknown op 'convv'", "did you mean 'conv'"]),
    ("k0.json", spec({"name": "c1", "op": "conv", "kernel": 0}), ["c1", "kernel must be positive"]),
    ("s-1.json", spec({"name": "c1", "op": "conv", "kernel": 3, "stride": -1}),
     ["c1", "stride must be positive"]),
    ("d0.json", spec({"name": "c1", "op": "conv", "kernel": 3, "dilation": 0}),
     ["c1", "dilation must be positive"]),
    ("p-1.json", spec({"name": "c1", "op": "conv", "kernel": 3, "padding": -1}),
     ["c1", "padding must be at least 0"]),
    ("float.json", spec({"name": "c1", "op": "conv", "kernel": 2.5}),
     ["c1", "kernel must be a whole number"]),
    ("size.json", spec({"name": "c1", "op": "conv", "kernel": 3}, size=(32.5, 32)),
     ["input size must be a whole number"]),
    ("axes.json", spec({"name": "c1", "op": "conv", "kernel": [3, 3, 3]}),
     ["c1", "kernel has 3 values but the input has 2 axes"]),
    ("small.json", spec({"name": "c1", "op": "conv", "kernel": 3, "stride": 2},
                        {"name": "c2", "op": "conv", "kernel": 9}, size=(16, 16)),
     ["layer 'c2'", "output size [-1, -1] is below 1", "input size [7, 7]"]),
    ("merge.json", spec({"name": "a", "op": "conv", "kernel": 3},
                        {"name": "b", "op": "conv", "kernel": 5, "inputs": ["input"]},
                        {"name": "sum", "op": "add", "inputs": ["a", "b"]}),
     ["layer 'sum'", "different sizes", "[30, 30]", "[28, 28]"]),
    ("unknown.json", spec({"name": "a", "op": "conv", "kernel": 3, "inputs": ["nope"]}),
     ["layer 'a'", "input 'nope' is not a layer defined before it"]),
    ("later.json", spec({"name": "a", "op": "conv", "kernel": 3, "inputs": ["b"]},
                        {"name": "b", "op": "relu"}),
     ["layer 'a'", "input 'b' is not a layer defined before it"]),
    ("dup.json", spec({"name": "a", "op": "conv", "kernel": 3}, {"name": "a", "op": "relu"}),
     ["layer 'a'", "used twice"]),
    ("param.json", spec({"name": "a", "op": "conv", "kernel": 3, "strid": 2}),
     ["'a'", "no parameter 'strid'", "did you mean 'stride'"]),
    ("noop.json", spec({"name": "a", "kernel": 3}), ["'a'", "no 'op'"]),
    ("garbage.json", bytes(range(256)) * 4, ["not a text file"]),
    ("garbage.yaml", b"\x00\x01\x02\xff\xfe", ["not a text file"]),
    ("empty.json", "", ["malformed JSON"]),
    ("list.json", '{"input": [8], "layers": [1, 2]}', ["layer 1", "a layer must be an object"]),
    ("nosize.json", '[{"op": "conv", "kernel": 3}]', ["no input size", "--input"]),
    ("nolayers.json", '{"input": [8, 8]}', ["no 'layers'"]),
]


@pytest.mark.parametrize("name,text,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_spec_files(capsys, tmp_path, name, text, needles):
    path = write(tmp_path, name, text)
    code, out, err = run(capsys, "analyze", path)
    assert code == 2 and out == ""
    assert err.startswith("rfield: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


def test_line_numbers_point_at_the_layer(capsys, tmp_path):
    text = ('{"input": [32, 32],\n "layers": [\n  {"name": "c1", "op": "conv", "kernel": 3},\n\n'
            '  {"name": "c2", "op": "conv", "kernel": -3}]}')
    path = write(tmp_path, "lines.json", text)
    code, _, err = run(capsys, "analyze", path)
    assert code == 2 and "lines.json:5: layer 2 ('c2')" in err


@pytest.mark.parametrize("argv,needles", [
    (["analyze", "missing.json"], ["missing.json", "no such file"]),
    (["analyze", "conv(3); bogus(2)", "--input", "8"], ["item 2", "unknown op 'bogus'"]),
    (["analyze", "conv(3)"], ["no input size", "--input"]),
    (["analyze", "conv(3)", "--input", "8,a"], ["--input must be whole numbers"]),
    (["analyze", "example:seed2", "--node", "conv9"], ["no layer named 'conv9'", "conv1"]),
    (["analyze", "example:seed2", "--unit", "99,0"], ["outside layer 'conv3'"]),
    (["analyze", "example:seed2", "--unit", "1"], ["has 1 indices"]),
    (["analyze", "example:nope"], ["no built-in example 'nope'"]),
    (["analyze", "example:seed2", "--seeing", "70..80,1..2"], ["not inside the input"]),
])
def test_bad_arguments(capsys, argv, needles):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    for needle in needles:
        assert needle in err, (needle, err)


def test_directory_target(capsys, tmp_path):
    d = tmp_path / "dir.json"
    d.mkdir()
    code, out, err = run(capsys, "analyze", str(d))
    assert code == 2 and out == "" and "is a directory" in err


def test_console_script_prints_no_traceback(tmp_path):
    bad = write(tmp_path, "bad.json", "{")
    proc = subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", bad],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and "malformed JSON" in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "rfield.cli", "analyze", "example:seed2"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "receptive field 19 x 19" in ok.stdout


def test_importing_rfield_imports_no_framework():
    code = ("import sys, rfield; rfield.analyze('conv(3)', input_size=(8,)); "
            "bad = [m for m in ('torch', 'onnx', 'matplotlib', 'keras', 'jax', 'flax') "
            "if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_yaml_spec_equals_json(capsys, tmp_path):
    y = tmp_path / "net.yaml"
    y.write_text("input: [64, 64]\nlayers:\n"
                 "  - {name: conv1, op: conv, kernel: 7, stride: 2}\n"
                 "  - {name: conv2, op: conv, kernel: 3, stride: 2}\n"
                 "  - name: conv3\n    op: conv\n    kernel: 3\n")
    assert main(["analyze", str(y), "--json"]) == 0
    from_yaml = json.loads(capsys.readouterr().out)
    assert main(["analyze", "example:seed2", "--json"]) == 0
    from_json = json.loads(capsys.readouterr().out)
    assert from_yaml["layers"] == from_json["layers"] and from_yaml["box"] == from_json["box"]


def test_python_api_with_op_objects_and_dicts():
    import rfield
    from rfield import layers as L

    a = rfield.analyze([L.Conv(7, 2), ("second", L.Conv(3, 2)), {"op": "conv", "kernel": 3}],
                       input_size=(64, 64))
    b = rfield.analyze("example:seed2")
    assert [f.rf for f in a.layers] == [f.rf for f in b.layers]
    assert [f.name for f in a.layers] == ["conv1", "second", "conv2"]
    assert a.box().ranges == b.box().ranges


def test_node_prints_only_the_rows_that_lead_to_it(capsys):
    import rfield
    from rfield.core.query import ancestors

    code, out, _ = run(capsys, "analyze", "example:resnet18", "--node", "layer2.0.conv1")
    assert code == 0
    rows = [line.split() for line in out.split("\n\n")[0].splitlines()[2:]]
    a = rfield.analyze("example:resnet18")
    assert [r[0] for r in rows] == ancestors(a.graph, "layer2.0.conv1")
    full = run(capsys, "analyze", "example:resnet18")[1].split("\n\n")[0].splitlines()
    full_rows = {line.split()[0]: line.split() for line in full[2:]}
    assert all(full_rows[r[0]] == r for r in rows)  # the same rows, fewer of them


def test_long_layer_names_are_whole_unless_a_terminal_is_narrow(capsys):
    """Piped or written, the table keeps whole names (they are data); fitted to a
    terminal, a name too long keeps its end."""
    from rfield.report.formats import to_table

    long = "backbone.stages.0.blocks.0.depthwise_convolution_with_a_long_name"
    spec = f"conv(3); {long}=conv(3,s=2); conv(3)"
    assert main(["analyze", spec, "--input", "32"]) == 0
    assert long in capsys.readouterr().out
    a = rfield.analyze(spec, (32,))
    rows = to_table(a, a.box(), width=80).split("\n\n")[0]
    assert long not in rows and "…ks.0.depthwise_convolution_with_a_long_name" in rows
    assert all(len(line) <= 80 for line in rows.splitlines())


@pytest.mark.parametrize("size,words", [("224,", "missing between the commas"),
                                        ("224,,224", "missing between the commas"),
                                        ("0,224", "at least 1")])
def test_an_input_size_with_a_gap_or_a_zero_is_refused(capsys, size, words):
    """--input 224, is not silently a 1-D size (issue 22, item 13)."""
    code, out, err = run(capsys, "analyze", "example:seed2", "--input", size)
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err


@pytest.mark.parametrize("target,words", [
    ("resnet50", "named with its library: timm:resnet50, torchvision:resnet50"),
    ("resnet51", "did you mean"),
    ("timm/convnext_tiny", "did you mean timm:convnext_tiny?"),
    ("tests/conftest.py", "give tests/conftest.py:FACTORY"),
])
def test_a_bare_or_misshapen_target_says_what_to_give(capsys, target, words):
    """A zoo name without its library, a slash for a colon, a .py without its factory
    (issue 22, item 5): one line that says what to give, no parser complaint; the
    suggestions come from the atlas, so no framework is imported."""
    code, out, err = run(capsys, "analyze", target, "--input", "32,32")
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert "unknown op" not in err and "YAML" not in err


def test_help_texts_say_what_is_there(capsys):
    """rfield ops names every front-end; verify and erf do not offer ONNX files, which
    have no runnable weights; the TARGET block names JAX functions (issue 22, item 14)."""
    from rfield.report.oplist import frontends

    for argv, present, absent in ((["ops", "--help"], list(frontends()), []),
                                  (["verify", "--help"], ["keras:NAME"], ["model.onnx"]),
                                  (["erf", "--help"], ["keras:NAME"], ["model.onnx"]),
                                  (["analyze", "--help"], ["model.onnx", "JAX"], [])):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert all(p in out for p in present) and not any(a in out for a in absent), argv
