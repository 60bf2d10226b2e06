"""Unproductive (border) layers: rfield's marks against rfa-toolbox's rule computed
independently here (its path-wise field arithmetic and ``is_border``), on networks
where both apply, and each difference explained by what rfa-toolbox ignores."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rfield
from cli_run import run
from rfield.core.unproductive import input_advice, unproductive
from rfield.report.formats import to_csv, to_json


def rfa_border(layers: list[tuple[int, int]], resolution: int,
               maps: list[int] | None = None) -> list[bool]:
    """rfa-toolbox 1.7.0's ``is_border`` on a chain of (kernel, stride) layers, written
    from its graphs.py: rf grows by (k - 1) * product of earlier strides; a layer is a
    border layer when its rf exceeds the resolution and its predecessor's is at least
    the resolution (the input node has rf 1), or when its kernel is at least its
    predecessor's map size. rfa-toolbox estimates that size as resolution // (product
    of strides); ``maps`` gives the true sizes instead (one per layer's input)."""
    rf, mult, fields, estimates = 1, 1, [], []
    for k, s in layers:
        estimates.append(resolution // mult)
        rf += (k - 1) * mult
        mult *= s
        fields.append(rf)
    before = [1] + fields[:-1]
    maps = maps or estimates
    return [(resolution < own and resolution <= prev) or n <= k
            for own, prev, n, (k, _) in zip(fields, before, maps, layers)]


chains = st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(chains, st.integers(2, 60))
def test_marks_follow_rfa_toolboxs_rule_on_plain_chains(layers, size):
    spec = [{"name": f"c{i}", "op": "conv", "kernel": k, "stride": s,
             "padding": k // 2} for i, (k, s) in enumerate(layers)]
    try:
        a = rfield.analyze({"input": [size], "layers": spec})
    except rfield.RfieldError:
        return  # the map shrank below one unit: no network to judge
    marks = unproductive(a)
    maps = [size] + [a.graph.nodes[f"c{i}"].size[0] for i in range(len(layers) - 1)]
    assert [marks[f"c{i}"][0] for i in range(len(layers))] == rfa_border(layers, size, maps)


def test_rfa_toolbox_estimates_the_map_sizes():
    """The one difference on plain chains: after a stride-2 conv on 7 positions,
    rfa-toolbox takes the map to be 7 // 2 = 3 long, so a following 3-wide conv would
    read it whole like a dense layer; with padding 1 the map is 4 long, and that conv
    (field 7, not more than the input) is productive."""
    spec = [{"name": "c0", "op": "conv", "kernel": 3, "stride": 2, "padding": 1},
            {"name": "c1", "op": "conv", "kernel": 3, "padding": 1}]
    a = rfield.analyze({"input": [7], "layers": spec})
    assert a.graph.nodes["c0"].size == (4,) and a.fields["c1"].rf == (7,)
    assert unproductive(a)["c1"] == (False,)
    assert rfa_border([(3, 2), (3, 1)], 7) == [False, True]  # its estimate: 3 <= 3
    assert rfa_border([(3, 2), (3, 1)], 7, maps=[7, 4]) == [False, False]


def test_dilation_is_where_rfa_toolbox_differs():
    """rfa-toolbox reads kernel and stride only: a dilated 3-tap conv counts as 3
    wide. rfield's field is the dilated one (3, 7, 15, 31), so at 15 positions the
    last layer is unproductive, where rfa-toolbox sees no border layer."""
    spec = [{"name": f"c{i}", "op": "conv", "kernel": 3, "dilation": d, "padding": d}
            for i, d in enumerate([1, 2, 4, 8])]
    a = rfield.analyze({"input": [15], "layers": spec})
    marks = unproductive(a)
    assert [marks[f"c{i}"][0] for i in range(4)] == [False, False, False, True]
    assert a.fields["c2"].rf == (15,) and a.fields["c3"].rf == (31,)
    assert rfa_border([(3, 1)] * 4, 15) == [False] * 4
    # with the dilations folded into the kernels, the two rules agree
    assert rfa_border([(3, 1), (5, 1), (9, 1), (17, 1)], 15) == [False, False, False, True]


def test_marks_are_per_axis_and_in_every_format(tmp_path, capsys):
    spec = {"input": [8, 64], "layers": [
        {"name": "a", "op": "conv", "kernel": 5, "padding": 2},
        {"name": "b", "op": "conv", "kernel": 5, "padding": 2},
        {"name": "c", "op": "conv", "kernel": 5, "padding": 2}]}
    a = rfield.analyze(spec)
    marks = unproductive(a)
    # fields 5, 9, 13: b covers 8 rows but a does not; c and b do
    assert marks == {"a": (False, False), "b": (False, False), "c": (True, False)}
    box = a.box("c")
    layers = {d["name"]: d for d in json.loads(to_json(a, box))["layers"]}
    assert layers["c"]["unproductive"] == [True, False]
    rows = {r.split(",")[0]: r.split(",")[-1] for r in to_csv(a, box).splitlines()[1:]}
    assert rows == {"a": "0x0", "b": "0x0", "c": "1x0"}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec))
    code, out, _ = run(capsys, "analyze", str(path))
    assert code == 0 and "yes x no" in out
    assert "unproductive at 8 x 64: 1 layer, from c" in out


def test_alexnet_on_64_pixel_crops(capsys):
    pytest.importorskip("torchvision")
    code, out, _ = run(capsys, "analyze", "torchvision:alexnet", "--input", "64,64")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("features.")}
    for name in ("features.6", "features.8", "features.10"):
        assert rows[name].rstrip().endswith("yes"), rows[name]
    for name in ("features.0", "features.3"):
        assert not rows[name].rstrip().endswith("yes"), rows[name]
    assert "unproductive at 64 x 64: 10 layers, from features.6" in out


@settings(max_examples=60, deadline=None)
@given(chains, st.integers(8, 60))
def test_the_advised_input_size_is_the_smallest_with_no_unproductive_layer(layers, size):
    """Analysed again at the advised size, no layer is unproductive; one below, some
    layer is (where the network still runs there)."""
    spec = [{"name": f"c{i}", "op": "conv", "kernel": k, "stride": s,
             "padding": k // 2} for i, (k, s) in enumerate(layers)]
    try:
        a = rfield.analyze({"input": [size], "layers": spec})
    except rfield.RfieldError:
        return
    advised = input_advice(a)["no_unproductive_from"][0]
    at = rfield.analyze({"input": [advised], "layers": spec})
    assert not any(m and any(m) for m in unproductive(at, dense=False).values())
    if advised > 2:
        below = rfield.analyze({"input": [advised - 1], "layers": spec})
        assert any(m and any(m) for m in unproductive(below, dense=False).values())
    assert json.loads(to_json(a, a.box()))["input_advice"]["no_unproductive_from"] == [advised]


def test_a_squeeze_and_excitation_gate_is_judged_by_its_local_field():
    """Global only through the gate's path: the convolutions' own fields decide, as
    rfa-toolbox (which reads the gate as an identity) decides on the plain chain."""
    spec = {"input": [6], "layers": [
        {"name": "c1", "op": "conv", "kernel": 3, "padding": 1},
        {"name": "g", "op": "global", "inputs": ["c1"]},
        {"name": "gate", "op": "upsample", "size": 6},
        {"name": "m", "op": "mul", "inputs": ["c1", "gate"]},
        {"name": "c2", "op": "conv", "kernel": 3, "padding": 1},
        {"name": "c3", "op": "conv", "kernel": 3, "padding": 1},
        {"name": "c4", "op": "conv", "kernel": 3, "padding": 1}]}
    a = rfield.analyze(spec)
    assert a.fields["c4"].is_global and a.fields["c4"].local_rf == (9,)
    marks = unproductive(a)
    assert [marks[n][0] for n in ("c1", "c2", "c3", "c4")] == rfa_border([(3, 1)] * 4, 6)
    assert input_advice(a)["no_unproductive_from"] == [8]
    # the advice names the field it inverts: the last layer's local one, as it is global
    assert input_advice(a)["last_field_spans_up_to"] == [9]
    from rfield.report.formats import unproductive_text

    assert "the last spatial layer's local field (it is global) spans inputs up to 9" in \
        unproductive_text(a)
    assert unproductive(a) is marks  # kept per analysis, not judged again per format


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "vgg11", "mobilenet_v3_small"])
@pytest.mark.parametrize("side", [64, 96, 160])
def test_the_zoo_answer_agrees_with_the_analysis_at_that_size(name, side):
    """`rfield zoo NAME --input S` (from the atlas's stage fields, no model built)
    against the layer-by-layer rule on the model analysed at S: a stage called
    unproductive ends in an unproductive layer; one not reaching the input does not."""
    pytest.importorskip("torchvision")
    from rfield.zoo import atlas
    from rfield.zoo.fit import verdicts

    rows = atlas.query(atlas.load(), f"torchvision:{name}")
    words = verdicts(rows, (side, side))
    a = rfield.analyze(f"torchvision:{name}", (side, side))
    marks = unproductive(a)
    judged = 0
    for row, word in zip(rows, words):
        mark = marks[a.graph.aliases[row.stage["module"]]]
        if word == "unproductive":
            assert mark and all(mark), (row.stage["module"], word)
            judged += 1
        elif word == "":
            assert not (mark and any(mark)), (row.stage["module"], word)
            judged += 1
    assert judged >= 2


def test_zoo_input_answers_without_building_the_model(capsys):
    code, out, err = run(capsys, "zoo", "torchvision:resnet50", "--input", "64,64")
    assert code == 0
    rows = {line.split()[1]: line for line in out.splitlines()[1:] if line.startswith("torch")}
    assert rows["layer2"].endswith("reaches the input")
    assert rows["layer3"].endswith("unproductive") and rows["layer4"].endswith("unproductive")
    assert not rows["layer1"].endswith(("unproductive", "reaches the input"))


def test_zoo_input_of_the_wrong_axes_is_refused(capsys):
    code, out, err = run(capsys, "zoo", "torchvision:resnet50", "--input", "64")
    assert code == 2 and not out and "has 1 axis, but the models named have 2" in err
