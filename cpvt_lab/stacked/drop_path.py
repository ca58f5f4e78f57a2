"""Drop-path under vmap, drawn as each seed's separate run draws it.

A separate run's drop-path masks come from the global generator, one ``bernoulli_`` per
block branch in forward order. Under ``vmap`` a random op draws once for the whole stack,
so no seed would see its own stream. Instead each seed keeps a generator holding the state
its separate run's global generator has when training starts, the masks are drawn from it
outside ``vmap`` in the order the forward would draw them, and the network reads them as
inputs (``PresetDropPath``). Members may differ in their drop-path rates (a sweep's settings
trained as one stack): the network the stack runs has a preset mask wherever any member drops a path, and a
member whose run has no drop-path at a branch gets ones there, drawing nothing, as its run draws nothing.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from timm.layers import DropPath

MASK = "preset_mask"  # the name under which a PresetDropPath reads its mask (given through functional_call)


class PresetDropPath(nn.Module):
    """timm's ``DropPath`` with its mask given (the mask is already divided by the keep probability)."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob
        self.register_buffer(MASK, torch.ones(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x * getattr(self, MASK).to(x.dtype)


def preset_drop_paths(model: nn.Module) -> list[str]:
    """Replace every active ``DropPath`` of ``model`` by a ``PresetDropPath``, in place; their names in forward
    order (a block's drop_path1, then its drop_path2, block after block: the order timm's forward draws)."""
    names = []
    for name, module in list(model.named_modules()):
        if isinstance(module, DropPath) and module.drop_prob > 0:
            if not module.scale_by_keep:
                raise ValueError(f"{name}: drop-path without scale_by_keep is not stacked")
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, PresetDropPath(module.drop_prob))
            names.append(name)
    return names  # named_modules follows definition order, timm's Block defines drop_path1 before drop_path2


def active_drop_paths(model: nn.Module) -> dict[str, float]:
    """Each drop-path branch of ``model`` that draws (timm makes a zero rate an ``Identity``), by name: its rate."""
    return {name: module.drop_prob for name, module in model.named_modules()
            if isinstance(module, DropPath) and module.drop_prob > 0}


def draw_masks(names: list[str], rates: list[dict[str, float]], batch: int, generators: list[torch.Generator],
               device: torch.device) -> dict[str, torch.Tensor]:
    """Every preset mask of every seed for one training step: ``name.preset_mask`` -> K x batch x 1 x 1, drawn
    per seed from its generator as timm's ``drop_path`` draws from the global one (``rates[k]``: seed k's
    ``active_drop_paths``; a branch it lacks gets ones and draws nothing)."""
    per_seed = []
    for generator, own in zip(generators, rates):
        masks = {}
        for name in names:
            keep = 1 - own.get(name, 0.0)
            mask = torch.ones((batch, 1, 1), device=device)
            if keep < 1:
                mask.bernoulli_(keep, generator=generator)
                if keep > 0:
                    mask.div_(keep)
            masks[f"{name}.{MASK}"] = mask
        per_seed.append(masks)
    return {key: torch.stack([m[key] for m in per_seed]) for key in per_seed[0]} if names else {}
