"""Window attention, rolls and tokens: followed exactly, checked against
back-propagation through the real modules (hand-made the way Swin, MaxViT and
MLP-Mixer write them), and the parts bookkeeping against numpy's own reshapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import rfield  # noqa: E402
from rfield.frontends import kernel_parts as P  # noqa: E402
from window_models import Swin, TokenMixer  # noqa: E402

from torch_checks import check_model  # noqa: E402

UNITS = ("centre", 0, -1, 1, 2, 3, 5, 6, 7, 9, 13, 14, 15)


def spatial_modules(a) -> list[str]:
    g = a.graph
    return [m for m, n in g.aliases.items()
            if all(s > 1 for s in g.nodes[n].size)
            and any(d is not None for d in g.alias_layouts.get(m, ()))]


@pytest.mark.parametrize("options", [{}, {"fused": True}, {"fused": "einsum"}, {"grid": True},
                                     {"grid": True, "fused": "einsum"}],
                         ids=["matmul", "sdpa", "einsum", "grid", "grid-einsum"])
def test_window_attention_is_exact_unit_by_unit(options):
    """Shifted windows (with Swin's mask), patch merging, an MLP over tokens and
    MaxViT's grid attention: every checked unit's box equals the measured one."""
    torch.manual_seed(0)
    model = Swin(**options)
    a = rfield.analyze(model, (64, 64))
    assert not a.graph.unknown_ops
    assert not [f for f in a.findings if f.kind == "misaligned"]
    a, checked = check_model(model, (64, 64), modules=spatial_modules(a),
                             units_per_axis=UNITS, exact=True)
    assert checked > 60
    # by hand: the stem maps unit u to pixels 2u, 2u + 1; a window of 4 units reads 8
    box = lambda u: [tuple(r) for r in a.box("blocks.0", (u, u)).ranges]
    assert box(1) == box(3) == [(0, 7)] * 2 and box(4) == [(8, 15)] * 2


def test_a_linear_over_all_tokens_is_global_and_exact():
    torch.manual_seed(0)
    a, checked = check_model(TokenMixer(), (32, 32), modules=["head"], units_per_axis=UNITS[:9],
                             exact=True)
    assert checked and a.field("head").is_global and not a.graph.unknown_ops


class TwoConvs(nn.Module):
    """Two 3 x 3 convolutions, ``a`` before and ``b`` after what a test puts between;
    ``option``: which variant of it."""

    def __init__(self, option=None):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
        self.option = option


class Rolled(TwoConvs):
    def forward(self, x):
        return self.b(torch.roll(self.a(x), shifts=(3, -5), dims=(2, 3)))


def test_a_roll_wraps_at_the_border_only():
    """Interior units see a translated field; units at the wrap see both borders."""
    a, checked = check_model(Rolled(), (16, 16), modules=["b"],
                             units_per_axis=tuple(range(16)), exact=True)
    assert checked == 16 and a.field("b").rf == (5, 5)
    # rows 7..9 of a read rows 4..6 before the roll by 3: the conv reads 3..7
    assert [tuple(r) for r in a.box("b", (8, 8)).ranges] == [(3, 7), (11, 15)]
    # rows 1..3 read rows 14, 15 and 0: the box spans the axis
    assert tuple(a.box("b", (2, 8)).ranges[0]) == (0, 15)


class Uneven(nn.Module):
    def forward(self, x):  # 2 channels x 6 positions as 3 x 4: no dim boundary on a digit
        return x.reshape(1, 3, 4).softmax(-1)


def test_a_view_that_cuts_positions_unevenly_is_reported():
    a = rfield.analyze(Uneven(), (6,), channels=2)
    assert a.graph.unknown_ops == {"view that splits positions unevenly": 1}


# --------------------------------------------------------------------------- parts

@st.composite
def views(draw):
    """A map (batch 1, channels, H, W) and a chain of reshapes and permutes."""
    h = draw(st.sampled_from([2, 4, 6, 8, 12]))
    w = draw(st.sampled_from([2, 3, 4, 8]))
    c = draw(st.sampled_from([1, 2, 3]))
    steps = draw(st.lists(st.tuples(st.booleans(), st.randoms(use_true_random=False)),
                          max_size=4))
    return (1, c, h, w), steps


def _factor(n: int, rnd) -> list[int]:
    out = []
    while n > 1:
        d = rnd.choice([k for k in range(2, n + 1) if n % k == 0])
        out.append(d)
        n //= d
    return out


@settings(max_examples=300, deadline=None)
@given(views())
def test_parts_say_where_every_position_is(case):
    """After any chain of views and permutes, the parts give each element's (row,
    column), as numpy moving an index grid shows."""
    shape, steps = case
    rows = np.broadcast_to(np.arange(shape[2])[:, None], shape)
    cols = np.broadcast_to(np.arange(shape[3])[None, :], shape)
    dims = P.from_layout((None, None, 0, 1), shape, shape[2:])
    for permute, rnd in steps:
        if permute:
            perm = list(range(rows.ndim))
            rnd.shuffle(perm)
            rows, cols = rows.transpose(perm), cols.transpose(perm)
            dims = P.permute(dims, perm)
        else:
            new = _factor(rows.size, rnd)
            rnd.shuffle(new)
            new = new or [1]
            rows, cols = rows.reshape(new), cols.reshape(new)
            dims = P.reshape(dims, new)
            if dims is None:
                return  # an uneven cut: not followed (reported), nothing to check
    for idx in np.ndindex(rows.shape):
        at = [0, 0]
        for d, i in enumerate(idx):
            k = i
            for a, s, c in reversed(dims[d]):  # minor part first
                k, digit = divmod(k, c)
                if a is not None:
                    at[a] += s * digit
        assert (at[0], at[1]) == (rows[idx], cols[idx])


@pytest.mark.parametrize("options", [{}, {"fused": "einsum"}, {"grid": True}],
                         ids=["matmul", "einsum", "grid"])
def test_the_onnx_export_reads_as_the_module(tmp_path, options):
    """torch's exporter writes roll as two slices and a concat, qkv[0] as Gather, the
    norm's broadcast as Expand: the same boxes as the module's (measured above)."""
    pytest.importorskip("onnx")
    import warnings

    torch.manual_seed(0)
    model = Swin(**options).eval()
    path = tmp_path / "swin.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(path), dynamo=False,
                          opset_version=17)
    got, want = rfield.analyze(str(path)), rfield.analyze(model, (64, 64))
    assert not got.graph.unknown_ops
    f, g = got.field(), want.field()
    assert f.rf == g.rf and f.jump == g.jump
    for unit in [(0, 0), (5, 7), (15, 15), (8, 3), (12, 1)]:
        assert got.box(f.name, unit).ranges == want.box(g.name, unit).ranges, unit


class EinsumNet(nn.Module):
    """A 1x1 convolution and a spatial attention written as einsums."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=2)
        self.w = nn.Parameter(torch.randn(6, 4))
        self.head = nn.Conv2d(6, 2, 3)

    def forward(self, x):
        x = torch.einsum("bchw,dc->bdhw", self.stem(x), self.w)  # pointwise
        return self.head(x)


