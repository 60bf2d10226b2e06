"""Class, distillation and register tokens beside a grid of patches: followed through
concat, slicing, attention and the grid's reshape back to a map, checked against
back-propagation through hand-made ViTs and against numpy for the bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import rfield  # noqa: E402
from rfield.frontends import kernel_tokens as K  # noqa: E402

from torch_checks import check_model  # noqa: E402

UNITS = ("centre", 0, -1, 1, 2, 3, 5, 6)
PATCH, SIDE, DIM = 4, 32, 16


class TinyViT(nn.Module):
    """A ViT the way timm, DeiT and DINOv2 write one: patches, a class token and
    ``registers`` concatenated (``order``: "front" as timm, "between" as DINOv2's
    cat(x[:, :1], registers, x[:, 1:])), position embeddings, ``blocks`` blocks of
    attention (sdpa or q @ k^T) and an MLP; ``out``: "grid" (the patches reshaped
    back to a map, as forward_intermediates does) or "cls" (the class token)."""

    def __init__(self, blocks=1, registers=0, order="front", attn="sdpa", out="grid",
                 rotate=False, cut="slice"):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM))
        self.reg = nn.Parameter(torch.randn(1, registers, DIM)) if registers else None
        n = (SIDE // PATCH) ** 2
        self.pos = nn.Parameter(torch.randn(1, n + 1, DIM))
        self.blocks = nn.ModuleList(Block(attn) for _ in range(blocks))
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, 5)
        self.order, self.out, self.rotate, self.cut = order, out, rotate, cut
        self.prefix = 1 + registers

    def forward(self, x):
        b = x.shape[0]
        x = self.patch(x)
        h, w = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1) + self.pos
        if self.reg is not None:
            reg = self.reg.expand(b, -1, -1)
            x = torch.cat([x[:, :1], reg, x[:, 1:]], dim=1) if self.order == "between" \
                else torch.cat([reg, x], dim=1)
        if self.rotate:  # rotary embeddings' rotate_half: the halves side by side
            x = x + torch.cat([-x[..., DIM // 2:], x[..., :DIM // 2]], dim=-1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        if self.out == "cls":  # timm keeps registers after the class token, DINOv2 before
            return self.head(x[:, 0 if self.order == "between" else self.prefix - 1])
        grid = x[:, self.prefix:] if self.cut == "slice" else \
            torch.tensor_split(x, (self.prefix,), dim=1)[1]  # as torchvision's MViT
        return grid.reshape(b, h, w, DIM).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, attn: str):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.qkv, self.proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))
        self.attn = attn
        if attn.startswith("mha"):  # torchvision's ViT: nn.MultiheadAttention
            self.mha = nn.MultiheadAttention(DIM, 2, batch_first=attn == "mha")

    def forward(self, x):
        b, n, c = x.shape
        if self.attn.startswith("mha"):
            h = self.norm1(x)
            h = h if self.attn == "mha" else h.transpose(0, 1)  # (tokens, batch, dim)
            y = self.mha(h, h, h, need_weights=False)[0]
            x = x + (y if self.attn == "mha" else y.transpose(0, 1))
            return x + self.mlp(self.norm2(x))
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.attn == "gqa":  # grouped-query attention: one key/value head for two
            k, v = k[:, :1].repeat_interleave(2, dim=1), v[:, :1].repeat_interleave(2, dim=1)
        if self.attn == "gqa-sdpa":  # the same, repeated inside sdpa (Sapiens2)
            y = F.scaled_dot_product_attention(q, k[:, :1], v[:, :1], enable_gqa=True)
        elif self.attn == "mask":  # a bias computed from each query (SAM's positions)
            bias = (q @ torch.ones(c // 2, n, dtype=q.dtype)) * 0.01
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        elif self.attn in ("sdpa", "gqa"):
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, c))
        return x + self.mlp(self.norm2(x))


def test_patches_beside_a_class_token_keep_their_field_exactly():
    """No attention: each patch's unit reads its own 4 x 4 patch, measured unit by
    unit through the class token's concat, the slice that drops it and the reshape
    (a token counted one off would measure the neighbouring patch)."""
    torch.manual_seed(0)
    model = TinyViT(blocks=0, registers=2, order="between")
    a, checked = check_model(model, (SIDE, SIDE), modules=[""], units_per_axis=UNITS,
                             exact=True)
    f = a.field()
    assert checked >= 8 and not a.graph.unknown_ops
    assert not f.is_global and f.rf == (PATCH, PATCH) and f.jump == (PATCH, PATCH)


@pytest.mark.parametrize("options", [
    {}, {"attn": "matmul"}, {"registers": 1}, {"registers": 4},
    {"registers": 4, "order": "between"}, {"blocks": 2, "attn": "matmul", "registers": 1},
    {"registers": 2, "cut": "tensor_split"}, {"attn": "mha"}, {"attn": "mha-seq-first"},
    {"attn": "gqa"}, {"attn": "gqa-sdpa"}, {"attn": "mask"}],
    ids=["sdpa", "matmul", "deit-distillation-token", "registers", "dinov2", "two-blocks",
         "tensor-split", "multihead-attention", "multihead-attention-seq-first",
         "grouped-query", "grouped-query-in-sdpa", "mask-from-queries"])
def test_after_attention_every_patch_is_global_with_the_patch_as_local_field(options):
    torch.manual_seed(0)
    model = TinyViT(**options)
    a, checked = check_model(model, (SIDE, SIDE), modules=[""], units_per_axis=UNITS,
                             exact=True)
    f = a.field()
    assert checked >= 8 and not a.graph.unknown_ops
    assert f.is_global and f.output_size == (SIDE // PATCH,) * 2
    assert f.local_rf == (PATCH, PATCH) and f.local_jump == (PATCH, PATCH)


@pytest.mark.parametrize("registers", [0, 3])
def test_the_class_token_is_one_global_unit(registers):
    torch.manual_seed(0)
    model = TinyViT(registers=registers, out="cls")
    a = rfield.analyze(model, (SIDE, SIDE))
    f = a.field()
    assert not a.graph.unknown_ops and f.is_global and f.output_size == (1, 1)
    # back-propagation: the class token's output depends on every pixel
    x = torch.rand(1, 3, SIDE, SIDE, requires_grad=True)
    model(x).sum().backward()
    assert bool((x.grad.abs().sum(1) > 0).all())


@pytest.mark.parametrize("blocks", [0, 1])
def test_halves_side_by_side_keep_their_positions(blocks):
    """rotate_half (EVA, DINOv3): a concat along channels of tensors holding the same
    tokens, measured unit by unit."""
    torch.manual_seed(0)
    model = TinyViT(blocks=blocks, registers=1, rotate=True)
    a, checked = check_model(model, (SIDE, SIDE), modules=[""], units_per_axis=UNITS,
                             exact=True)
    assert checked >= 8 and not a.graph.unknown_ops
    assert a.field().local_rf == (PATCH, PATCH)


@pytest.mark.parametrize("blocks", [0, 2])
def test_token_outputs_are_measured_unit_by_unit(blocks):
    """A module returning tokens (class and register tokens before the patches) is
    measured where each unit's token is: before attention its patch exactly, after
    it the whole input."""
    torch.manual_seed(0)
    model = TinyViT(blocks=blocks, registers=2, order="between")
    a = rfield.analyze(model, (SIDE, SIDE))
    assert a.graph.alias_layouts["norm"][1].before == 3
    modules = ["norm"] + [f"blocks.{i}" for i in range(blocks)]
    a, checked = check_model(model, (SIDE, SIDE), modules=modules, units_per_axis=UNITS,
                             exact=True)
    assert checked >= 8 * len(modules)
    assert a.fields[a.graph.aliases["norm"]].is_global == bool(blocks)


def test_a_class_token_read_before_any_attention_is_a_constant():
    """x[:, 0] before the blocks reads no position: nothing of the input."""
    torch.manual_seed(0)
    model = TinyViT(blocks=0, out="cls")
    a = rfield.analyze(model, (SIDE, SIDE))
    assert not a.graph.unknown_ops
    assert "head" not in a.graph.aliases  # a constant: no node depends on the input


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3), st.integers(1, 6), st.integers(0, 3), st.integers(-12, 12),
       st.integers(-12, 12), st.integers(1, 2))
def test_a_cut_of_the_token_dim_says_what_it_keeps(before, grid, after, start, stop, step):
    """Against numpy: label each element (-1 an extra token, else its patch) and
    slice the labels."""
    tokens = K.Tokens(0, before, after)
    parts = ((0, 1, grid),)
    labels = np.array([-1] * before + list(range(grid)) + [-1] * after)
    kept = labels[start:stop:step]
    got = K.cut(tokens, parts, start, stop, step)
    patches = kept[kept >= 0]
    if got is None:  # refused: some patches cut off, or a step over the token dim
        assert step != 1 or 0 < patches.size < grid or not kept.size
        return
    whole, left = got
    assert step == 1 and whole == (patches.size == grid) and patches.size in (0, grid)
    if whole:
        assert list(patches) == list(range(grid))
        first = int(np.argmax(kept >= 0))
        assert ((left.before, left.after) if left else (0, 0)) == \
            (first, kept.size - first - grid)


def test_a_slice_that_keeps_every_token_is_no_cut():
    """SigLIP-style pooling without a class token: x[:, 0:].mean(1) reads every patch."""
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, DIM, PATCH, PATCH)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            return x[:, 0:].mean(dim=1)

    a = rfield.analyze(Pooled(), (SIDE, SIDE))
    assert not a.graph.unknown_ops and a.field().is_global
    assert a.fields["patch"].rf == (PATCH, PATCH)


def test_torchvisions_vit_is_a_token_grid():
    """torchvision's ViT attends through nn.MultiheadAttention: a 14 x 14 grid of
    patches, global after the first block, local field and jump 16."""
    tv = pytest.importorskip("torchvision")
    a = rfield.analyze(tv.models.vit_b_16(), (224, 224))
    assert not a.graph.unknown_ops
    f = a.field(a.graph.aliases["encoder.layers.encoder_layer_1"])
    assert f.is_global and f.output_size == (14, 14)
    assert f.local_rf == (16, 16) and f.local_jump == (16, 16)


@pytest.mark.parametrize("name", ["vit_base_patch16_224", "deit_base_distilled_patch16_224",
                                  "vit_small_patch14_reg4_dinov2", "cait_xxs24_224",
                                  "vit_base_patch16_siglip_224"])
def test_timm_vits_are_token_grids(name):
    """The answer a ViT user wants: a grid of patches (plus its tokens), global after
    the first attention, local field and jump one patch."""
    timm = pytest.importorskip("timm")
    model = timm.create_model(name, pretrained=False)
    size = tuple(model.pretrained_cfg["input_size"][1:])
    patch = model.patch_embed.patch_size[0]
    a = rfield.analyze(model, size)
    assert not a.graph.unknown_ops
    f = a.field(a.graph.aliases["blocks.1"])
    assert f.is_global and f.output_size == (size[0] // patch,) * 2
    assert f.local_rf == (patch, patch) and f.local_jump == (patch, patch)


@pytest.mark.parametrize("options", [{}, {"registers": 2, "order": "between"},
                                     {"out": "cls"}], ids=["cls", "dinov2", "head"])
def test_the_onnx_export_reads_as_the_module(tmp_path, options):
    """torch's exporter writes the class token as a constant of the Concat, x[:, 1:]
    as Slice and x[:, 0] as Gather: the same fields as the module's."""
    pytest.importorskip("onnx")
    import warnings

    torch.manual_seed(0)
    model = TinyViT(attn="matmul", **options).eval()
    path = tmp_path / "vit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, SIDE, SIDE), str(path), dynamo=False,
                          opset_version=17)
    got, want = rfield.analyze(str(path)), rfield.analyze(model, (SIDE, SIDE))
    assert not got.graph.unknown_ops and not want.graph.unknown_ops
    f, g = got.field(), want.field()
    assert (f.is_global, f.output_size, f.local_rf, f.local_jump) == \
        (g.is_global, g.output_size, g.local_rf, g.local_jump)


