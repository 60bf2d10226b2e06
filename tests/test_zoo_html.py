"""``rfield zoo --html``: the atlas as one page, self-contained, each number as the
atlas holds it, and (in Chromium, as the report is) searched, filtered, sorted and
drawn: a click on a model draws its stages' fields over its input at their sizes."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from rfield.cli import main
from rfield.zoo import atlas
from rfield.zoo.html_page import page

PICKS = ["resnet50", "vit_base_patch16_224", "convnext_tiny", "r3d_18", "efficientnet_b0"]


@pytest.fixture(scope="module")
def lines():
    return [m for m in atlas.load() if m["model"] in PICKS]


def test_the_page_is_self_contained_with_exact_numbers(lines, tmp_path, capsys):
    out = tmp_path / "zoo.html"
    assert main(["zoo", "--html", str(out), "--family", "resnet"]) == 0
    text = out.read_text()
    assert "<script src" not in text and "http://" not in text and "https://" not in text
    assert '"name":"resnet50"' in text and '"name":"vit_base_patch16_224"' not in text
    # every stage's field as text, as `rfield zoo` prints it
    whole = page(lines)
    for m in lines:
        for s in m["stages"]:
            rf = "global" if s["global"] else atlas.axes_text(s["rf"])
            assert f'"module":"{s["module"]}","size":"{atlas.axes_text(s["size"])}","rf":"{rf}"' \
                in whole


def test_an_unknown_model_is_one_line(tmp_path, capsys):
    assert main(["zoo", "--html", str(tmp_path / "z.html"), "nosuchmodel"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not (tmp_path / "z.html").exists()


def _names(pg) -> list[str]:
    return [t.split(":", 1)[1] for t in pg.eval_on_selector_all(
        "#models tr", "rows => rows.map(r => r.dataset.model)")]


def test_search_filter_sort_and_draw(browser, lines, tmp_path):
    path = tmp_path / "zoo.html"
    path.write_text(page(lines))
    pg = browser.new_page(viewport={"width": 1300, "height": 900})
    pg.goto(path.as_uri())
    assert sorted(_names(pg)) == sorted(m["model"] for m in lines)
    pg.fill("#search", "vit_*")
    assert _names(pg) == ["vit_base_patch16_224"]
    pg.fill("#search", "")
    pg.select_option("#library", "torchvision")
    assert set(_names(pg)) == {m["model"] for m in lines if m["library"] == "torchvision"}
    pg.select_option("#library", "")
    # sorted by the final stage's field (a global one by its local field), largest first
    pg.select_option("#sort", "rf")

    def final(m):
        s = m["stages"][-1]
        return max(Fraction(v) for v in (s["local_rf"] if s["global"] else s["rf"]))
    assert _names(pg) == [m["model"] for m in sorted(lines, key=lambda m: (-final(m),
                                                                           m["library"]))]
    # a click draws every stage's field, at its size against the input's
    m = next(x for x in lines if x["model"] == "resnet50")
    pg.click('tr[data-model="timm:resnet50"]')
    assert pg.text_content("#title") == "timm:resnet50"
    cells = pg.eval_on_selector_all("#stage-table tbody tr", "rows => rows.map(r => "
                                    "[...r.cells].map(c => c.textContent.trim()))")
    assert [c[0].lstrip("■ ") for c in cells] == [s["module"] for s in m["stages"]]
    assert [c[2] for c in cells] == [atlas.axes_text(s["rf"]) for s in m["stages"]]
    assert [c[5] for c in cells] == [atlas.stage_verdict(m, s) for s in m["stages"]]
    inp = float(pg.get_attribute("#stages rect.input", "width"))
    for s in m["stages"]:
        width = float(pg.get_attribute(f'#stages rect.stage[data-module="{s["module"]}"]',
                                       "width"))
        assert width / inp == pytest.approx(float(s["rf"][-1]) / m["input"][-1], rel=1e-6)
    assert re.search(r"\d+ of \d+ models", pg.text_content("#count"))
    pg.close()
