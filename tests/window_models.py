"""Hand-made window attention (Swin's and MaxViT's), written in plain PyTorch the way
their libraries write it: views and permutes that split the map into windows, a
product of queries and keys, a softmax, a product with values, the views back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def partition(x, w):
    """(B, H, W, C) -> (B * windows, w * w, C): windows of w x w."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def reverse(x, w, h, wd):
    c = x.shape[-1]
    x = x.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


def grid_partition(x, g):
    """MaxViT's grid: g x g tokens spread over the map (stride H / g) attend together."""
    b, h, wd, c = x.shape
    x = x.view(b, g, h // g, g, wd // g, c).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, g * g, c)


def grid_reverse(x, g, h, wd):
    c = x.shape[-1]
    x = x.view(-1, h // g, wd // g, g, g, c).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(-1, h, wd, c)


class Attention(nn.Module):
    def __init__(self, dim: int, fused: bool | str) -> None:
        super().__init__()
        self.qkv, self.proj, self.fused = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), fused
        self.heads = 2

    def forward(self, x, mask=None):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.fused == "einsum":  # torchvision's ways: indexing, cosine attention, einsum
            q, k, v = F.normalize(qkv[0], dim=-1), F.normalize(qkv[1], dim=-1), qkv[2]
            attn = torch.einsum("bhid,bhjd->bhij", q, k)
            if mask is not None:
                attn = attn + mask
            x = torch.einsum("bhij,bhjd->bhid", attn.softmax(-1), v)
            return self.proj(x.transpose(1, 2).reshape(b, n, c))
        q, k, v = qkv.unbind(0)
        if self.fused:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            attn = (q * 0.5) @ k.transpose(-2, -1)
            if mask is not None:
                attn = attn + mask
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """A Swin block: (shifted) window attention, then an MLP over tokens."""

    def __init__(self, dim: int, window: int, shift: int, fused: bool | str = False,
                 grid: bool = False) -> None:
        super().__init__()
        self.window, self.shift, self.grid = window, shift, grid
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, fused)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):  # (B, H, W, C)
        b, h, w, c = x.shape
        y = self.norm(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        if self.grid:
            y = grid_reverse(self.attn(grid_partition(y, self.window)), self.window, h, w)
        else:
            mask = None
            if self.shift:  # Swin's mask: windows that wrap around do not mix
                mask = torch.zeros(self.window ** 2, self.window ** 2)
                mask[0, -1] = -100.0
            y = reverse(self.attn(partition(y, self.window), mask), self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        t = x.reshape(b, -1, c)  # tokens for the MLP, then back to the map
        return (t + self.mlp(t)).reshape(b, h, w, c)


class Merge(nn.Module):
    """Swin's patch merging: 2 x 2 neighbours into channels, a norm, a linear."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm, self.reduction = nn.LayerNorm(4 * dim), nn.Linear(4 * dim, 2 * dim)

    def forward(self, x):
        b, h, w, c = x.shape
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class Swin(nn.Module):
    def __init__(self, window: int = 4, fused: bool | str = False, grid: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, stride=2)
        self.blocks = nn.Sequential(Block(8, window, 0, fused),
                                    Block(8, window, window // 2, fused),
                                    Merge(8), Block(16, 2, 0, fused, grid=grid))
        self.head = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        x = self.blocks(self.stem(x).permute(0, 2, 3, 1))
        return self.head(x.permute(0, 3, 1, 2))


class TokenMixer(nn.Module):
    """A linear over all tokens (MLP-Mixer): every output reads every position."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 4, stride=4)
        self.mix = nn.Linear(64, 64)
        self.head = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        t = self.mix(x.flatten(2))  # (B, C, tokens): a linear over the tokens
        return self.head(t.view(b, c, h, w))


class PatchMix(nn.Module):
    """MobileViT's block: a local conv, then attention over all patches at one offset
    inside the patch (p x p), folded back and fused with the block's input."""

    def __init__(self, dim: int = 8, patch: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Conv2d(dim, dim, 3, padding=1)
        self.attn = Attention(dim, False)
        self.fusion = nn.Conv2d(2 * dim, dim, 3, padding=1)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.patch
        y = self.local(x).reshape(b, c, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1)
        t = self.attn(y.reshape(b * p * p, (h // p) * (w // p), c))
        y = t.reshape(b, p, p, h // p, w // p, c).permute(0, 5, 3, 1, 4, 2).reshape(b, c, h, w)
        return self.fusion(torch.cat([x, y], 1))


class MobileViTLike(nn.Module):
    def __init__(self, patch: int = 2) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.block = PatchMix(8, patch)
        self.head = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.head(self.block(self.down(self.stem(x))))


class LinearPatchMix(nn.Module):
    """MobileViTv2's block: positions as (offsets in a p x p patch, patches), a
    one-channel query's softmax over the patches, the keys summed over them (a
    context per offset), broadcast back over the patches onto the values."""

    def __init__(self, dim: int = 8, patch: int = 2, local: int = 3) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Conv2d(dim, dim, local, padding=local // 2)
        self.qkv = nn.Conv2d(dim, 1 + 2 * dim, 1)
        self.out = nn.Conv2d(dim, dim, 1)
        self.fusion = nn.Conv2d(2 * dim, dim, 3, padding=1)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.patch
        y = self.local(x).reshape(b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4)
        y = y.reshape(b, c, p * p, (h // p) * (w // p))
        q, k, v = self.qkv(y).split([1, c, c], dim=1)
        context = (k * q.softmax(dim=-1)).sum(dim=-1, keepdim=True)
        t = self.out(torch.relu(v) * context.expand_as(v))
        t = t.reshape(b, c, p, p, h // p, w // p).permute(0, 1, 4, 2, 5, 3).reshape(b, c, h, w)
        return self.fusion(torch.cat([x, t], 1))


class MobileViTv2Like(nn.Module):
    def __init__(self, patch: int = 2, local: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.block = LinearPatchMix(8, patch, local)
        self.head = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


class PooledQueries(nn.Module):
    """Hiera's mask-unit attention: 4 x 4 windows of tokens ordered so that each 2 x 2
    block's digits come first; the queries pooled over them (a mean here, Hiera's max
    measures only its winner), the keys and values whole; the pooled map back."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 3, padding=1)
        self.head = nn.Conv2d(dim, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        t = x.view(b, c, h // 4, 2, 2, w // 4, 2, 2).permute(0, 1, 2, 5, 4, 7, 3, 6)
        t = t.reshape(b, c, (h // 4) * (w // 4), 16).transpose(1, 3).transpose(1, 2)
        q = t.view(b, -1, 4, 4, c).mean(2)  # (b, windows, 4, c)
        y = F.scaled_dot_product_attention(q, t, t)
        y = y.view(b, h // 4, w // 4, 2, 2, c).permute(0, 5, 1, 3, 2, 4)
        return self.head(y.reshape(b, c, h // 2, w // 2))
