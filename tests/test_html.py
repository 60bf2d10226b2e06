"""The HTML report: self-contained, and right in a real browser after a click."""

from __future__ import annotations

import os
import re

import pytest

import rfield
from rfield.cli import main
from rfield.report.html import default_layer, render


def test_report_is_self_contained(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "example:fpn", "-o", str(out)]) == 0
    text = out.read_text()
    # no fetch of anything: the only URL is the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert "<script src" not in text and "<link" not in text
    assert "misaligned" in text  # the warnings are in the page


def test_report_rejects_a_non_png_image(tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_text("not a png")
    code = main(["report", "example:seed1", "-o", str(tmp_path / "r.html"), "--image",
                 str(bad)])
    assert code == 2 and "not a PNG" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()  # nothing half-written


@pytest.mark.parametrize("target,node", [("example:unet", "dec2"), ("example:resnet18",
                                                                      "layer3.0.conv1")])
def test_click_shows_the_exact_field(browser, tmp_path, target, node):
    a = rfield.analyze(target)
    path = tmp_path / "r.html"
    path.write_text(render(a, target))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    # the default view: the deepest layer whose centre unit's field is inside the input
    first = page.text_content("#readout")
    default = default_layer(a)
    box = a.box(default)
    assert f"of {default} sees input" in first
    assert " x ".join(f"{lo}..{hi}" for lo, hi in box.ranges) in first
    # choose a layer by clicking its row, then a unit by clicking the grid
    page.click(f'tr[data-layer="{node}"]')
    size = a.graph.nodes[node].size
    grid = page.locator("#grid")
    bb = grid.bounding_box()
    r, c = 1, size[1] - 2
    grid.click(position={"x": (c + 0.5) * bb["width"] / size[1],
                         "y": (r + 0.5) * bb["height"] / size[0]})
    text = page.text_content("#readout")
    want = a.box(node, (r, c))
    assert text.startswith(f"unit ({r}, {c}) of {node} sees input ")
    assert " x ".join(f"{lo}..{hi}" for lo, hi in want.ranges) in text
    page.close()


def test_screenshot_for_the_readme(browser, tmp_path):
    """Keeps docs/report.png in step with the page (written only when asked)."""
    if os.environ.get("RFIELD_UPDATE_SCREENSHOT") != "1":
        pytest.skip("set RFIELD_UPDATE_SCREENSHOT=1 to rewrite docs/report.png")
    a = rfield.analyze("example:unet")
    path = tmp_path / "r.html"
    path.write_text(render(a, "example:unet"))
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.goto(path.as_uri())
    page.click('tr[data-layer="dec2"]')
    page.locator("#grid").click(position={"x": 40, "y": 60})
    page.evaluate("window.scrollTo(0, 0)")
    target = os.path.join(os.path.dirname(__file__), "..", "docs", "report.png")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    page.screenshot(path=target)
    page.close()


@pytest.mark.parametrize("target,size", [("example:wavenet", (3000,)),
                                         ("example:video3d", (8, 40, 40))])
def test_one_and_three_dimensional_reports(browser, tmp_path, target, size):
    a = rfield.analyze(target, size)
    path = tmp_path / "r.html"
    path.write_text(render(a, target))
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    default = default_layer(a)
    text = page.text_content("#readout")
    assert not errors and f"of {default} sees input" in text
    assert " x ".join(f"{lo}..{hi}" for lo, hi in a.box(default).ranges) in text
    page.close()


def test_torch_model_report(browser, tmp_path, capsys):
    pytest.importorskip("torchvision")
    out = tmp_path / "r.html"
    assert main(["report", "torchvision:resnet18", "--input", "64,64", "-o", str(out)]) == 0
    page = browser.new_page()
    page.goto(out.as_uri())
    page.select_option("#layer", "layer3.1.relu_1")
    text = page.text_content("#readout")
    a = rfield.analyze("torchvision:resnet18", (64, 64))
    assert " x ".join(f"{lo}..{hi}" for lo, hi in a.box("layer3.1.relu_1").ranges) in text
    page.close()


def test_the_first_view_is_a_field_inside_the_image(tmp_path):
    """A classifier's last map sees the whole input (its box is the image's border):
    the report opens on the deepest layer whose field is still inside (issue 22,
    item 8), and takes a JPEG as well as a PNG."""
    from rfield.report.html import default_layer, read_picture, report_data

    a = rfield.analyze("example:resnet18")
    first = default_layer(a)
    assert not any(a.box(first).clipped)
    later = [f.name for f in a.layers][[f.name for f in a.layers].index(first) + 1:]
    assert all(any(a.box(n).clipped) or min(a.graph.nodes[n].size) == 1 for n in later)
    jpeg = tmp_path / "p.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    data = report_data(a, read_picture(str(jpeg)))
    assert data["image"].startswith("data:image/jpeg;base64,")


def test_the_graph_names_every_layer_and_marks_what_is_unusual(tmp_path, capsys):
    """The graph: one box per layer (a spec network) with branches as edges, a red
    border on the unproductive layers, a dashed one on a misaligned merge."""
    from rfield.core.unproductive import unproductive

    a = rfield.analyze("example:fpn")
    page = render(a, "example:fpn")
    names = {n: c for c, n in re.findall(r'<g class="(node[^"]*)" data-layer="([^"]+)"', page)}
    assert set(names) == set(a.graph.nodes)
    misaligned = {f.node for f in a.findings if f.kind == "misaligned"}
    assert misaligned and all("misaligned" in names[n] for n in misaligned)
    assert page.count("<path d=") >= sum(len(n.inputs) for n in a.graph.nodes.values()) - 1
    r = rfield.analyze("example:resnet18")
    marks = unproductive(r)
    text = render(r, "example:resnet18")
    shown = {n: c for c, n in re.findall(r'<g class="(node[^"]*)" data-layer="([^"]+)"', text)}
    assert any(m and any(m) for m in marks.values())
    for n, c in shown.items():
        assert ("unproductive" in c) == bool(marks[n] and any(marks[n])), n


def test_a_click_on_the_graph_shows_the_field(browser, tmp_path, capsys):
    pytest.importorskip("torchvision")
    out = tmp_path / "r.html"
    assert main(["report", "torchvision:resnet18", "-o", str(out)]) == 0
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    labels = page.locator("#graph g.node text").all_text_contents()
    assert "layer3.0" in labels and "layer4.1" in labels  # modules at the fitting depth
    page.click('#graph g.node[data-layer="layer3.0.relu_1"]')
    a = rfield.analyze("torchvision:resnet18")
    want = " x ".join(f"{lo}..{hi}" for lo, hi in a.box("layer3.0.relu_1").ranges)
    assert want in page.text_content("#readout")
    page.check("#expand")  # every layer, the downsample branch beside the main path
    node = page.locator('#graph-all g.node[data-layer="layer2.0.downsample.0"]')
    node.click()
    want = " x ".join(f"{lo}..{hi}" for lo, hi in a.box("layer2.0.downsample.0").ranges)
    assert want in page.text_content("#readout") and not errors
    assert page.locator("#growth text.tick").count() >= 20  # layer names on the chart's axis
    page.close()
