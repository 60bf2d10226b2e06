"""A framework bug must not fake a measurement.

torch's CPU batch-norm backward (eval mode) misplaces the gradient of a batch of one
when it arrives with channels-last strides, as it does after a per-sample loop over
tokens (``flatten(2).transpose(1, 2)`` then ``unbind``): the centre unit of this
pointwise model then seems to read 8 positions. Its true field is one position. The
measurement and the ERF run two samples a pass, so both see one position.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rfield.empirical.erf import effective_rf  # noqa: E402
from rfield.empirical.gradient import measure  # noqa: E402


class PerSampleTokens(torch.nn.Module):
    """Batch norm, then its tokens stacked back sample by sample: pointwise."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(8)
        self.seen: list[int] = []

    def forward(self, x):
        self.seen.append(x.shape[0])
        tokens = self.bn(x).flatten(2).transpose(1, 2)
        return torch.stack(list(tokens)).transpose(1, 2).unflatten(2, x.shape[2:])


def test_erf_of_a_pointwise_model_is_one_position():
    model = PerSampleTokens().eval()
    e = effective_rf(model, (1, 8, 6, 6), samples=3)
    assert (e.heat > 0).sum() == 1 and e.heat[3, 3] > 0
    assert min(model.seen) >= 2


def test_measurement_of_a_pointwise_model_is_one_position():
    model = PerSampleTokens()
    got = measure(model, (1, 8, 6, 6), [""], {"": [(3, 3), (0, 5)]}, copy_model=False)[""]
    assert [m.box for m in got] == [((3, 3), (3, 3)), ((0, 0), (5, 5))]
    assert min(model.seen) >= 2


def test_many_units_in_several_passes_match_one_by_one():
    """Units measured two a backward pass (one in each sample) give each unit's own
    box, as when measured alone."""
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(3, 2, 5, dilation=2, padding=4))
    units = [(i, j) for i in range(0, 8, 3) for j in range(0, 8, 2)]
    alone = [measure(net, (1, 2, 16, 16), [""], {"": [u]})[""][0] for u in units]
    for some in (units, units[:5]):  # several pairs; an odd one out
        assert measure(net, (1, 2, 16, 16), [""], {"": some})[""] == alone[:len(some)]
