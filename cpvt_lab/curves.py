"""Learning curves: per epoch, the training loss, top-1 at the training size and the lr of a run.

The curve is written beside the run (``curve.csv``, rewritten each epoch), kept in the
checkpoint so a resumed run continues it, copied compactly into the run's row, and judged
for instability (``is_unstable``: at the end of a run, and again by the tables from the row's
curve). Each epoch end also prints one line with an estimate of the time left, so a long run
says where it stands.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl

from .atomic import replacing

COLUMNS = ("epoch", "train_loss", "top1", "lr")
# A run is unstable when its curve ends clearly worse than it once was. Under a decaying lr a healthy run's
# training loss ends at, or a few hundredths above, its minimum, and its top-1 at the training size within
# about a point of its peak; a collapse ends well away from both, whether its loss kept climbing (the compiled
# multi-PEG runs: 1.82, 2.15, 2.13, 2.28, ..., top-1 35% at epoch 3, 28% at the end) or jumped once and stayed up.
LOSS_RISE = 0.05           # the final loss above the minimum by more than this many nats ...
LOSS_RISE_FRACTION = 0.05  # ... and by more than this share of the minimum (a wobble is 0.01-0.03 at a loss of 1-2)
TOP1_DROP = 3.0            # or the final top-1 below the peak by more than this many points (a late wobble: ~1)


def _values(curve: dict[str, list], column: str) -> list[float]:
    return [v for v in curve.get(column) or [] if v is not None]


def instability(curve: dict[str, list], warmup_epochs: float = 0, split: Optional[str] = "validation") -> str:
    """Why the run's curve ends clearly worse than it once was ('' when it does not, or has not left warm-up).

    The training loss ends above its minimum by more than ``LOSS_RISE`` and ``LOSS_RISE_FRACTION`` of it, or
    the top-1 at the training size ends more than ``TOP1_DROP`` points below its peak. The top-1 is read only
    where the curve's ``split`` is a validation split: a rule that leaves runs out of the tables must not look at
    the test images that then judge them (rows before the split existed measured their curve on the test set).
    """
    loss, epochs = (_values(curve, c) for c in ("train_loss", "epoch"))
    top1 = _values(curve, "top1") if split == "validation" else []
    if max([*epochs, len(loss), len(top1)]) <= warmup_epochs:  # the lr is still rising: nothing to judge yet
        return ""
    reasons = []
    if loss and loss[-1] > min(loss) + max(LOSS_RISE, LOSS_RISE_FRACTION * min(loss)):
        reasons.append(f"training loss ends at {loss[-1]:.3g}, above its minimum {min(loss):.3g}")
    if top1 and top1[-1] < max(top1) - TOP1_DROP:
        reasons.append(f"top-1 ends at {top1[-1]:.1f}%, {max(top1) - top1[-1]:.1f} points below its peak")
    return "; ".join(reasons)


def is_unstable(curve: dict[str, list], warmup_epochs: float = 0, split: Optional[str] = "validation") -> bool:
    """Whether the run's learning curve ends clearly worse than it once was (``instability`` says how)."""
    return bool(instability(curve, warmup_epochs, split))


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
