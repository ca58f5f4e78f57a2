"""Lightning ``fit`` timed end to end, on the run's data path or on synthetic images of the same shape."""
from __future__ import annotations

import inspect
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from ..config import build_model
from ..data import ArrayDataModule, Arrays
from ..train import make_module
from .measurement import Measurement, peak_memory_mb, reset_peak_memory, synchronize


class WindowTimer(pl.Callback):
    """Times training batches ``warmup`` .. ``warmup + steps - 1``, counted across epochs."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        self.warmup, self.steps, self.device = warmup, steps, device
        self.seen, self.images = 0, 0
        self.fit_started = self.started = self.seconds = self.warmup_seconds = None

    def on_train_start(self, trainer, pl_module):
        self.fit_started = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.seen == self.warmup:
            synchronize(self.device)
            self.started = time.perf_counter()
            self.warmup_seconds = self.started - self.fit_started
            reset_peak_memory(self.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen > self.warmup:
            self.images += len(batch[1])
        if self.seen == self.warmup + self.steps:
            synchronize(self.device)
            self.seconds = time.perf_counter() - self.started


class SyntheticData(ArrayDataModule):
    """The in-memory data path on random uint8 images, for when no archive is at hand."""

    name = "synthetic"

    def __init__(self, num_images: int = 50_000, **kwargs):
        super().__init__(**kwargs)
        self.num_images = num_images

    @classmethod
    def from_config(cls, data_cfg, num_images: int) -> "SyntheticData":
        accepted = inspect.signature(ArrayDataModule.__init__).parameters
        return cls(num_images, **{k: v for k, v in data_cfg.items() if k in accepted})

    def load_arrays(self) -> Arrays:
        rng = np.random.default_rng(0)
        n_test = 10 * self.num_classes

        def images(n):
            return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)

        def labels(n):
            return np.arange(n) % self.num_classes

        return Arrays(images(self.num_images), labels(self.num_images), images(n_test), labels(n_test),
                      [str(c) for c in range(self.num_classes)])

    def describe(self) -> str:
        return "synthetic uint8 images"


def measure_end_to_end(cfg, device: torch.device, steps: int, warmup: int, synthetic: bool,
                       flops_per_image: float, label: str = "end_to_end") -> Measurement:
    """Lightning ``fit`` on the real data module and LightningModule; validation and checkpoints off."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = SyntheticData.from_config(cfg.data, cfg.data.subset or 50_000) if synthetic else instantiate(cfg.data)
    module = make_module(cfg, build_model(cfg), list(cfg.data.eval_sizes))
    timer = WindowTimer(warmup, steps, device)
    trainer = instantiate(cfg.trainer, max_steps=warmup + steps, max_epochs=-1, limit_val_batches=0,
                          num_sanity_val_steps=0, enable_checkpointing=False, logger=False,
                          enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, datamodule=datamodule)
    if timer.seconds is None:
        raise RuntimeError(f"end-to-end run stopped after {timer.seen} of {warmup + steps} batches")
    with tempfile.TemporaryDirectory() as folder:  # what a run pays at each epoch's end
        started = time.perf_counter()
        trainer.save_checkpoint(Path(folder) / "last.ckpt")
        checkpoint_seconds = time.perf_counter() - started
    augmented = f", {cfg.data.augment}, erasing {cfg.data.random_erasing}" if augmentation_on(cfg) else ""
    return Measurement(f"{label}[{cfg.ablation_name}]",
                       f"Lightning fit, {datamodule.describe()}{augmented}, {cfg.trainer.precision}",
                       timer.images, timer.seconds, timer.warmup_seconds, flops_per_image, peak_memory_mb(device),
                       cfg.ablation_name, module.compiled, checkpoint_seconds,
                       module.compile_check.as_dict() if module.compile_check else None)


def augmentation_on(cfg) -> bool:
    return bool(cfg.data.get("augment") or cfg.data.get("random_erasing"))
