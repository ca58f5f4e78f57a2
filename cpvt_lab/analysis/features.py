"""The patch-token maps a ViT produces after each block, read through forward hooks (no copy of the model)."""
from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def block_outputs(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Patch-token maps (B x rows x cols x C) leaving every block, prefix tokens dropped; and the logits.

    The hook sits on ``model.blocks[i]``, so a PEG placed after block i shows up in block i+1's map.
    """
    grid = (x.shape[-2] // model.patch_embed.patch_size[0], x.shape[-1] // model.patch_embed.patch_size[1])
    maps: list[torch.Tensor] = []

    def keep(module, args, output):
        tokens = output[:, model.num_prefix_tokens:]
        maps.append(tokens.reshape(tokens.shape[0], *grid, tokens.shape[-1]))

    handles = [block.register_forward_hook(keep) for block in model.blocks]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return maps, logits


def all_block_outputs(model: nn.Module, images: torch.Tensor, batch_size: int = 128
                      ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``block_outputs`` over many images in batches: one map per block, and all logits."""
    model.eval()
    parts = [block_outputs(model, chunk) for chunk in images.split(batch_size)]
    return [torch.cat(per_block) for per_block in zip(*(p[0] for p in parts))], torch.cat([p[1] for p in parts])
