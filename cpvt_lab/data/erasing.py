"""Random erasing of a normalised batch on its device, per image, as timm's (per-pixel noise)."""
from __future__ import annotations

import math

import torch


def random_erasing(images: torch.Tensor, probability: float, generator: torch.Generator, min_area: float = 0.02,
                   max_area: float = 1 / 3, min_aspect: float = 0.3, attempts: int = 10) -> torch.Tensor:
    """timm's RandomErasing in 'pixel' mode (one box per image, per-pixel N(0, 1) noise, meant for normalised
    batches), batched: each image erases with ``probability``, taking the first of ``attempts`` drawn boxes
    that fits inside it, as timm does (none fits: left as it is)."""
    b, c, h, w = images.shape
    device = images.device

    def uniform(low, high, shape):
        return low + (high - low) * torch.rand(shape, device=device, generator=generator)

    erase = torch.rand(b, device=device, generator=generator) < probability
    area = uniform(min_area, max_area, (b, attempts)) * (h * w)
    aspect = torch.exp(uniform(math.log(min_aspect), math.log(1 / min_aspect), (b, attempts)))
    box_h = torch.sqrt(area * aspect).round()
    box_w = torch.sqrt(area / aspect).round()
    fits = (box_w < w) & (box_h < h)
    first = fits.int().argmax(dim=1, keepdim=True)  # argmax returns the first of equal maxima
    box_h, box_w = box_h.gather(1, first).squeeze(1), box_w.gather(1, first).squeeze(1)
    erase &= fits.any(dim=1)
    top = (torch.rand(b, device=device, generator=generator) * (h - box_h + 1)).floor()  # randint(0, h - box_h)
    left = (torch.rand(b, device=device, generator=generator) * (w - box_w + 1)).floor()
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + box_h).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + box_w).view(-1, 1, 1)) & erase.view(-1, 1, 1))
    noise = torch.randn(images.shape, device=device, dtype=images.dtype, generator=generator)
    return torch.where(inside.unsqueeze(1), noise, images)
