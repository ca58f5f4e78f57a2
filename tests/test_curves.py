"""Learning curves: recorded per epoch beside the run and in its row, continued on resume, judged for instability."""
from __future__ import annotations

import csv

import pytest
import pytorch_lightning as pl

from cpvt_lab import compose
from cpvt_lab.curves import is_unstable
from cpvt_lab.fingerprint import run_id
from cpvt_lab.train import run_dir, run_experiment
from conftest import Interrupted, stop_at_epoch

pytestmark = pytest.mark.usefixtures("single_thread")


def read_curve(cfg) -> list[dict]:
    with open(run_dir(cfg, run_id(cfg)) / "curve.csv") as f:
        return list(csv.DictReader(f))


def test_a_run_records_its_curve_beside_it_and_in_its_row(fast_overrides, capsys):
    cfg = compose("peg", [o for o in fast_overrides if "limit_train_batches" not in o] + ["trainer.max_epochs=3"])
    row = run_experiment(cfg)
    curve = row["curve"]
    assert curve["epoch"] == [1, 2, 3] and len(curve["train_loss"]) == len(curve["top1"]) == len(curve["lr"]) == 3
    assert all(isinstance(v, float) for v in curve["train_loss"] + curve["top1"])
    assert curve["lr"][-1] < curve["lr"][0]  # cosine decay
    assert [float(r["train_loss"]) for r in read_curve(cfg)] == curve["train_loss"]
    assert row["unstable"] is False and row["test_images"] == 60  # the tiny archive's 6 test images a class
    out = capsys.readouterr().out
    assert "epoch 1/3, loss" in out and "top1@32" in out and "left" in out


def test_a_resumed_run_continues_its_curve(fast_overrides):
    cfg = compose("peg", fast_overrides + ["trainer.max_epochs=2"])
    with pytest.raises(Interrupted):
        run_experiment(cfg, callbacks=[stop_at_epoch(1)])
    first = read_curve(cfg)
    assert [r["epoch"] for r in first] == ["1"]
    row = run_experiment(cfg)
    assert row["curve"]["epoch"] == [1, 2] and row["curve"]["train_loss"][0] == float(first[0]["train_loss"])


@pytest.mark.parametrize("loss, lr, warmup, unstable", [
    ([2.0, 1.8, 1.9, 2.0, 2.1, 2.2], [1, 0.9, 0.8, 0.7, 0.6, 0.5], 1, True),   # 3 rises in a row under decay
    ([2.0, 1.8, 1.9, 2.0, 1.7, 1.6], [1, 0.9, 0.8, 0.7, 0.6, 0.5], 1, False),  # 2 rises, then recovery
    ([2.0, 2.1, 2.2, 2.3, 1.0, 0.9], [0.2, 0.4, 0.6, 0.8, 0.7, 0.6], 4, False),  # rising during warm-up only
    ([2.0, 1.8, 1.9, 1.8, 1.9, 1.8], [1, 0.9, 0.8, 0.7, 0.6, 0.5], 1, False),  # wobbles
    ([1.0, 1.1, 1.2, 1.3], [1, 1, 1, 1], 0, True),  # a constant lr counts as not rising
])
def test_a_loss_that_keeps_rising_while_the_lr_decays_is_unstable(loss, lr, warmup, unstable):
    assert is_unstable({"train_loss": loss, "lr": lr}, warmup_epochs=warmup) is unstable


def test_the_tables_show_the_unstable_flag_and_draw_each_studys_curves(fast_overrides, tmp_path):
    from cpvt_lab.results import append_row
    from cpvt_lab.tables import write_tables

    cfg = compose("peg", fast_overrides)
    row = run_experiment(cfg)
    append_row(cfg.results_dir, {**row, "run_id": "unstable0001", "ablation": "none", "unstable": True})
    written = write_tables(cfg.results_dir, tmp_path / "tables")
    table1 = (tmp_path / "tables" / "table1_pe_strategies.md").read_text()
    assert "⚠ unstable" in table1
    peg_line = next(line for line in table1.splitlines() if line.startswith("| peg "))
    assert "⚠" not in peg_line
    assert tmp_path / "tables" / "curves_table1_pe_strategies.png" in written
    assert (tmp_path / "tables" / "curves_table1_pe_strategies.png").stat().st_size > 1000


def test_while_fitting_only_the_training_size_is_evaluated_and_every_size_at_the_end(fast_overrides):
    sizes_seen = []

    class Sizes(pl.Callback):
        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            if trainer.state.fn == "fit":
                sizes_seen.append((batch[0].shape[-1], pl_module.top1[dataloader_idx].update_count))

    cfg = compose("peg", fast_overrides + ["trainer.max_epochs=2", "data.eval_sizes=[32,48]"])
    row = run_experiment(cfg, callbacks=[Sizes()])
    assert set(row["top1"]) == {"32", "48"}  # the final evaluation covers every size
    assert {size for size, count in sizes_seen if count} == {32}  # during training only the curve's size
