"""A timm VisionTransformer whose position encoding and head are plug-ins."""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

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
            pos_embed="none", dynamic_img_size=True)
        options = dict(pos)
        self.pos_name = options.pop("name")
        self.head_name = head
        self.pos_encoding = build_position_encoding(self.pos_name, Geometry(
            dim=self.embed_dim, depth=len(self.blocks), num_heads=geometry["num_heads"],
            grid=tuple(self.patch_embed.grid_size), num_prefix_tokens=self.num_prefix_tokens), **options)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # B, H, W, C
        grid = (x.shape[1], x.shape[2])
        x = self._pos_embed(x)  # prepends the class token (timm's own table is off)
        x = self.pos_encoding.on_tokens(x, grid)
        x = self.norm_pre(x)
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask=self.pos_encoding.attn_bias(i, grid))
            x = self.pos_encoding.after_block(i, x, grid)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # position tables, PEG and class token; norms and biases are 1-D and skipped by timm's factory
        return {"cls_token"} | {f"pos_encoding.{n}" for n, _ in self.pos_encoding.named_parameters()}


def timm_state_dict_to_cpvt(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a timm ViT state dict (learned table + class token) to this model's keys."""
    return {("pos_encoding.table" if k == "pos_embed" else k): v for k, v in state_dict.items()}


def load_timm_state_dict(model: CPVTViT, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strictly load a timm ``vit_*`` / DeiT checkpoint into a ``learned`` + ``cls`` model."""
    model.load_state_dict(timm_state_dict_to_cpvt(state_dict), strict=True)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
