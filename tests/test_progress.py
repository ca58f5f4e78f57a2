"""A run shows progress: Lightning's bar on a terminal, a plain line every few seconds in a log, none when off."""
from __future__ import annotations

import io
import re

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from cpvt_lab import progress
from cpvt_lab.progress import Bar, LogLines, progress_callbacks


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n=40):
    return DataLoader(TensorDataset(torch.randn(n, 4), torch.randint(0, 2, (n,))), batch_size=8)


def fit(bar: LogLines, epochs: int = 2) -> list[str]:
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_model_summary=False, callbacks=[bar], num_sanity_val_steps=0)
    trainer.fit(Tiny(), train_dataloaders=loader(), val_dataloaders=[loader(16), loader(16)])
    return bar.stream.getvalue().splitlines()


def test_a_log_gets_a_line_at_the_first_step_then_one_per_interval():
    lines = fit(LogLines(stream=io.StringIO(), interval=3600.0))
    assert len(lines) == 1 and re.fullmatch(r"epoch 1/2, step 1/5 \(20%\), \d+ img/s, about .* left in the epoch", lines[0])


def test_with_no_interval_every_step_and_test_batch_is_a_line():
    lines = fit(LogLines(stream=io.StringIO(), interval=0.0))
    steps = [line for line in lines if ", step " in line]
    tests = [line for line in lines if "testing" in line]
    assert len(steps) == 10 and steps[-1].startswith("epoch 2/2, step 5/5 (100%), ")
    assert len(tests) == 2 * 2 * 2 and "epoch 1/2, testing: loader 2/2, batch 2/2" in tests


def test_the_bar_is_lightnings_own_on_a_terminal_and_lines_elsewhere(monkeypatch):
    on = OmegaConf.create({"enable_progress_bar": True})
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    assert [type(c) for c in progress_callbacks(on)] == [LogLines]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress.sys, "stderr", Terminal())
    (bar,) = progress_callbacks(on)
    assert isinstance(bar, Bar) and isinstance(bar, pl.callbacks.TQDMProgressBar)
    assert progress_callbacks(OmegaConf.create({"enable_progress_bar": False})) == []


def test_the_bar_shows_images_per_second_and_not_the_loggers_version():
    bar = Bar()
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_model_summary=False, callbacks=[bar], num_sanity_val_steps=0)
    trainer.fit(Tiny(), train_dataloaders=loader())
    metrics = bar.get_metrics(trainer, trainer.lightning_module)
    assert "v_num" not in metrics and float(metrics["img/s"]) > 0


def test_a_run_into_a_log_says_it_started_at_its_first_step_and_its_archive_decoding(fast_overrides, capsys):
    from cpvt_lab import compose
    from cpvt_lab.train import run_experiment

    overrides = [o for o in fast_overrides if not o.startswith("trainer.enable_progress_bar")]
    run_experiment(compose("peg", overrides))  # pytest's captured output is no terminal: lines, not a bar
    out = capsys.readouterr().out
    assert out.startswith("decoding tiny-cifar.tar.gz once into the cache")  # a fresh cache: the one line before the decoding
    first = out.index("epoch 1/1, step 1/1 (100%)")
    assert first < out.index("epoch 1/1, loss ")  # progress during the epoch, before its line