class EinsumAttention(EinsumNet):
    def forward(self, x):
        x = torch.einsum("bchw,dc->bdhw", self.stem(x), self.w)
        t = x.flatten(2)  # (B, C, N) tokens
        attn = torch.einsum("bcn,bcm->bnm", t, t).softmax(-1)
        y = torch.einsum("bnm,bcm->bcn", attn, t).view_as(x)
        return self.head(x + y)


def test_einsum_is_read_by_its_letters():
    a, checked = check_model(EinsumNet(), (21, 21), modules=["head"], units_per_axis=UNITS[:8],
                             exact=True)
    assert checked and not a.graph.unknown_ops and a.field("head").rf == (7, 7)
    a, checked = check_model(EinsumAttention(), (21, 21), modules=["head"],
                             units_per_axis=UNITS[:8], exact=True)
    f = a.field("head")
    assert checked and f.is_global and f.local_rf == (7, 7) and not a.graph.unknown_ops


@pytest.mark.parametrize("name", ["swin_tiny_patch4_window7_224", "maxvit_nano_rw_256"])
def test_timm_window_models_are_exact(name):
    """Swin's shifted windows and MaxViT's window and grid attention as timm builds them
    (random weights): the last stage's centre and corner units, measured."""
    timm = pytest.importorskip("timm")
    model = timm.create_model(name, pretrained=False).eval()
    size = model.pretrained_cfg["input_size"][1:]
    a, checked = check_model(model, size, modules=["stages.3" if "maxvit" in name
                                                   else "layers.3"], exact=True)
    assert checked == 3 and not a.graph.unknown_ops


