"""What a trained run is measured by: top-1 at every test size, every test image's prediction (kept beside the row),
and, with a validation split, the top-1 a choice reads."""
from __future__ import annotations

from typing import Optional, Sequence

import pytorch_lightning as pl
from omegaconf import DictConfig

from . import predictions
from .config import world_size
from .curves import LearningCurve
from .module import ClassificationModule


def evaluate(trainer: pl.Trainer, module: ClassificationModule, datamodule) -> dict[str, float]:
    """Top-1 (percent) at every evaluation size of the module."""
    metrics: dict[str, float] = {}
    for out in trainer.validate(module, datamodule=datamodule, verbose=False):
        metrics.update(out)
    return {k.split("@")[1]: round(100.0 * float(v), 3) for k, v in metrics.items() if k.startswith("val/top1@")}


def save_predictions(cfg: DictConfig, rid: str, modules: Sequence[ClassificationModule],
                     data_sha256: Optional[str]) -> Optional[str]:
    """The per-image predictions of the run's evaluations (the fine-tuned ones' at their sizes), beside its row
    (``predictions.py``); one process only: under DDP each rank scored a share of the images."""
    if world_size(cfg) != 1:
        return None
    labels, predicted = None, {}
    for module in modules:
        module_labels, by_size = module.predictions()
        labels = module_labels if labels is None else labels
        predicted.update(by_size)
    if labels is None:
        return None
    saved = predictions.save(cfg.results_dir, rid, labels.numpy(), {s: v.numpy() for s, v in predicted.items()},
                             data_sha256)
    return saved.relative_to(cfg.results_dir).as_posix()


def validation_top1(curve: LearningCurve, datamodule) -> Optional[float]:
    """Top-1 on the validation split at the training size after the last epoch: what a choice (a sweep) reads,
    where the row's ``top1`` is the test set's. None without a split."""
    if datamodule.curve_split != "validation" or not curve.rows:
        return None
    return curve.rows[-1]["top1"]
