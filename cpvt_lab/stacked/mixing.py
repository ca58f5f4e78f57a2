"""Mixup and CutMix for the seeds of a stack, each drawing what its separate run draws.

A separate run's timm ``Mixup`` draws its choices (mix or cut, the mixing weight, the box) from numpy's global
generator, which ``seed_everything`` seeded with the run's seed. In a stack, each seed keeps that generator's state
as its run starts training, and its Mixup draws from it: the global generator is swapped in for the call and out
after it, so no seed's draws depend on another's.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from omegaconf import DictConfig

from ..module import make_mixup


class SeedMixup:
    """One seed's Mixup/CutMix over its own numpy stream (``state``: ``np.random.get_state()`` as its run starts)."""

    def __init__(self, cfg: DictConfig, state: tuple):
        o = cfg.optim
        self.mixup = make_mixup(o.mixup, o.cutmix, o.label_smoothing, cfg.data.num_classes)
        self.state = state

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed images and their soft targets (the smoothing in them), as the run's training step gets them."""
        outer = np.random.get_state()
        np.random.set_state(self.state)
        try:
            return self.mixup(x, y)
        finally:
            self.state = np.random.get_state()
            np.random.set_state(outer)


def seed_mixup(cfg: DictConfig) -> Optional[SeedMixup]:
    """The seed's Mixup from numpy's global state now (None when the run trains without mixing)."""
    return SeedMixup(cfg, np.random.get_state()) if cfg.optim.mixup > 0 or cfg.optim.cutmix > 0 else None
