"""The epochs of a stack: each seed's batches from its own data module, as many per epoch as its run takes."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from .members import Member
from .training import StackedTraining


def batches_per_epoch(length: int, limit) -> int:
    """Lightning's ``limit_train_batches`` rule: an int caps the batches, a float is a fraction of them."""
    if limit is None:
        return length
    if isinstance(limit, int) and not isinstance(limit, bool):
        return min(length, limit)
    return int(length * float(limit))


def train_epochs(training: StackedTraining, members: Sequence[Member], first_epoch: int, max_epochs: int,
                 per_epoch: int, after_step: Optional[Callable[[int, int, torch.Tensor], None]] = None,
                 after_epoch: Optional[Callable[[int], None]] = None) -> None:
    """Epochs ``first_epoch`` .. ``max_epochs - 1``; ``after_step(epoch, batch, losses)`` sees the K losses of
    every step, ``after_epoch(epoch)`` follows each epoch (a learning curve's point, a checkpoint)."""
    for epoch in range(first_epoch, max_epochs):
        for member in members:
            member.clock.current_epoch = epoch  # TensorBatches seeds its order and draws by (seed, epoch)
        loaders = [iter(member.train_batches()) for member in members]
        for index in range(per_epoch):
            losses = training.step([next(loader) for loader in loaders])
            if after_step is not None:
                after_step(epoch, index, losses)
        if after_epoch is not None:
            after_epoch(epoch)
