"""Recurrent nets along a spatial axis (Sequencer2D: an LSTM over each row and each
column): run both ways, each position reads its whole row (or column) and nothing
else, checked against back-propagation unit by unit; run one way each step reads only
the steps before it, which is reported by name, not guessed."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import rfield  # noqa: E402

from torch_checks import check_model  # noqa: E402

nn = torch.nn


class RowRNN(nn.Module):
    """(B, C, H, W) -> the rows (or columns) as sequences, batch_first, as timm's
    Sequencer2D folds the other axis into the batch."""

    def __init__(self, cell=nn.LSTM, both_ways: bool = True, along: str = "w"):
        super().__init__()
        self.rnn = cell(3, 3, batch_first=True, bidirectional=both_ways)
        self.along = along
        self.fc = nn.Linear(6 if both_ways else 3, 4)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        b, _, _, c = x.shape
        if self.along == "h":
            x = x.permute(0, 2, 1, 3)
        y, _ = self.rnn(x.reshape(-1, x.shape[2], c))
        y = y.reshape(b, *x.shape[1:3], -1)
        if self.along == "h":
            y = y.permute(0, 2, 1, 3)
        return self.fc(y).permute(0, 3, 1, 2)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN], ids=["lstm", "gru", "rnn"])
@pytest.mark.parametrize("along", ["w", "h"])
def test_a_recurrent_net_both_ways_reads_its_whole_row(cell, along):
    torch.manual_seed(0)
    a, checked = check_model(RowRNN(cell, True, along), (6, 9), modules=[""],
                             units_per_axis=("centre", 0, -1, 1), exact=True)
    assert checked >= 4 and not a.graph.unknown_ops
    f = a.field()
    assert not f.is_global
    assert f.rf == ((1, 9) if along == "w" else (6, 1))


def test_one_way_is_reported():
    a = rfield.analyze(RowRNN(nn.LSTM, False), (6, 9))
    assert a.graph.unknown_ops == {
        "lstm run one way (each step reads only the steps before it)": 1}
