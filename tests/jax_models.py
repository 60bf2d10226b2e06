"""Hand-made Flax (linen and NNX) networks and JAX functions covering each primitive the
JAX front-end reads; each returns the maps worth checking, so that the measurement
reads them as returned values, independently of module naming."""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx


class Windows(nn.Module):
    """SAME at stride 2 (odd and even sizes), dilation, explicit and VALID padding,
    max and average pooling, a 1 x 1 shortcut and a skip add."""

    @nn.compact
    def __call__(self, x):
        a = nn.Conv(4, (3, 3), strides=2, padding="SAME")(x)
        b = nn.Conv(4, (3, 3), kernel_dilation=2, padding=[(1, 3), (2, 2)])(a)
        c = nn.max_pool(nn.relu(b), (3, 3), strides=(2, 2), padding="SAME")
        d = nn.avg_pool(c, (2, 2), strides=(1, 1), padding="VALID")
        e = nn.Conv(4, (4, 4), strides=2, padding="SAME")(d)
        f = e + nn.Conv(4, (1, 1), strides=2)(d)
        return a, b, c, d, f


class Transposed(nn.Module):
    """Flax ConvTranspose (lhs_dilation): SAME, VALID, kernel 3 and 4, stride 2 and 3."""

    @nn.compact
    def __call__(self, x):
        a = nn.ConvTranspose(4, (3, 3), strides=(2, 2), padding="SAME")(x)
        b = nn.ConvTranspose(4, (4, 4), strides=(2, 2), padding="VALID")(a)
        c = nn.ConvTranspose(4, (3, 3), strides=(3, 3), padding="SAME",
                             kernel_dilation=(1, 2))(x)
        return a, b, c


class Merges(nn.Module):
    """A concat along channels, a squeeze-and-excitation gate, a Dense over channels."""

    @nn.compact
    def __call__(self, x):
        a = nn.Conv(4, (3, 3), strides=2)(x)
        b = nn.Conv(4, (5, 5), strides=2)(x)
        cat = jnp.concatenate([a, b], axis=-1)
        gate = nn.sigmoid(nn.Dense(8)(jnp.mean(cat, axis=(1, 2), keepdims=True)))
        gated = nn.Conv(4, (3, 3))(cat * gate)
        return cat, nn.Dense(3)(a), gated


class Resizes(nn.Module):
    """jax.image.resize: bilinear up and down (antialiased), nearest up and down,
    bicubic up."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3, 3), strides=2)(x)
        n, h, w, c = y.shape
        up = jax.image.resize(y, (n, 2 * h, 2 * w, c), "bilinear")
        down = jax.image.resize(y, (n, h // 2, w // 2, c), "bilinear")
        near = jax.image.resize(y, (n, 2 * h, 2 * w, c), "nearest")
        shrink = jax.image.resize(y, (n, h // 2, w // 2, c), "nearest")
        cubic = jax.image.resize(y, (n, 4 * h, 4 * w, c), "bicubic")
        return up, down, near, shrink, nn.Conv(4, (3, 3))(cubic)


class Moves(nn.Module):
    """Padding, slicing with a step, a constant dynamic slice, constant gathers, a flip
    of channels, transposes and reshapes that keep the grid."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3, 3))(jnp.pad(x, ((0, 0), (2, 1), (0, 3), (0, 0))))
        a = y[:, 1:-1:2, ::3]
        b = jax.lax.dynamic_slice(y, (0, 2, 1, 0), (1, 6, 5, 4))
        c = y[:, jnp.arange(1, 9, 2)][..., ::-1]
        t = jnp.transpose(y, (0, 3, 1, 2)).reshape(1, 2, 2, *y.shape[1:3])
        d = nn.Conv(4, (3, 3))(jnp.transpose(t.reshape(1, 4, *y.shape[1:3]), (0, 2, 3, 1)))
        return a, b, c, d


class Branches(nn.Module):
    """``lax.cond`` on an image-dependent predicate (the union of both branches and a
    global path) and on a constant one (its branch alone)."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3, 3))(x)
        wide = lambda v: nn.avg_pool(v, (5, 1), padding="SAME")
        narrow = lambda v: nn.max_pool(v, (3, 3), padding="SAME")
        picked = jax.lax.cond(jnp.mean(y) > 0, wide, narrow, y)
        fixed = jax.lax.cond(True, wide, narrow, y)
        return picked, nn.Conv(4, (3, 3))(fixed)


class Causal1D(nn.Module):
    """1-D: causal dilated convolutions with a residual (a TCN)."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3,), padding="CAUSAL")(x)
        for d in (2, 4):
            y = y + nn.Conv(4, (3,), kernel_dilation=d, padding="CAUSAL")(nn.relu(y))
        return y


