"""A timm VisionTransformer whose position encoding and head are plug-ins."""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional, Union

import torch
import torch.nn as nn
from timm.layers import AttentionRope
from timm.models._features import feature_take_indices
from timm.models.vision_transformer import Block, VisionTransformer
from torch.utils.checkpoint import checkpoint

from .pos_encodings import Geometry, build_position_encoding

# Model geometries. "smoke" keeps all 12 blocks (every PEG position of the paper exists).
SIZES: dict[str, dict[str, int]] = {
    "smoke": dict(img_size=32, patch_size=4, embed_dim=48, depth=12, num_heads=3),
    "vit_ti4": dict(img_size=32, patch_size=4, embed_dim=192, depth=12, num_heads=3),
    "deit_tiny": dict(img_size=224, patch_size=16, embed_dim=192, depth=12, num_heads=3),
    "deit_small": dict(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6),
    "deit_base": dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12),
}

# Heads, as timm's constructor arguments. GAP pools the patch tokens AFTER the
# final norm (fc_norm=False), as in the paper, rather than timm's pool-then-norm.
HEADS: dict[str, dict[str, Any]] = {
    "cls": dict(class_token=True, global_pool="token", fc_norm=False),
    "gap": dict(class_token=False, global_pool="avg", fc_norm=False),
}


class RotaryBlock(Block):
    """timm's pre-norm Block, its attention timm's AttentionRope: it also takes a rotary embedding ``rope``.

    AttentionRope has Attention's parameters (a DeiT checkpoint loads as it is) and, given no
    rotary embedding, its computation; given one, it rotates the queries and keys of the patch
    tokens and leaves the prefix tokens as they are, as in timm's EVA.
    """

    def forward(self, x: torch.Tensor, rope: Optional[torch.Tensor] = None,
                attn_mask: Optional[torch.Tensor] = None, is_causal: bool = False) -> torch.Tensor:
        attn = self.attn(self.norm1(x), rope=rope, attn_mask=attn_mask, is_causal=is_causal)
        x = x + self.drop_path1(self.ls1(attn))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class CPVTViT(VisionTransformer):
    """DeiT-style ViT; ``pos`` names a position encoding (with its options), ``head`` a head."""

    def __init__(self, pos: Mapping[str, Any], head: str = "cls", size: str = "vit_ti4",
                 img_size: Optional[int] = None, num_classes: int = 10, drop_path_rate: float = 0.0):
        if size not in SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {sorted(HEADS)}")
        geometry = dict(SIZES[size])
        if img_size is not None:
            geometry["img_size"] = img_size
        super().__init__(
            **geometry, **HEADS[head], num_classes=num_classes, drop_path_rate=drop_path_rate,
            pos_embed="none", dynamic_img_size=True, block_fn=RotaryBlock, attn_layer=AttentionRope)
        for block in self.blocks:  # AttentionRope leaves this many leading tokens unrotated
            block.attn.num_prefix_tokens = self.num_prefix_tokens
        options = dict(pos)
        self.pos_name = options.pop("name")
        self.head_name = head
        self.pos_encoding = build_position_encoding(self.pos_name, Geometry(
            dim=self.embed_dim, depth=len(self.blocks), num_heads=geometry["num_heads"],
            grid=tuple(self.patch_embed.grid_size), num_prefix_tokens=self.num_prefix_tokens), **options)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The token sequence entering block 0 (prefix tokens first), and the patch grid of ``x``."""
        x = self.patch_embed(x)  # B, H, W, C
        grid = (x.shape[1], x.shape[2])
        x = self._pos_embed(x)  # prepends the class token (timm's own table is off)
        x = self.pos_encoding.on_tokens(x, grid)
        return self.norm_pre(x), grid

    def _run_blocks(self, x: torch.Tensor, grid: tuple[int, int]
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Runs the blocks with the position encoding's attention hooks and after_block, the one place that does.

        Yields, per block i, what leaves block i and what enters block i+1 (after the hook).
        Lazy, so a caller that stops iterating runs no further blocks. It runs ``self.blocks``
        as they are, so timm's ``prune_intermediate_layers`` (which truncates them) needs no override.
        """
        for i, block in enumerate(self.blocks):
            rope, bias = self.pos_encoding.attn_rope(i, grid), self.pos_encoding.attn_bias(i, grid)
            if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
                # torch's non-reentrant checkpoint directly: the reentrant one, which timm's wrapper
                # can be switched to, refuses keyword arguments
                out = checkpoint(block, x, rope=rope, attn_mask=bias, use_reentrant=False)
            else:
                out = block(x, rope=rope, attn_mask=bias)
            x = self.pos_encoding.after_block(i, out, grid)
            yield out, x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, grid = self._tokens(x)
        for _, x in self._run_blocks(x, grid):
            pass  # only the sequence leaving the last block (and its hook) is needed
        return self.norm(x)

    def forward_intermediates(
            self, x: torch.Tensor, indices: Optional[Union[int, list[int]]] = None,
            return_prefix_tokens: bool = False, norm: bool = False, stop_early: bool = False,
            output_fmt: str = "NCHW", intermediates_only: bool = False, after_hook: bool = True,
    ) -> Union[list[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]:
        """timm's ``forward_intermediates``, running exactly the computation of ``forward_features``.

        The intermediate of block i is what enters block i+1: the block's output after the
        position encoding's ``after_block`` hook, so a PEG placed after block i is in block i's
        intermediate and the last one, normed, is ``forward_features``. ``after_hook=False``
        takes what leaves block i before its hook instead (a PEG after block i then first
        shows in block i+1's). ``indices``: the last n blocks if an int, all if None, else
        these blocks (negative from the end). ``norm`` applies the final norm to every
        intermediate; ``output_fmt`` is NCHW (patch tokens on their grid) or NLC.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be NCHW or NLC, got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        x, grid = self._tokens(x)
        intermediates = []
        for i, (out, x) in enumerate(self._run_blocks(x, grid)):
            if i in take_indices:
                y = x if after_hook else out
                intermediates.append(self.norm(y) if norm else y)
            if stop_early and i == max_index:
                break
        prefix = [y[:, :self.num_prefix_tokens] for y in intermediates]
        intermediates = [y[:, self.num_prefix_tokens:] for y in intermediates]
        if output_fmt == "NCHW":
            intermediates = [y.transpose(1, 2).reshape(y.shape[0], -1, *grid) for y in intermediates]
        if return_prefix_tokens and self.num_prefix_tokens:
            intermediates = list(zip(intermediates, prefix))
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # position tables, PEG, learned RoPE frequencies and class token; norms and biases are 1-D and
        # skipped by timm's factory
        return {"cls_token"} | {f"pos_encoding.{n}" for n, _ in self.pos_encoding.named_parameters()}


def timm_state_dict_to_cpvt(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a timm ViT state dict (learned table + class token) to this model's keys."""
    return {("pos_encoding.table" if k == "pos_embed" else k): v for k, v in state_dict.items()}


def load_timm_state_dict(model: CPVTViT, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strictly load a timm ``vit_*`` / DeiT checkpoint into a ``learned`` + ``cls`` model."""
    model.load_state_dict(timm_state_dict_to_cpvt(state_dict), strict=True)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
