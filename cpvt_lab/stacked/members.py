"""The seeds of a stack: each one's network, data and random stream, made as its separate run makes them."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Optional, Sequence

import pytorch_lightning as pl
import torch
import torch.nn as nn
from hydra.utils import instantiate
from omegaconf import DictConfig

from ..config import build_model
from .mixing import SeedMixup, seed_mixup


@dataclass
class Member:
    """One seed of a stack: its config, its data module (with a stand-in trainer that says the device and the
    epoch), its freshly built network, the generator its drop-path masks come from and its Mixup/CutMix."""
    cfg: DictConfig
    datamodule: pl.LightningDataModule
    model: nn.Module
    generator: torch.Generator
    clock: SimpleNamespace  # what the data module reads of a trainer: device, rank, epoch
    mixup: Optional[SeedMixup] = None  # None: the run trains without Mixup or CutMix

    def train_batches(self):
        """This epoch's training batches, as the separate run's TensorBatches yields them at this epoch."""
        return self.datamodule.train_dataloader()


def build_member(cfg: DictConfig, device: torch.device) -> Member:
    """As ``cpvt_lab.train._train_and_evaluate`` starts a run: seed everything, make the data module, build the
    network. The generator then holds the state the run's global generator has when training starts (on a GPU
    the device's), which is where its drop-path masks come from; the Mixup holds numpy's, where its draws come
    from."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg)
    clock = SimpleNamespace(strategy=SimpleNamespace(root_device=device), global_rank=0, world_size=1,
                            current_epoch=0)
    datamodule.trainer = clock
    datamodule.setup("fit")
    generator = torch.Generator(device)
    generator.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return Member(cfg, datamodule, model.to(device), generator, clock, seed_mixup(cfg))


def build_members(cfgs: Sequence[DictConfig], device: torch.device) -> list[Member]:
    return [build_member(cfg, device) for cfg in cfgs]