class TinyDPT(nn.Module):
    """DPT's neck on a TinyViT: the tokens of two blocks, each with the class token
    read out into every patch (``readout``: "ignore" drops it, "add" adds it, "project"
    concatenates it along channels and projects, as DPT's ProjectReadout), the grid
    reshaped back to a map and resampled to two scales (a transposed conv up, a
    strided conv down), then fused: the coarse map upsampled and added to the fine."""

    def __init__(self, readout: str = "project"):
        super().__init__()
        self.vit = TinyViT(blocks=2, registers=0)
        self.readout = readout
        self.project = nn.ModuleList(nn.Linear(2 * DIM, DIM) for _ in range(2))
        self.up = nn.ConvTranspose2d(DIM, DIM, 2, stride=2)
        self.down = nn.Conv2d(DIM, DIM, 3, stride=2, padding=1)
        self.fuse = nn.Conv2d(DIM, 4, 3, padding=1)

    def _reassemble(self, x, i, h, w):
        cls, grid = x[:, :1], x[:, 1:]
        if self.readout == "project":
            grid = F.gelu(self.project[i](torch.cat([grid, cls.expand_as(grid)], dim=-1)))
        elif self.readout == "add":
            grid = grid + cls
        return grid.transpose(1, 2).reshape(x.shape[0], DIM, h, w)

    def forward(self, x):
        v = self.vit
        b = x.shape[0]
        x = v.patch(x)
        h, w = x.shape[2:]
        x = torch.cat([v.cls.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1) + v.pos
        taps = []
        for block in v.blocks:
            x = block(x)
            taps.append(x)
        fine = self.up(self._reassemble(taps[0], 0, h, w))
        coarse = self.down(self._reassemble(taps[1], 1, h, w))
        return self.fuse(fine + F.interpolate(coarse, scale_factor=4, mode="nearest"))


@pytest.mark.parametrize("readout", ["ignore", "add", "project"])
def test_a_dpt_style_reassemble_is_measured_unit_by_unit(readout):
    """The maps DPT's neck builds from tokens (after attention: global, each unit's
    local field its patch grown by the resampling and fusion convs) against
    back-propagation unit by unit, for each way of reading out the class token."""
    torch.manual_seed(0)
    model = TinyDPT(readout)
    a, checked = check_model(model, (SIDE, SIDE), modules=["", "up", "down"],
                             units_per_axis=("centre", 0, -1, 1, 2), exact=True)
    assert checked >= 12 and not a.graph.unknown_ops
    f = a.field()
    assert f.is_global and f.output_size == (2 * SIDE // PATCH,) * 2
    up, down = a.field("up"), a.field("down")
    # a transposed conv as wide as its stride: one token a unit, at half a patch's step
    assert up.local_rf == (PATCH,) * 2 and up.local_jump == (PATCH // 2,) * 2
    assert down.local_jump == (2 * PATCH,) * 2 and down.local_rf == (3 * PATCH,) * 2


class PaddedTokens(nn.Module):
    """Pads on tokens: CoaT's empty class-token slot put before the grid (a zero
    token), EfficientViT's ones appended to each token's values; then the grid
    without its class token back to a map and a 3 x 3 conv."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM))
        self.conv = nn.Conv2d(DIM + 2, 4, 3, padding=1)

    def forward(self, x):
        b = x.shape[0]
        x = self.patch(x)
        h, w = x.shape[2:]
        tokens = x.flatten(2).transpose(1, 2)
        y = torch.cat([self.cls.expand(b, -1, -1), tokens], 1) + F.pad(tokens * 2.0,
                                                                        (0, 0, 1, 0))
        y = F.pad(y, (0, 2), value=1.0)
        return self.conv(y[:, 1:].transpose(1, 2).reshape(b, DIM + 2, h, w))


class WrittenGrid(nn.Module):
    """``z[:, start:] = ...`` on tokens, as MViTv2 adds relative positions to the
    patches' attention and not the class token's: ``start`` 1 writes the grid whole,
    2 cuts into it (not followed)."""

    def __init__(self, start: int):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM))
        self.lin = nn.Linear(DIM, DIM)
        self.conv = nn.Conv2d(DIM, 4, 3, padding=1)
        self.start = start

    def forward(self, x):
        b = x.shape[0]
        x = self.patch(x)
        h, w = x.shape[2:]
        tokens = x.flatten(2).transpose(1, 2)
        y = torch.cat([self.cls.expand(b, -1, -1), tokens], 1)
        z = y.clone()
        z[:, self.start:] = self.lin(y[:, self.start:]) * 2.0
        return self.conv(z[:, 1:].transpose(1, 2).reshape(b, DIM, h, w))


@pytest.mark.parametrize("start", [1, 2])
def test_a_write_to_the_grid_beside_a_class_token(start):
    torch.manual_seed(0)
    a, checked = check_model(WrittenGrid(start), (SIDE, SIDE), modules=[""],
                             units_per_axis=UNITS, exact=start == 1)
    assert checked >= 8
    if start == 1:
        assert not a.graph.unknown_ops and a.field().rf == (3 * PATCH, 3 * PATCH)
    else:  # y[:, 2:] is a cut into the grid too
        assert dict(a.graph.unknown_ops) == {"__setitem__ into a spatial dim": 1,
                                             "indexing a spatial dim": 1}


class EmptyPrefix(nn.Module):
    """timm's rotary embedding with no prefix token (Qwen3, DeepSeek ViTs):
    ``cat([x[:, :0], rotate(x[:, 0:])])``, an empty slice beside the grid."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.conv = nn.Conv2d(DIM, 4, 3, padding=1)

    def forward(self, x):
        x = self.patch(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = torch.cat([t[:, :0], torch.cat([-t[..., c // 2:], t[..., :c // 2]], -1)], dim=1)
        return self.conv(t.transpose(1, 2).reshape(b, c, h, w))


@pytest.mark.parametrize("model", [PaddedTokens, EmptyPrefix],
                         ids=["pads-on-tokens", "empty-slice-beside-the-grid"])
def test_tokens_grown_or_kept_beside_the_grid_keep_its_field(model):
    """Pads on tokens add tokens or values, an empty slice adds nothing: the grid
    back to a map has the patch and the 3 x 3 conv as its field, unit by unit."""
    torch.manual_seed(0)
    a, checked = check_model(model(), (SIDE, SIDE), modules=[""], units_per_axis=UNITS,
                             exact=True)
    assert checked >= 8 and not a.graph.unknown_ops
    assert a.field().rf == (3 * PATCH, 3 * PATCH) and not a.field().is_global
