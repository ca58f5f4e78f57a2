"""A run's progress while it trains: Lightning's own bar on a terminal, a line every few seconds in a log.

On a terminal, Lightning's TQDM bar (what Lightning users expect), with the images per second beside tqdm's
batches per second and time left in the epoch. When the output is a file or a pipe (a cluster job's log,
``nohup``), a bar redrawn in place becomes thousands of carriage returns, so ``LogLines`` prints one plain line
instead: after the first training step, so a run shows it started, then every ``LogLines.interval`` seconds.
``trainer.enable_progress_bar=false`` turns both off (the epoch lines of ``curves.py`` stay).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar

from .curves import _duration


class ImageRate:
    """Images per second of the current training epoch (every rank's images: batches are per device)."""

    def __init__(self):
        self.images, self.started = 0, None

    def start(self) -> None:
        self.images, self.started = 0, time.perf_counter()

    def add(self, trainer: pl.Trainer, batch: Any) -> None:
        self.images += _batch_size(batch) * trainer.world_size

    def per_second(self) -> Optional[float]:
        elapsed = None if self.started is None else time.perf_counter() - self.started
        return self.images / elapsed if elapsed else None


def _batch_size(batch: Any) -> int:
    labels = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else batch
    return len(labels)


class Bar(TQDMProgressBar):
    """Lightning's TQDM bar, with images per second among its metrics."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rate = ImageRate()

    def on_train_epoch_start(self, trainer, pl_module):
        super().on_train_epoch_start(trainer, pl_module)
        self.rate.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rate.add(trainer, batch)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)  # the logger's version: always 0 in a run's own folder, says nothing
        rate = self.rate.per_second()
        if rate:
            items["img/s"] = f"{rate:.0f}"
        return items


class LogLines(ProgressBar):
    """One line of progress every ``interval`` seconds, for output that is not a terminal.

    ``epoch 1/4, step 120/391 (31%), 812 img/s, about 20 s left in the epoch``; while testing,
    ``epoch 1/4, testing: loader 2/4, batch 40/79`` (a loader per test size). The first training step of each
    run prints at once.
    """

    interval = 10.0

    def __init__(self, stream: Optional[TextIO] = None, interval: Optional[float] = None):
        super().__init__()
        self.stream = stream
        self.interval = self.interval if interval is None else interval
        self.enabled = True
        self.rate = ImageRate()
        self._last: Optional[float] = None  # when the last line was printed; None: print at the next step

    @property
    def is_enabled(self) -> bool:  # Lightning asks a bar this before it prints through it
        return self.enabled and self._trainer is not None and self._trainer.is_global_zero

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def print(self, *args: Any, **kwargs: Any) -> None:
        print(*args, **{"file": self.stream or sys.stdout, "flush": True, **kwargs})

    def _due(self) -> bool:
        return self.is_enabled and (self._last is None or time.perf_counter() - self._last >= self.interval)

    def _emit(self, line: str) -> None:
        self._last = time.perf_counter()
        self.print(line)

    def _epoch(self, trainer: pl.Trainer) -> str:
        return f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"

    def on_train_start(self, trainer, pl_module):
        self._last = None  # each fit (a run, a fine-tuning) says at its first step that it has started

    def on_train_epoch_start(self, trainer, pl_module):
        self.rate.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rate.add(trainer, batch)
        if not self._due():
            return
        done, total = batch_idx + 1, self.total_train_batches
        parts = [self._epoch(trainer)]
        if isinstance(total, int) and total > 0:
            parts.append(f"step {done}/{total} ({100 * done / total:.0f}%)")
        else:
            parts.append(f"step {done}")
        rate = self.rate.per_second()
        if rate:
            parts.append(f"{rate:.0f} img/s")
            if isinstance(total, int) and total > done:
                elapsed = time.perf_counter() - self.rate.started
                parts.append(f"about {_duration(elapsed / done * (total - done))} left in the epoch")
        self._emit(", ".join(parts))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not self._due():
            return
        counts = trainer.num_val_batches
        total = counts[dataloader_idx] if dataloader_idx < len(counts) else None  # per loader: one per test size
        loaders = trainer.val_dataloaders
        count = len(loaders) if isinstance(loaders, (list, tuple)) else 1
        parts = [self._epoch(trainer)] if trainer.state.fn == "fit" else []
        parts.append(f"testing: loader {dataloader_idx + 1}/{count}, batch {batch_idx + 1}"
                     + (f"/{total}" if isinstance(total, int) and total > 0 else ""))
        self._emit(", ".join(parts))


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream (pytest's capture, a notebook)
        return False


def progress_callbacks(trainer_cfg: Any) -> list[pl.Callback]:
    """The progress display for a Trainer built from ``trainer_cfg`` (none when its bar is switched off).

    tqdm draws on stderr: a bar when stderr is a terminal, plain lines on stdout otherwise.
    """
    if not trainer_cfg.get("enable_progress_bar", True):
        return []
    return [Bar()] if is_terminal(sys.stderr) else [LogLines()]
