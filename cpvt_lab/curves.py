"""Learning curves: per epoch, the training loss, top-1 at the training size and the lr of a run.

The curve is written beside the run (``curve.csv``, rewritten each epoch), kept in the
checkpoint so a resumed run continues it, copied compactly into the run's row, and read
for the ``unstable`` flag. Each epoch end also prints one line with an estimate of the
time left, so a long run says where it stands.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl

from .atomic import replacing

COLUMNS = ("epoch", "train_loss", "top1", "lr")
RISING_EPOCHS = 3  # consecutive epochs of rising loss under a decaying lr that make a run unstable


def is_unstable(curve: dict[str, list], warmup_epochs: float = 0, rising: int = RISING_EPOCHS) -> bool:
    """Whether the training loss rose ``rising`` epochs in a row while the lr was falling (after warm-up).

    A healthy run's loss may wobble for an epoch; one that keeps climbing while the lr decays
    is diverging, as the compiled multi-PEG runs did (1.82, 2.15, 2.13, 2.28, ...).
    """
    loss, lr = curve.get("train_loss", []), curve.get("lr", [])
    streak = 0
    for i in range(1, min(len(loss), len(lr))):
        if i <= warmup_epochs or loss[i] is None or loss[i - 1] is None:
            streak = 0
            continue
        streak = streak + 1 if loss[i] > loss[i - 1] and lr[i] <= lr[i - 1] else 0
        if streak >= rising:
            return True
    return False


class LearningCurve(pl.Callback):
    """Records the curve of the run training in ``folder`` (rank 0 writes) and prints progress."""

    def __init__(self, folder: Path, train_size: int):
        self.path = Path(folder) / "curve.csv"
        self.metric = f"val/top1@{train_size}"
        self.rows: list[dict] = []
        self._epoch_started: Optional[float] = None
        self._epoch_seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        # after validation (Lightning runs it before this hook), so the epoch's top-1 is known
        metrics = trainer.callback_metrics
        top1 = metrics.get(self.metric)
        loss = metrics.get("train/loss")
        row = {"epoch": trainer.current_epoch + 1,
               "train_loss": None if loss is None else round(float(loss), 4),
               "top1": None if top1 is None else round(100.0 * float(top1), 2),
               "lr": float(f"{trainer.optimizers[0].param_groups[0]['lr']:.4g}")}
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        if self._epoch_started is not None:
            self._epoch_seconds.append(time.perf_counter() - self._epoch_started)
        if trainer.is_global_zero:
            self._write()
            pl_module.print(self._progress(row, trainer.max_epochs))

    def _progress(self, row: dict, epochs: int) -> str:
        parts = [f"epoch {row['epoch']}/{epochs}"]
        if row["train_loss"] is not None:
            parts.append(f"loss {row['train_loss']:.4f}")
        if row["top1"] is not None:
            parts.append(f"{self.metric.removeprefix('val/')} {row['top1']:.2f}%")
        if self._epoch_seconds:
            recent = self._epoch_seconds[-3:]
            per_epoch = sum(recent) / len(recent)
            left = per_epoch * max(0, epochs - row["epoch"])
            parts.append(f"{per_epoch:.1f} s/epoch, about {_duration(left)} left")
        return ", ".join(parts)

    def _write(self) -> None:
        with replacing(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def compact(self) -> dict[str, list]:
        """The curve as columns, for the run's row."""
        return {c: [r[c] for r in self.rows] for c in COLUMNS}

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
