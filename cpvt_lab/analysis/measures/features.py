"""The patch-token maps a ViT produces after each block, read through its ``forward_intermediates``."""
from __future__ import annotations

import torch

from ...models import CPVTViT


@torch.no_grad()
def block_outputs(model: CPVTViT, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Patch-token maps (B x rows x cols x C) leaving every block, prefix tokens dropped; and the logits.

    Each map is what leaves block i before the position encoding's after_block hook, so a PEG
    placed after block i shows up in block i+1's map (the committed analyses measure that).
    """
    features, tokens = model.forward_intermediates(x, output_fmt="NLC", after_hook=False)
    grid = (x.shape[-2] // model.patch_embed.patch_size[0], x.shape[-1] // model.patch_embed.patch_size[1])
    maps = [t.reshape(t.shape[0], *grid, t.shape[-1]) for t in tokens]
    return maps, model.forward_head(features)


def all_block_outputs(model: CPVTViT, images: torch.Tensor, batch_size: int = 128
                      ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``block_outputs`` over many images in batches: one map per block, and all logits."""
    model.eval()
    parts = [block_outputs(model, chunk) for chunk in images.split(batch_size)]
    return [torch.cat(per_block) for per_block in zip(*(p[0] for p in parts))], torch.cat([p[1] for p in parts])