class Video3D(nn.Module):
    """3-D convolution and pooling."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3, 3, 3), strides=(1, 2, 2), padding="SAME")(x)
        return nn.max_pool(y, (2, 2, 2), strides=(2, 2, 2))


class Norms(nn.Module):
    """A small U-Net: GroupNorm (statistics over positions: global, the local field
    beside), LayerNorm over channels (pointwise), a transposed conv and a skip concat."""

    group_norm: bool = True

    @nn.compact
    def __call__(self, x):
        a = nn.Conv(8, (3, 3))(x)
        a = nn.relu(nn.GroupNorm(2)(a) if self.group_norm else a)
        b = nn.LayerNorm()(nn.Conv(8, (3, 3), strides=2)(a))
        c = nn.ConvTranspose(8, (2, 2), strides=(2, 2))(b)
        return b, nn.Conv(8, (3, 3))(jnp.concatenate([a, c], -1))


class TinyViT(nn.Module):
    """A Flax ViT the way big_vision writes one: patches, a class token concatenated
    before them, position embeddings, ``blocks`` blocks of attention, and the patches
    (x[:, 1:]) reshaped back to a map; with ``cls``, the class token returned too."""

    blocks: int = 1
    cls: bool = False

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(16, (4, 4), strides=4, padding="VALID")(x)
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c)
        token = self.param("cls", nn.initializers.normal(1.0), (1, 1, c))
        x = jnp.concatenate([jnp.tile(token, (b, 1, 1)), x], axis=1)
        x = x + self.param("pos", nn.initializers.normal(1.0), (1, h * w + 1, c))
        for _ in range(self.blocks):
            x = x + nn.MultiHeadDotProductAttention(num_heads=2)(nn.LayerNorm()(x))
            x = x + nn.Dense(c)(nn.gelu(nn.Dense(2 * c)(nn.LayerNorm()(x))))
        grid = x[:, 1:].reshape(b, h, w, c)
        return (grid, x[:, 0]) if self.cls else grid


def equinox_net():
    """An Equinox network (NCHW, vmapped over the batch), as a function of an image."""
    import equinox as eqx

    key = jax.random.key(0)
    net = eqx.nn.Sequential([
        eqx.nn.Conv2d(3, 4, 3, stride=2, padding=1, key=key), eqx.nn.Lambda(jax.nn.relu),
        eqx.nn.MaxPool2d(3, stride=2), eqx.nn.Conv2d(4, 4, 3, dilation=2, key=key)])
    return lambda x: jax.vmap(net)(x)


# --------------------------------------------------------------------------- ResNet-18

class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions and a shortcut, projected when the shape changes: the
    block of Flax's ImageNet example (written here, with its module names)."""

    filters: int
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        conv = partial(nn.Conv, use_bias=False)
        norm = partial(nn.BatchNorm, use_running_average=True)
        y = nn.relu(norm()(conv(self.filters, (3, 3), self.strides)(x)))
        y = norm()(conv(self.filters, (3, 3))(y))
        if x.shape != y.shape:
            x = norm(name="norm_proj")(conv(self.filters, (1, 1), self.strides,
                                            name="conv_proj")(x))
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """ResNet-18 as Flax's ImageNet example builds it: a 7 x 7 stem with explicit
    padding 3, SAME max pooling, four stages of two blocks, mean and Dense."""

    num_classes: int = 1000

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False,
                    name="conv_init")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=True, name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for stage in range(4):
            for block in range(2):
                strides = (2, 2) if stage > 0 and block == 0 else (1, 1)
                x = BasicBlock(64 * 2 ** stage, strides)(x)
        return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


# --------------------------------------------------------------------------- NNX

class NnxNet(nnx.Module):
    """An NNX network: convolutions, pooling, a transposed conv, a skip add."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.stem = nnx.Conv(3, 4, (3, 3), strides=2, padding="SAME", rngs=rngs)
        self.body = NnxBlock(rngs)
        self.up = nnx.ConvTranspose(4, 4, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)

    def __call__(self, x):
        y = self.body(nnx.relu(self.stem(x)))
        return y, self.up(y)


class NnxBlock(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(4, 4, (3, 3), kernel_dilation=2, padding="SAME", rngs=rngs)

    def __call__(self, x):
        pooled = nnx.max_pool(x, (2, 2), strides=(2, 2))
        return pooled + nnx.avg_pool(self.conv(x), (2, 2), strides=(2, 2))


def nnx_net() -> NnxNet:
    return NnxNet(nnx.Rngs(0))


def plain_function(x):
    """A JAX function of an image with no module at all (NCHW)."""
    w = jnp.ones((4, 3, 3, 3))
    y = jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", rhs_dilation=(1, 2))
    return jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 1, 3, 3), (1, 1, 2, 2),
                                 "VALID")


LINEN = {"windows": Windows, "transposed": Transposed, "merges": Merges,
         "resizes": Resizes, "moves": Moves, "branches": Branches, "norms": Norms}