class TokenPool(nn.Module):
    """Hugging Face's pooler: tokens (B, N, C) averaged by AdaptiveAvgPool1d(1)."""

    def __init__(self):
        super().__init__()
        self.stem, self.pool = nn.Conv2d(3, 4, 4, stride=4), nn.AdaptiveAvgPool1d(1)

    def forward(self, x):
        t = self.stem(x).flatten(2).transpose(1, 2)
        return self.pool(t.transpose(1, 2)).flatten(1)


def test_tokens_pooled_are_global():
    a = rfield.analyze(TokenPool(), (16, 16))
    f = a.field()
    assert not a.graph.unknown_ops and f.is_global and a.field("stem").rf == (4, 4)


@pytest.mark.parametrize("size", [(32, 32), (48, 40)])
def test_attention_over_all_patches_at_one_offset_is_global(size):
    """MobileViT (issue 23): each unit reads its offset in every patch, spanning each
    axis at any size; with fields wider than the patch spacing that is every input
    position, so the block is global (its local field, the conv path, beside it),
    and back-propagation agrees unit by unit at two sizes."""
    from window_models import MobileViTLike

    torch.manual_seed(0)
    model = MobileViTLike()
    a = rfield.analyze(model, size)
    assert not a.graph.unknown_ops
    f = a.fields[a.graph.aliases["block"]]
    assert f.is_global and f.local_rf == (23, 23)  # stem 3, down 7, local 15, fusion 23
    a, checked = check_model(model, size, modules=["block", "head"],
                             units_per_axis=("centre", 0, -1, 1, 2, 3, 5), exact=True)
    assert checked >= 14
    box = a.box("head", (0, 0))
    assert box.ranges == tuple((0, n - 1) for n in size)


def test_a_grid_whose_fields_leave_gaps_stays_a_window_mix():
    """The same digits with fields narrower than the grid's spacing read every value
    of the highest digit but not every position: exact window-mix boxes, not global."""
    model = Swin(grid=True)
    a = rfield.analyze(model, (64, 64))
    assert not a.fields[a.graph.aliases["blocks.3"]].is_global
    assert a.box("blocks.3", (1, 1)).ranges == ((0, 47), (0, 47))  # measured by the grid test


