"""Every printed number is the analysis's own rational: each format (table, Markdown,
CSV, HTML, JSON) is read back and compared with the Fractions the analysis holds, for
the built-in examples and for random specs. No format may round."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

import rfield
from rfield.numbers import exact, json_value
from rfield.report.formats import render
from rfield.report.html import render as render_html
from rfield.spec.parse import example_names
from test_properties import PROFILE, build, layer


def test_exact_writes_every_digit():
    assert exact(Fraction(-2047, 2)) == "-1023.5"
    assert exact(10001) == "10001"
    assert exact(Fraction(1, 8)) == "0.125"
    assert exact(Fraction(-1, 40)) == "-0.025"
    assert exact(Fraction(1, 3)) == "1/3"
    assert exact(Fraction(-7, 6)) == "-7/6"
    assert exact(Fraction(1, 2 ** 30)) == "0.000000000931322574615478515625"
    assert json_value(Fraction(-2047, 2)) == -1023.5
    assert json_value(Fraction(1, 3)) == "1/3"
    assert json_value(Fraction(1, 10)) == "1/10"  # 0.1 is no binary float


@settings(max_examples=400, deadline=None)
@given(st.fractions(max_denominator=10 ** 6))
def test_exact_round_trips(x):
    text = exact(x)
    assert "e" not in text.lower()
    assert Fraction(text) == x
    assert Fraction(json_value(x)) == x


def _cells(text: str) -> list:
    """'19x-1023.5' -> its numbers ('-' and '' give none; a '-' part is None)."""
    if text in ("", "-", "global"):
        return []
    return [None if v == "-" else Fraction(v) for v in text.lstrip("~").split("x")]


def _want(values) -> list:
    """What a cell must hold: no values where all are unknown (printed '-')."""
    if values is None or all(v is None for v in values):
        return []
    return [None if v is None else Fraction(v) for v in values]


def _rf_cell(f) -> list[Fraction]:
    if f.is_global:
        return []
    if f.position_dependent:  # 15-23: the smallest and the largest
        return [Fraction(v) for a, b in zip(f.rf_min, f.rf) for v in ((a,) if a == b else (a, b))]
    return _want(f.rf)


def _rf_read(text: str) -> list[Fraction]:
    if text == "global":
        return []
    return [Fraction(v) for part in text.lstrip("~").split("x") for v in
            re.fullmatch(r"(-?[\d./]+)(?:-(\d+))?", part).groups() if v is not None]


def check_outputs(a) -> None:
    box = a.box(a.graph.last())
    fields = {f.name: f for f in a.layers}
    # JSON: every value is the Fraction itself
    data = json.loads(render("json", a, box))
    for row in data["layers"]:
        f = fields[row["name"]]
        for key, want in (("rf", f.rf), ("jump", f.jump), ("start", f.start),
                          ("effective_padding", f.effective_padding),
                          ("local_rf", f.local_rf), ("local_jump", f.local_jump),
                          ("local_start", f.local_start), ("coverage", f.coverage)):
            got = row[key]
            assert (got is None) == (want is None), (f.name, key)
            if want is not None:
                assert [None if v is None else Fraction(v) for v in got] == [
                    None if v is None else Fraction(v) for v in want], (f.name, key, got)
    # CSV
    for row in csv.DictReader(io.StringIO(render("csv", a, box))):
        f = fields[row["name"]]
        assert _cells(row["rf"]) == _want(f.rf)
        assert _cells(row["rf_min"]) == _want(f.rf_min)
        assert _cells(row["jump"]) == _want(f.jump)
        assert _cells(row["start"]) == _want(f.start)
        assert _cells(row["effective_padding"]) == _want(f.effective_padding)
        assert _cells(row["local_rf"]) == _want(f.local_rf)
        assert all("e" not in c for c in (row["start"], row["jump"], row["rf"]))
        assert row["rf"].startswith("~") == (f.rf is not None and not f.is_exact)
    # table and Markdown: name, op, output, rf, [local], jump, start, pad
    table = render("table", a, box).split("\n\n")[0].splitlines()[2:]
    md = [line for line in render("markdown", a, box).splitlines()
          if line.startswith("| ")][1:]
    rows = [re.split(r"\s{2,}", line.strip()) for line in table]
    rows += [[c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
             for line in md]
    for cells in rows:
        f = fields[cells[0]]
        if cells[-1] == "" or cells[-1].startswith(("yes", "no")):
            cells = cells[:-1]  # the unproductive mark (tests/test_unproductive.py)
        jump, start, pad = cells[-3:]
        assert _rf_read(cells[3]) == _rf_cell(f), (f.name, cells)
        assert cells[3].startswith("~") == (f.rf is not None and not f.is_exact)
        assert _cells(jump) == _want(f.local_jump) and _cells(start) == _want(f.local_start)
        assert _cells(pad) == _want(f.effective_padding), (f.name, cells)
    # HTML: name, op, output, rf, local, jump, start, pad
    page = render_html(a, "t")
    for row in re.findall(r'<tr data-layer="[^"]*">(.*?)</tr>', page):
        cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)]
        f = fields[cells[0]]
        assert _rf_read(cells[3]) == _rf_cell(f), (f.name, cells)
        assert cells[3].startswith("~") == (f.rf is not None and not f.is_exact)
        assert _cells(cells[4]) == (_want(f.local_rf) if f.is_global else [])
        assert _cells(cells[5]) == _want(f.local_jump)
        assert _cells(cells[6]) == _want(f.local_start)
        assert _cells(cells[7]) == _want(f.effective_padding)


def test_examples_print_exactly():
    for name in example_names():
        check_outputs(rfield.analyze(f"example:{name}"))


def test_wavenet_half_pixel_start_in_every_format():
    a = rfield.analyze("example:wavenet")
    box = a.box(a.graph.last())
    for fmt in ("table", "markdown", "csv"):
        assert "-1023.5" in render(fmt, a, box), fmt
    assert "-1023.5" in render_html(a, "t")


def test_long_chain_csv_has_no_exponent():
    a = rfield.analyze("conv(2)*20001", input_size=(40000,))
    text = render("csv", a, a.box(a.graph.last()))
    assert "e+" not in text and "10000.5" in text


@PROFILE
@given(st.lists(layer(), min_size=1, max_size=6), st.integers(8, 48))
def test_random_specs_print_exactly(layers, n):
    named = build(layers, [n])
    check_outputs(rfield.analyze({"input": [n], "layers": named}))


def test_the_python_api_prints_the_table_and_gives_json(capsys):
    """print(analysis) is what `rfield analyze` prints; to_dict() is its --json,
    plain JSON values (issue 22, item 12)."""
    from rfield.cli import main

    a = rfield.analyze("example:wavenet")
    assert main(["analyze", "example:wavenet"]) == 0
    assert str(a) == capsys.readouterr().out
    assert main(["analyze", "example:wavenet", "--json"]) == 0
    assert json.loads(json.dumps(a.to_dict())) == json.loads(capsys.readouterr().out)
    assert repr(a).startswith("<Analysis: ") and "input 16000" in repr(a)
