"""Anchors of several maps along one dim (a detector head's ``cat`` of flattened
levels): followed map by map, each anchor range checked against back-propagation
unit by unit; what reads across the anchors is global, what cannot be told is
reported by name."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import rfield  # noqa: E402

from torch_checks import check_model  # noqa: E402

UNITS = ("centre", 0, -1, 1, 2)


class Head(nn.Module):
    """YOLO's decoding written small: per map a 3 x 3 conv, the maps' positions
    flattened and put one after another, a softmax over bins, a 1 x 1 conv over
    (bins, sides, anchors), box arithmetic with constant anchors and strides, a
    keypoint slice rescaled in place, scores. ``across`` then reads among the
    anchors in one of several ways."""

    def __init__(self, across: str = ""):
        super().__init__()
        self.box = nn.ModuleList(nn.Conv2d(2, 4 * 4, 3, padding=1) for _ in range(2))
        self.cls = nn.ModuleList(nn.Conv2d(2, 3, 3, padding=1) for _ in range(2))
        self.dfl = nn.Conv2d(4, 1, 1, bias=False)
        self.across = across

    def forward(self, maps):
        boxes = torch.cat([b(x).flatten(2) for b, x in zip(self.box, maps)], 2)
        scores = torch.cat([c(x).view(x.shape[0], 3, -1) for c, x in zip(self.cls, maps)], -1)
        n, a = boxes.shape[0], boxes.shape[-1]
        dist = self.dfl(boxes.view(n, 4, 4, a).transpose(2, 1).softmax(1)).view(n, 4, a)
        lt, rb = dist.chunk(2, 1)
        anchors = torch.arange(2 * a, dtype=dist.dtype).view(1, 2, a)
        strides = torch.ones(1, a, dtype=dist.dtype)
        xy = ((anchors - lt) + (anchors + rb)) / 2
        out = torch.cat((xy, rb - lt), 1) * strides
        out = torch.cat((out, scores.sigmoid()), 1)
        out[:, 0::2] = out[:, 0::2] * 2.0 + 1.0  # in place, along channels only
        if self.across == "softmax":
            out = out.softmax(-1)
        elif self.across == "mean":
            out = out - out.mean(-1, keepdim=True)
        elif self.across == "conv":  # a window along the anchors: no meaning, not followed
            out = nn.functional.conv1d(out, torch.ones(out.shape[1], 1, 3), padding=1,
                                       groups=out.shape[1])
        return out


class Detector(nn.Module):
    """Two maps (strides 2 and 4) and the head over them."""

    def __init__(self, across: str = ""):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.down = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.head = Head(across)

    def forward(self, x):
        p3 = self.stem(x)
        return self.head([p3, self.down(p3)])


def test_each_maps_anchors_equal_back_propagation():
    torch.manual_seed(0)
    a = rfield.analyze(Detector(), (16, 16))
    assert not a.graph.unknown_ops
    pieces = ["head[0:64]", "head[64:80]"]  # 8 x 8 anchors, then 4 x 4
    assert [m for m in a.graph.aliases if m.startswith("head[")] == pieces
    a, checked = check_model(Detector(), (16, 16), modules=pieces, units_per_axis=UNITS,
                             exact=True)
    assert checked >= 2 * 4
    # by hand: the stem's 3 x 3 / 2, then the head's 3 x 3 on it: 7 wide, jump 2
    assert a.field("head[0:64]").rf == (7, 7) and a.field("head[0:64]").jump == (2, 2)
    assert a.field("head[64:80]").jump == (4, 4)
    assert not a.field("head[64:80]").is_global


def test_reading_across_the_anchors_is_global():
    """A softmax over the anchors, or their mean taken away: every output reads every
    map whole."""
    for across in ("softmax", "mean"):
        torch.manual_seed(0)
        a = rfield.analyze(Detector(across), (16, 16))
        assert not a.graph.unknown_ops, across
        assert a.field().is_global, across
        # back-propagation: one output of the first map's anchors reads every pixel
        model = Detector(across).double()
        x = torch.randn(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
        model(x)[0, 0, 0].backward()
        assert bool((x.grad[0, 0] != 0).all()), across


def test_a_window_along_the_anchors_is_reported_not_guessed():
    a = rfield.analyze(Detector("conv"), (16, 16))
    assert a.graph.unknown_ops == {"conv1d on anchors of several maps": 1}
    with pytest.raises(rfield.RfieldError, match="conv1d on anchors of several maps"):
        rfield.analyze(Detector("conv"), (16, 16), strict=True)


def test_maps_put_one_after_another_twice_keep_their_order():
    """Anchors joined with more anchors along the same dim: three ranges."""

    class Three(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 2, 3, padding=1)
            self.b = nn.Conv2d(2, 2, 3, stride=2, padding=1)
            self.head = nn.Identity()

        def forward(self, x):
            p, q = self.a(x), None
            q = self.b(p)
            r = self.b(q)
            first = torch.cat([p.flatten(2), q.flatten(2)], 2)
            return self.head(torch.cat([first, r.flatten(2)], 2).relu())

    a, checked = check_model(Three(), (8, 8), modules=["head[0:64]", "head[64:80]",
                                                       "head[80:84]"],
                             units_per_axis=("centre", 0, -1, 1), exact=True)
    assert checked >= 3 * 3 and not a.graph.unknown_ops
    assert [a.field(m).jump for m in ("head[0:64]", "head[64:80]", "head[80:84]")] == \
        [(1, 1), (2, 2), (4, 4)]
