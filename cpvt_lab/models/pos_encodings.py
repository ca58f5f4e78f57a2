"""Position encodings as plug-ins.

Every strategy is a small module with four hooks that the ViT calls at fixed
places, so the ViT never needs to know which strategy it holds:

- ``on_tokens(x, grid)``: once, on the token sequence (prefix tokens first)
  right after patch embedding, before block 0;
- ``attn_bias(i, grid)``: an additive bias for the attention logits of block i
  (or None, which keeps SDPA on its fastest kernel);
- ``attn_rope(i, grid)``: a rotary embedding that block i's attention applies to
  the queries and keys of the patch tokens (or None; see ``rope.py``);
- ``after_block(i, x, grid)``: on the tokens leaving block i.

``grid`` is the (rows, cols) patch grid of the current input, so every
strategy that can works at any resolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import build_sincos2d_pos_embed, resample_abs_pos_embed, trunc_normal_

GridShape = tuple[int, int]


@dataclass(frozen=True)
class Geometry:
    """What a position encoding may need to know about the ViT it plugs into."""
    dim: int
    depth: int
    num_heads: int
    grid: GridShape  # patch grid at the training resolution
    num_prefix_tokens: int  # 1 with a class token, 0 without


class PositionEncoding(nn.Module):
    """No position information at all (the paper's "none"); base of all others."""

    def on_tokens(self, x: torch.Tensor, grid: GridShape) -> torch.Tensor:
        return x

    def attn_bias(self, index: int, grid: GridShape) -> Optional[torch.Tensor]:
        return None

    def attn_rope(self, index: int, grid: GridShape) -> Optional[torch.Tensor]:
        return None

    def after_block(self, index: int, x: torch.Tensor, grid: GridShape) -> torch.Tensor:
        return x


class LearnedPositionEncoding(PositionEncoding):
    """DeiT's absolute table, class token included; bicubically resampled to other grids."""

    def __init__(self, geometry: Geometry):
        super().__init__()
        self.grid = geometry.grid
        self.num_prefix_tokens = geometry.num_prefix_tokens
        length = geometry.grid[0] * geometry.grid[1] + geometry.num_prefix_tokens
        self.table = nn.Parameter(torch.zeros(1, length, geometry.dim))
        trunc_normal_(self.table, std=0.02)

    def on_tokens(self, x, grid):
        table = resample_abs_pos_embed(
            self.table, new_size=list(grid), old_size=list(self.grid),
            num_prefix_tokens=self.num_prefix_tokens)
        return x + table


class SinCosPositionEncoding(PositionEncoding):
    """Fixed 2-D sin-cos on the patch tokens, rebuilt for every grid; prefix tokens get none."""

    def __init__(self, geometry: Geometry, temperature: float = 10000.0):
        super().__init__()
        if geometry.dim % 4:
            raise ValueError(f"sincos needs an embedding dim divisible by 4, got {geometry.dim}")
        self.dim = geometry.dim
        self.temperature = temperature

    def on_tokens(self, x, grid):
        table = build_sincos2d_pos_embed(
            list(grid), dim=self.dim, temperature=self.temperature, device=x.device, dtype=x.dtype)
        prefix = x.shape[1] - table.shape[0]
        return torch.cat([x[:, :prefix], x[:, prefix:] + table], dim=1)


class RelativePositionBias(PositionEncoding):
    """2-D relative position bias per block and head, added to the attention logits.

    Offsets are clipped at ``max_distance`` patches in each direction, so one
    table of (2D+1)^2 entries serves any grid. Prefix tokens get zero bias.
    """

    def __init__(self, geometry: Geometry, max_distance: int = 7):
        super().__init__()
        if max_distance < 1:
            raise ValueError(f"relative max_distance must be >= 1, got {max_distance}")
        self.max_distance = max_distance
        self.num_prefix_tokens = geometry.num_prefix_tokens
        side = 2 * max_distance + 1
        self.table = nn.Parameter(torch.zeros(geometry.depth, geometry.num_heads, side * side))
        trunc_normal_(self.table, std=0.02)

    def relative_index(self, grid: GridShape, device) -> torch.Tensor:
        rows, cols = torch.meshgrid(
            torch.arange(grid[0], device=device), torch.arange(grid[1], device=device), indexing="ij")
        coords = torch.stack([rows.flatten(), cols.flatten()])  # 2, N
        offset = (coords[:, :, None] - coords[:, None, :]).clamp(-self.max_distance, self.max_distance)
        offset = offset + self.max_distance
        return offset[0] * (2 * self.max_distance + 1) + offset[1]  # N, N

    def attn_bias(self, index, grid):
        bias = self.table[index][:, self.relative_index(grid, self.table.device)]  # heads, N, N
        p = self.num_prefix_tokens
        return F.pad(bias, (p, 0, p, 0)).unsqueeze(0)  # 1, heads, p+N, p+N


class GridResidual(nn.Module):
    """Runs a function F over the patch tokens laid out on their grid and adds the result.

    Prefix tokens (the class token) bypass F and are concatenated back unchanged.
    """

    def __init__(self, fn: nn.Module, num_prefix_tokens: int):
        super().__init__()
        self.fn = fn
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: torch.Tensor, grid: GridShape) -> torch.Tensor:
        prefix, tokens = x[:, :self.num_prefix_tokens], x[:, self.num_prefix_tokens:]
        b, n, c = tokens.shape
        feat = tokens.transpose(1, 2).reshape(b, c, grid[0], grid[1])
        out = self.fn(feat)
        if out.shape[-2:] != feat.shape[-2:]:
            # a valid (unpadded) convolution shrinks the grid: border tokens get no update
            dh, dw = feat.shape[-2] - out.shape[-2], feat.shape[-1] - out.shape[-1]
            out = F.pad(out, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        tokens = (feat + out).flatten(2).transpose(1, 2)
        return torch.cat([prefix, tokens], dim=1)


class GeneratedPositionEncoding(PositionEncoding):
    """Position encodings generated from the tokens themselves at chosen positions.

    Position -1 acts on the patch embeddings before block 0; position i acts on
    the output of block i. This is the PEG slot; the 1x1-conv control uses it too.
    """

    def __init__(self, geometry: Geometry, positions: Sequence[int],
                 make_fn: Callable[[], nn.Module], frozen: bool = False):
        super().__init__()
        positions = sorted(set(int(p) for p in positions))
        if not positions:
            raise ValueError("positions must name at least one slot (-1 .. depth-1)")
        bad = [p for p in positions if not -1 <= p < geometry.depth]
        if bad:
            raise ValueError(f"positions {bad} outside -1 .. {geometry.depth - 1} for a {geometry.depth}-block model")
        self.generators = nn.ModuleDict(
            {str(p): GridResidual(make_fn(), geometry.num_prefix_tokens) for p in positions})
        if frozen:
            self.requires_grad_(False)

    def on_tokens(self, x, grid):
        return self.after_block(-1, x, grid)

    def after_block(self, index, x, grid):
        generator = self.generators[str(index)] if str(index) in self.generators else None
        return x if generator is None else generator(x, grid)


PADDINGS = ("zeros", "none", "circular")
PEG_KINDS = ("depthwise", "separable", "full")


def peg_conv(dim: int, kernel: int, padding: str, kind: str) -> nn.Module:
    """The PEG's function F: a k x k convolution over the token grid (depth-wise by default)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"PEG kernel must be odd and >= 1, got {kernel}")
    if padding not in PADDINGS:
        raise ValueError(f"PEG padding must be one of {PADDINGS}, got {padding!r}")
    if kind not in PEG_KINDS:
        raise ValueError(f"PEG kind must be one of {PEG_KINDS}, got {kind!r}")
    pad = 0 if padding == "none" else kernel // 2
    mode = "circular" if padding == "circular" else "zeros"

    def conv(k, groups, bias=True, p=pad):
        layer = nn.Conv2d(dim, dim, k, 1, p, groups=groups, bias=bias, padding_mode=mode)
        # the official initialisation: N(0, sqrt(2 / fan_out)), zero bias
        fan_out = k * k * dim // groups
        nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / fan_out))
        if bias:
            nn.init.zeros_(layer.bias)
        return layer

    if kind == "depthwise":
        return conv(kernel, groups=dim)
    if kind == "full":
        return conv(kernel, groups=1)
    return nn.Sequential(conv(kernel, groups=dim, bias=False), conv(1, groups=1, p=0))


def conv1x1_stack(dim: int, layers: int) -> nn.Module:
    """The paper's control: many parameters at the PEG slot, but no neighbourhood.

    GELU between the 1x1 convs keeps the stack from collapsing into one linear map.
    """
    if layers < 1:
        raise ValueError(f"conv1x1_stack layers must be >= 1, got {layers}")
    parts: list[nn.Module] = []
    for i in range(layers):
        parts.append(nn.Conv2d(dim, dim, 1))
        if i < layers - 1:
            parts.append(nn.GELU())
    return nn.Sequential(*parts)


def _peg(g: Geometry, positions=(0,), kernel=3, padding="zeros", kind="depthwise", frozen=False):
    return GeneratedPositionEncoding(g, positions, lambda: peg_conv(g.dim, kernel, padding, kind), frozen)


def _conv1x1_stack(g: Geometry, positions=(0,), layers=12):
    return GeneratedPositionEncoding(g, positions, lambda: conv1x1_stack(g.dim, layers))


# name -> factory(geometry, **options). "interpolated" is the learned table; the
# runner fine-tunes it at each larger evaluation resolution.
POSITION_ENCODINGS: dict[str, Callable[..., PositionEncoding]] = {
    "none": lambda g: PositionEncoding(),
    "learned": LearnedPositionEncoding,
    "interpolated": LearnedPositionEncoding,
    "sincos": SinCosPositionEncoding,
    "relative": RelativePositionBias,
    "peg": _peg,
    "conv1x1_stack": _conv1x1_stack,
}


def build_position_encoding(name: str, geometry: Geometry, **options) -> PositionEncoding:
    if name not in POSITION_ENCODINGS:
        raise ValueError(f"unknown position encoding {name!r}; choose one of {sorted(POSITION_ENCODINGS)}")
    try:
        return POSITION_ENCODINGS[name](geometry, **options)
    except TypeError as err:  # an option the strategy does not take
        raise ValueError(f"position encoding {name!r}: {err}") from None
