"""An epoch of normalised batches over uint8 images on a device, cropped, flipped and augmented there."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from .augment import RandomAugment
from .erasing import random_erasing


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop of a zero-padded batch, as one gather (no per-image loop)."""
    if padding <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4).permute(0, 2, 3, 1)  # B, H+2p, W+2p, C
    dy = torch.randint(0, 2 * padding + 1, (b,), device=images.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=images.device, generator=generator)
    rows = dy[:, None] + torch.arange(h, device=images.device)
    cols = dx[:, None] + torch.arange(w, device=images.device)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class TensorBatches:
    """An epoch of batches over uint8 images held as one tensor (on any device).

    The images live on the GPU when there is one: a batch is an index slice of a
    permutation, and crop-with-padding and flip are batched tensor ops (airbench's
    recipe). The same code runs on the CPU.

    Training batches come from a permutation seeded by (seed, epoch), so a
    resumed run sees the same order. Under DDP each rank takes every
    ``world_size``-th index of the same permutation. Training batches are
    cropped and flipped, then (if asked) augmented per image by ``augment``
    and, once normalised, randomly erased with probability ``random_erasing``
    per image; every draw comes from the same generator, so (seed, epoch)
    fixes the whole epoch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], train: bool = False, crop_padding: int = 0, flip: bool = False,
                 seed: int = 0, epoch: Callable[[], int] = lambda: 0, rank: int = 0, world_size: int = 1,
                 augment: Optional[RandomAugment] = None, random_erasing: float = 0.0):
        self.images, self.labels = images, labels
        self.batch_size, self.train = batch_size, train
        self.crop_padding, self.flip = crop_padding, flip
        self.augment, self.random_erasing = augment, random_erasing
        self.seed, self.epoch = seed, epoch
        self.rank, self.world_size = rank, world_size
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, device=images.device).view(shape) * 255
        self.std = torch.tensor(std, device=images.device).view(shape) * 255

    def _indices(self, generator: torch.Generator) -> torch.Tensor:
        n = len(self.labels)
        if self.train:
            order = torch.randperm(n, device=self.images.device, generator=generator)
            usable = n - n % (self.batch_size * self.world_size)  # drop the ragged last batch
            return order[:usable][self.rank::self.world_size]
        return torch.arange(n, device=self.images.device)[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(self.labels)
        if self.train:
            return n // (self.batch_size * self.world_size)
        per_rank = len(range(self.rank, n, self.world_size))
        return -(-per_rank // self.batch_size)

    def __iter__(self):
        generator = torch.Generator(device=self.images.device)
        generator.manual_seed(self.seed * 100_003 + self.epoch())
        indices = self._indices(generator)
        for idx in indices.split(self.batch_size) if len(indices) else ():  # split() of nothing is one empty batch
            x = self.images[idx]
            if self.train:
                x = random_crop(x, self.crop_padding, generator)
                if self.flip:
                    x = random_flip(x, generator)
                if self.augment is not None:
                    x = self.augment(x, generator)
            x = (x.float() - self.mean) / self.std
            if self.train and self.random_erasing > 0:  # after normalisation: the noise is N(0, 1), as timm's
                x = random_erasing(x, self.random_erasing, generator)
            yield x, self.labels[idx]
