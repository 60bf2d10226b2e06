"""The front-end kernel on its own, as a new adapter would use it: a channels-last
window must give the graph the spec path gives (which is checked against the
brute force in test_reference_examples and test_properties)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rfield
from rfield.core.analysis import Analysis
from rfield.frontends.kernel import Kernel, T, Unknown
from rfield.report.oplist import ops_text


def _kernel(size):
    return Kernel(size, False, "test", naming=lambda kind: (kind, None), where=lambda: "here")


def test_channels_last_window_equals_the_spec():
    k = _kernel((31, 20))
    k.state.bind(T("x", (1, 31, 20, 3)), "input", (None, 0, 1, None))
    k.window("conv", T("x", (1, 31, 20, 3)), T("y", (1, 16, 10, 8)), [7, 5], [2, 2],
             [[3, 3], [2, 2]], 1, dims=[1, 2])
    k.permute(T("y", (1, 16, 10, 8)), T("z", (1, 8, 16, 10)), [0, 3, 1, 2])
    k.window("maxpool", T("z", (1, 8, 16, 10)), T("p", (1, 8, 8, 5)), [2, 2], 2)
    ours = Analysis(k.state.finish(source="test"))
    spec = rfield.analyze("conv(7x5, s=2, p=3x2); maxpool(2)", input_size=(31, 20))
    assert [f.rf for f in ours.layers] == [f.rf for f in spec.layers]
    for unit in ((0, 0), (3, 4), (7, 4)):
        assert ours.box("maxpool", unit).ranges == spec.box(spec.graph.last(), unit).ranges


def test_a_size_the_framework_disagrees_with_is_an_error():
    k = _kernel((16,))
    k.state.bind(T("x", (1, 1, 16)), "input", (None, None, 0))
    with pytest.raises(rfield.RfieldError, match=r"computes size \[14\] .* makes \[15\]"):
        k.window("conv", T("x", (1, 1, 16)), T("y", (1, 1, 15)), [3])


def test_a_window_over_channels_is_not_followed():
    k = _kernel((16,))
    k.state.bind(T("x", (1, 4, 16)), "input", (None, None, 0))
    with pytest.raises(Unknown):
        k.window("conv", T("x", (1, 4, 16)), T("y", (1, 2, 16)), [3], dims=[1])


def test_the_operator_list_in_the_docs_is_the_tables():
    text = (Path(__file__).resolve().parent.parent / "docs" / "operators.md").read_text()
    assert ops_text() in text, "regenerate docs/operators.md with: rfield ops"