@pytest.mark.parametrize("size", [(256, 256), (320, 384)])
def test_mobilevit_is_global_at_two_sizes(size):
    """timm's mobilevit_xxs (issue 23: a local field of 1387 growing with the input was
    reported): its last stage is global, and back-propagation from a corner unit and
    the centre reaches every input position."""
    timm = pytest.importorskip("timm")
    from rfield.empirical.gradient import measure

    model = timm.create_model("mobilevit_xxs", pretrained=False).eval()
    a = rfield.analyze(model, size)
    stage = a.graph.aliases["stages.4"]
    assert a.fields[stage].is_global and a.fields[stage].local_rf == (307, 307)
    grid = a.graph.nodes[stage].size
    got = measure(model, (1, 3, *size), ["stages.4"],
                  {"stages.4": [(0, 0), tuple(n // 2 for n in grid)]})["stages.4"]
    assert [m.box for m in got] == [tuple((0, n - 1) for n in size)] * 2


class WindowProjection(nn.Module):
    """1 x 1 convolutions on positions split into 4 x 4 windows (a window's projection,
    EfficientFormerV2's and EfficientViT's), between two 3 x 3 convolutions on maps;
    with ``unshuffled`` the positions of each 2 x 2 block are moved into the channels
    first, where a 1 x 1 convolution mixes them."""

    def __init__(self, unshuffled: bool = False):
        super().__init__()
        self.unshuffled = unshuffled
        c = 8 if unshuffled else 2
        self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
        self.proj = nn.Conv2d(c, 3, 1)  # the channels change on split positions
        self.proj1d = nn.Conv1d(3, c, 1)

    def forward(self, x):
        x = self.a(x)
        b, c, h, w = x.shape
        if self.unshuffled:  # (B, C * 4, H / 2, W / 2), then windows of 4 x 4 as before
            x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
            x = x.reshape(b, c * 4, h // 2, w // 2)
            c, h, w = c * 4, h // 2, w // 2
        win = x.view(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5)
        win = win.reshape(-1, c, 4, 4)
        win = self.proj(win).view(-1, 3, 4, 4)
        win = self.proj1d(win.flatten(2)).view(-1, c, 4, 4)
        x = win.view(b, h // 4, w // 4, c, 4, 4).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)
        if self.unshuffled:
            x = x.view(b, 2, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, 2, h * 2, w * 2)
        return self.b(x)


def test_a_one_by_one_conv_on_windows_is_pointwise():
    torch.manual_seed(0)
    a, checked = check_model(WindowProjection(), (16, 16), modules=["b"],
                             units_per_axis=tuple(range(16)), exact=True)
    assert checked == 16 and not a.graph.unknown_ops and a.field("b").rf == (5, 5)


def test_a_one_by_one_conv_mixing_positions_in_channels_is_reported():
    a = rfield.analyze(WindowProjection(unshuffled=True), (16, 16))
    assert "conv on positions split into windows or merged into tokens" in \
        a.graph.unknown_ops
    check_model(WindowProjection(unshuffled=True), (16, 16), modules=["b"])  # contains


class RowGate(TwoConvs):
    """``expand_as`` of a row mean onto the map (a broadcast, not a view)."""

    def forward(self, x):
        x = self.a(x)
        return self.b(x * torch.sigmoid(x.mean(3, keepdim=True).expand_as(x)))


def test_expand_as_broadcasts_a_row_onto_the_map():
    a, checked = check_model(RowGate(), (12, 16), modules=["b"],
                             units_per_axis=tuple(range(12)), exact=True)
    assert checked == 12 and not a.graph.unknown_ops
    assert [tuple(r) for r in a.box("b", (5, 5)).ranges] == [(3, 7), (0, 15)]


class SplitRows(nn.Module):
    """``torch.split`` along a spatial dim: each piece a slice of the rows."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b, self.c = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        top, bottom = torch.split(self.a(x), [5, 7], dim=2)
        left, right = self.c(bottom).chunk(2, dim=3)
        return self.b(top), right


def test_a_split_along_a_spatial_dim_is_a_slice_per_piece():
    a, checked = check_model(SplitRows(), (12, 10), modules=["b", "c"],
                             units_per_axis=tuple(range(5)), exact=True)
    assert checked and not a.graph.unknown_ops
    assert [tuple(r) for r in a.box("b", (4, 4)).ranges] == [(2, 5), (2, 6)]  # row 5 is padding
    assert [tuple(r) for r in a.box("c", (0, 0)).ranges] == [(4, 7), (0, 2)]


class ColumnGates(TwoConvs):
    """amin and prod along one spatial dim (kept), each broadcast back as a gate."""

    def forward(self, x):
        x = self.a(x)
        low = torch.amin(x, dim=2, keepdim=True)
        prod = torch.prod(torch.sigmoid(x), 3, keepdim=True)
        return self.b(x * torch.sigmoid(low) + x * prod)


def test_amin_and_prod_over_one_axis_read_that_axis_whole():
    a, checked = check_model(ColumnGates(), (10, 12), modules=["b"],
                             units_per_axis=tuple(range(10)), exact=True)
    assert checked == 10 and not a.graph.unknown_ops
    assert [tuple(r) for r in a.box("b", (4, 4)).ranges] == [(0, 9), (0, 11)]


class Unbound(nn.Module):
    """``unbind`` along channels, the last dim (an IndexError until it was known that
    unbind's pieces have one dim fewer)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        q, k, v = self.a(x).permute(0, 2, 3, 1).unbind(-1)
        return self.b((q + k * v).unsqueeze(1))


def test_unbind_along_channels_keeps_the_positions():
    a, checked = check_model(Unbound(), (12, 12), modules=["b"],
                             units_per_axis=("centre", 0, -1), exact=True)
    assert checked and not a.graph.unknown_ops and a.field("b").rf == (5, 5)


class Written(TwoConvs):
    """``y[index] = value``: along channels only (keypoints rescaled in place), over
    all of a spatial dim (MViTv2's relative positions added with ``[:, :, 0:]``), or
    into a part of one (not followed)."""

    def forward(self, x):
        y = self.a(x)
        z = y.clone()  # as YOLO's keypoint decoding writes into a copy
        z[self.option] = self.b(y)[self.option] * 2.0
        return self.b(z)


@pytest.mark.parametrize("index", [(slice(None), slice(0, 1)),
                                   (slice(None), slice(None), slice(0, None)),
                                   (Ellipsis, slice(0, 8))],
                         ids=["channels", "all-of-a-dim", "part-of-a-dim"])
def test_a_write_is_followed_where_it_cuts_no_position(index):
    part = index[0] is Ellipsis
    a, checked = check_model(Written(index), (16, 16), modules=[""],
                             units_per_axis=("centre", 0, -1, 3), exact=not part)
    assert checked >= 4
    if part:
        assert a.graph.unknown_ops == {"__setitem__ into a spatial dim": 1}
    else:  # a, b, then b again on the merge
        assert not a.graph.unknown_ops and a.field().rf == (7, 7)


@pytest.mark.parametrize("size,patch,local", [((32, 32), 2, 3), ((48, 40), 2, 3),
                                              ((32, 32), 4, 1)],
                         ids=["global-32", "global-48x40", "strided"])
def test_a_context_summed_over_all_patches_at_one_offset(size, patch, local):
    """MobileViTv2: the keys summed over every patch at one offset and broadcast back
    onto the values read every position with that offset; wider than the patch
    spacing that is everything (global), narrower it is exact strided boxes."""
    from window_models import MobileViTv2Like

    torch.manual_seed(0)
    model = MobileViTv2Like(patch, local)
    a, checked = check_model(model, size, modules=["block", "head"],
                             units_per_axis=("centre", 0, -1, 1, 2, 3, 5), exact=True)
    assert checked >= 12 and not a.graph.unknown_ops
    assert a.fields[a.graph.aliases["block"]].is_global == (local > 1)


class Unfolded(TwoConvs):
    """Windows gathered without overlap (``F.unfold`` with kernel == stride,
    ``Tensor.unfold`` with size == step), each 4 x 4 patch summed to one unit of a
    4 x 4 map; ``F.fold`` putting patches gathered by a view back; an overlapping
    ``F.unfold`` (not followed)."""

    def forward(self, x):
        y = self.a(x)
        b, c, h, w = y.shape
        F = torch.nn.functional
        if self.option == "functional":
            y = F.unfold(y, 4, stride=4).view(b, c, 16, 16).sum(2).view(b, c, 4, 4)
        elif self.option == "tensor":
            y = y.unfold(2, 4, 4).unfold(3, 4, 4).sum((-1, -2))
        elif self.option == "fold":
            patches = y.view(b, c, 4, 4, 4, 4).permute(0, 1, 3, 5, 2, 4).reshape(b, 16 * c, 16)
            y = F.fold(patches, (h, w), 4, stride=4)
        else:
            y = F.unfold(y, 3, padding=1).view(b, c, 9, h, w).mean(2)
        return self.b(y)


@pytest.mark.parametrize("how", ["functional", "tensor", "fold", "overlapping"])
def test_windows_gathered_without_overlap_are_digits(how):
    a, checked = check_model(Unfolded(how), (16, 16), modules=[""], exact=how != "overlapping",
                             units_per_axis=("centre", 0, -1, 1, 2, 3))
    assert checked >= 4
    if how == "overlapping":
        assert a.graph.unknown_ops == {"unfold": 1}
        return
    assert not a.graph.unknown_ops and not a.field().is_global
    # by hand: a patch summed is 4 pixels of a's map at jump 1; b's 3 x 3 over patches
    # reads 12, a's 3 x 3 adds 2; the fold's round trip leaves a then b: 5
    assert a.field().rf == ((5, 5) if how == "fold" else (14, 14))


def test_attention_of_queries_pooled_inside_each_window():
    """Hiera: each pooled query reads its 2 x 2 block and every key of its 4 x 4 window."""
    from window_models import PooledQueries

    torch.manual_seed(0)
    a, checked = check_model(PooledQueries(), (16, 16), modules=[""], exact=True,
                             units_per_axis=("centre", 0, -1, 1, 2, 3))
    assert checked >= 6 and not a.graph.unknown_ops
    # a window of 4 px, the stem's and the head's margins: 4 + 2 + 2 * 2 (head at jump 2)
    assert a.field().rf == (10, 10) and not a.field().is_global


class PooledWindows(TwoConvs):
    """SAM2's Hiera: positions split into 4 x 4 windows (batch x windows, C, 4, 4),
    each window max-pooled 2 x 2 (or, not followed, 3 x 3 with stride 2 and padding:
    clipped at every window's border), the windows put back."""

    def forward(self, x):
        y = self.a(x)
        b, c, h, w = y.shape
        t = y.view(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, 4, 4)
        t = torch.nn.functional.max_pool2d(t, self.option, 2, int(self.option == 3))
        t = t.view(b, h // 4, w // 4, c, 2, 2).permute(0, 3, 1, 4, 2, 5)
        return self.b(t.reshape(b, c, h // 2, w // 2))


@pytest.mark.parametrize("kernel", [2, 3])
def test_a_pool_inside_each_window_is_exact_where_blocks_never_straddle(kernel):
    if kernel == 3:  # clipped at every window's border: reported, not guessed
        a = rfield.analyze(PooledWindows(kernel), (16, 16))
        assert a.graph.unknown_ops == {"max_pool2d on positions split into windows or "
                                       "merged into tokens": 1}
        return
    a, checked = check_model(PooledWindows(kernel), (16, 16), modules=[""], exact=True,
                             units_per_axis=("centre", 0, -1, 1, 2, 3))
    # a's 3, the pool's 2 at jump 1, b's 3 at jump 2: 3 + 1 + 4
    assert checked >= 4 and not a.graph.unknown_ops and a.field().rf == (8, 8)


class PooledRows(TwoConvs):
    """Tokens pooled along their flattened rows (NextViT's keys: avg_pool1d over the
    token dim), ``kernel`` tokens at a time: inside each row of 8 where it divides it,
    across rows (not followed) where it does not."""

    def forward(self, x):
        y = self.a(x)
        b, c, h, w = y.shape
        t = torch.nn.functional.avg_pool1d(y.flatten(2), self.option, self.option)
        if self.option != 4:
            return t
        return self.b(t.view(b, c, h, w // 4))


@pytest.mark.parametrize("kernel", [4, 3])
def test_tokens_pooled_along_their_rows(kernel):
    if kernel == 3:
        a = rfield.analyze(PooledRows(kernel), (8, 8))
        assert a.graph.unknown_ops == {"avg_pool1d on positions split into windows or "
                                       "merged into tokens": 1}
        return
    a, checked = check_model(PooledRows(kernel), (8, 8), modules=[""], exact=True,
                             units_per_axis=("centre", 0, -1, 1))
    # rows: a's 3, b's 3; columns: a's 3, the pool's 4, b's 3 at jump 4
    assert checked >= 3 and not a.graph.unknown_ops and a.field().rf == (5, 14)


class PositionAttention(TwoConvs):
    """MAnet's position attention: every position against every other, a softmax over
    the whole map of them, the values weighted and put back with a reshape that does
    not undo the transpose (positions scrambled into channels: each reads everything
    anyway; with 3 channels the 64 positions split unevenly), added to the map."""

    def __init__(self, channels: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, channels, 3, padding=1), nn.Conv2d(channels, 2, 3, padding=1)

    def forward(self, x):
        y = self.a(x)
        b, c, h, w = y.shape
        pairs = torch.matmul(y.flatten(2).transpose(1, 2), y.flatten(2))
        m = torch.softmax(pairs.view(b, -1), -1).view(b, h * w, h * w)
        z = torch.matmul(m, y.flatten(2).transpose(1, 2)).reshape(b, c, h, w)
        return self.b(y + z)


@pytest.mark.parametrize("channels", [2, 3])
def test_a_map_read_whole_then_scrambled_is_global_beside_the_local_path(channels):
    a, checked = check_model(PositionAttention(channels), (8, 8), modules=[""], exact=True,
                             units_per_axis=("centre", 0, -1))
    f = a.field()
    assert checked >= 3 and not a.graph.unknown_ops
    assert f.is_global and f.local_rf == (5, 5)
