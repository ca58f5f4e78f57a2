"""Rotary position embeddings (RoPE) as position encodings, through the ``attn_rope`` hook.

Each block's attention (timm's AttentionRope, see ``vit.RotaryBlock``) rotates the queries and
keys of the patch tokens by angles linear in the token's column and row, so a logit depends on
the two tokens' contents and on the offset between them only; prefix tokens (the class token)
stay unrotated, as in timm's EVA. The angles are laid over the grid of the input at hand, so any
test size works: a larger grid only adds larger offsets. After Heo et al., "Rotary Position
Embedding for Vision Transformer" (ECCV 2024, naver-ai/rope-vit), with its settings as timm's
``vit_*_rope_*`` models take them. timm builds the frequencies and sin/cos tables; what is here
is which table each block gets, and when a table is built.
"""
from __future__ import annotations

from typing import Callable, Hashable

import torch
from timm.layers import RotaryEmbeddingCat, RotaryEmbeddingMixed
from timm.layers.pos_embed_sincos import get_mixed_freqs, get_mixed_grid

from .pos_encodings import POSITION_ENCODINGS, Geometry, GridShape, PositionEncoding


def _head_dim(geometry: Geometry, temperature: float) -> int:
    head_dim = geometry.dim // geometry.num_heads
    if head_dim % 4:  # a pair of channels per frequency, half the pairs per axis
        raise ValueError(f"RoPE needs a head dim divisible by 4, got {head_dim}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"RoPE temperature must be a number > 0, got {temperature!r}")
    return head_dim


class GridCache:
    """Tensors that depend on the grid alone, built once per grid and device.

    They are built outside inference mode, so a table first made while evaluating serves
    training too. Under torch.compile they are built inside the graph instead (a dict of
    tensors would make dynamo guard on its contents and recompile as it fills).
    """

    def __init__(self):
        self.tables: dict[Hashable, object] = {}

    def get(self, grid: GridShape, device: torch.device, build: Callable[[], object]) -> object:
        if torch.compiler.is_compiling():
            return build()
        key = (tuple(grid), str(device))
        if key not in self.tables:
            with torch.inference_mode(False), torch.no_grad():
                self.tables[key] = build()
        return self.tables[key]


class AxialRope(PositionEncoding):
    """2-D axial RoPE with fixed frequencies (EVA's, timm's RotaryEmbeddingCat).

    Half of each head's channel pairs rotate with the column, half with the row, at
    ``head_dim / 4`` frequencies per axis spaced geometrically from 1 radian per patch down
    towards 1 / temperature. rope-vit's 100 (timm's ``vit_*_rope_224``) suits grids of tens of
    patches; EVA's 10000 is for long sequences. Positions are patch indices, not rescaled to
    the training grid, so every size has the same angle per patch. No parameters.
    """

    def __init__(self, geometry: Geometry, temperature: float = 100.0):
        super().__init__()
        head_dim = _head_dim(geometry, temperature)
        self.rope = RotaryEmbeddingCat(head_dim, temperature=temperature, in_pixels=False, grid_indexing="xy")
        self.tables = GridCache()

    def attn_rope(self, index, grid):  # the same table in every block: N, 2 * head_dim (sin, cos)
        return self.tables.get(grid, self.rope.bands.device, lambda: self.rope.get_embed(list(grid)))


class MixedRope(PositionEncoding):
    """RoPE-Mixed (Heo et al.): learned frequencies per block and head, each mixing both axes.

    Each channel pair of each head and block turns by ``f_x * column + f_y * row`` with
    ``(f_x, f_y)`` learned (timm's RotaryEmbeddingMixed, initialised at rope-vit's
    temperature 10 in a random direction per head), so a head can attend along diagonals
    that axial RoPE cannot express. The frequencies are position-encoding parameters and
    get no weight decay (``CPVTViT.no_weight_decay``, as rope-vit and timm exempt them):
    decay would pull them to 0, which is no position at all.
    """

    def __init__(self, geometry: Geometry, temperature: float = 10.0):
        super().__init__()
        _head_dim(geometry, temperature)
        self.rope = RotaryEmbeddingMixed(geometry.dim, geometry.depth, geometry.num_heads, temperature=temperature)
        self.positions = GridCache()

    def attn_rope(self, index, grid):  # block i's table: heads, N, 2 * head_dim, from its learned frequencies
        t_x, t_y = self.positions.get(grid, self.rope.freqs.device, lambda: get_mixed_grid(
            list(grid), grid_indexing=self.rope.grid_indexing, device=self.rope.freqs.device))
        return get_mixed_freqs(self.rope.freqs[:, index], t_x, t_y)


class WithRope(PositionEncoding):
    """One encoding's token and bias hooks, and a RoPE's rotation in every block (``peg_rope``)."""

    def __init__(self, encoding: PositionEncoding, rope: PositionEncoding):
        super().__init__()
        self.encoding, self.rotary = encoding, rope

    def on_tokens(self, x, grid):
        return self.encoding.on_tokens(x, grid)

    def attn_bias(self, index, grid):
        return self.encoding.attn_bias(index, grid)

    def attn_rope(self, index, grid):
        return self.rotary.attn_rope(index, grid)

    def after_block(self, index, x, grid):
        return self.encoding.after_block(index, x, grid)


def _peg_rope(g: Geometry, temperature: float = 100.0, **peg_options):
    """The PEG (``peg``'s options) with axial RoPE (its temperature)."""
    return WithRope(POSITION_ENCODINGS["peg"](g, **peg_options), AxialRope(g, temperature))


POSITION_ENCODINGS.update(rope_axial=AxialRope, rope_mixed=MixedRope, peg_rope=_peg_rope)
