"""Learning curves: recorded per epoch beside the run and in its row, continued on resume, judged for instability."""
from __future__ import annotations

import csv
import math

import pytest
import pytorch_lightning as pl
from omegaconf import OmegaConf

from cpvt_lab import compose
from cpvt_lab.curves import LOSS_RISE, LOSS_RISE_FRACTION, TOP1_DROP, instability, is_unstable
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
    assert row["images_trained"] == 2 * 20  # both epochs' images (one batch of 20 each), not the resumed one's alone


def cosine(epochs: int, warmup: int, peak: float = 1e-3) -> list[float]:
    return [peak * e / warmup if e <= warmup else
            peak * 0.5 * (1 + math.cos(math.pi * (e - warmup) / (epochs - warmup))) for e in range(1, epochs + 1)]


def curve(loss, top1, warmup):
    return {"epoch": list(range(1, len(loss) + 1)), "train_loss": loss, "top1": top1,
            "lr": cosine(len(loss), warmup)}


# the compiled peg_0to5 run that started the compile investigation (12 epochs, 1 warm-up): its loss climbed back
# and wobbled, never three rises in a row, and its top-1 peaked near 35% at epoch 3 and ended at 28%
COLLAPSE = curve([1.82, 2.15, 2.13, 2.28, 2.24, 2.21, 2.19, 2.16, 2.14, 2.12, 2.11, 2.10],
                 [30.1, 33.4, 35.2, 31.0, 29.6, 29.0, 28.7, 28.4, 28.2, 28.1, 28.05, 28.0], warmup=1)
# a jump at epoch 10 of 20 (loss 1.05 -> 1.55, top-1 62% -> 45%) that then plateaus instead of recovering
JUMP_THEN_PLATEAU = curve([2.10, 1.85, 1.64, 1.48, 1.36, 1.26, 1.18, 1.11, 1.05, 1.55, 1.52, 1.50, 1.49, 1.50,
                           1.48, 1.49, 1.48, 1.47, 1.47, 1.47],
                          [24.0, 33.5, 40.2, 45.8, 50.1, 53.7, 56.9, 59.6, 62.0, 45.1, 45.9, 46.3, 46.5, 46.2,
                           46.8, 46.7, 47.0, 47.1, 47.2, 47.2], warmup=2)
# 30 epochs, 3 warm-up: the loss wobbles by 0.01 near its end, top-1 peaks at 71.2% at epoch 28 and ends 0.9 below
HEALTHY_30 = curve([2.21, 2.02, 1.88, 1.76, 1.66, 1.57, 1.49, 1.42, 1.36, 1.30, 1.25, 1.20, 1.16, 1.12, 1.08,
                    1.05, 1.02, 0.99, 0.97, 0.95, 0.93, 0.915, 0.90, 0.885, 0.872, 0.861, 0.866, 0.855, 0.858, 0.853],
                   [21.5, 29.8, 35.1, 39.6, 43.0, 46.2, 48.9, 51.0, 53.2, 55.0, 56.9, 58.1, 59.8, 61.0, 62.4,
                    63.1, 64.5, 65.2, 66.3, 66.9, 67.8, 68.2, 68.9, 69.4, 69.8, 70.1, 70.6, 71.2, 70.4, 70.3], warmup=3)
# 12 epochs still climbing, with a 2-point dip in top-1 mid-run and a loss that rises twice on the way down
HEALTHY_12 = curve([2.05, 1.83, 1.70, 1.62, 1.64, 1.51, 1.44, 1.45, 1.33, 1.27, 1.22, 1.20],
                   [28.0, 35.5, 40.1, 44.0, 42.0, 47.3, 50.2, 51.0, 53.6, 55.8, 57.0, 57.4], warmup=1)


@pytest.mark.parametrize("name, curve, warmup, unstable", [
    ("compiled collapse", COLLAPSE, 1, True),
    ("jump then plateau", JUMP_THEN_PLATEAU, 2, True),
    ("healthy, 30 epochs, late wobble", HEALTHY_30, 3, False),
    ("healthy, 12 epochs, still climbing", HEALTHY_12, 1, False),
    ("loss only, 3 rises under decay", {"train_loss": [2.0, 1.8, 1.9, 2.0, 2.1, 2.2], "lr": [1, .9, .8, .7, .6, .5]},
     1, True),
    ("loss only, 2 rises, then recovery", {"train_loss": [2.0, 1.8, 1.9, 2.0, 1.7, 1.6]}, 1, False),
    ("rising during warm-up only", {"train_loss": [2.0, 2.1, 2.2, 2.3, 1.0, 0.9]}, 4, False),
    ("still in warm-up", {"train_loss": [2.0, 2.1, 2.3]}, 4, False),
    ("no curve", {}, 0, False),
])
def test_a_run_whose_curve_ends_clearly_worse_than_it_once_was_is_unstable(name, curve, warmup, unstable):
    assert is_unstable(curve, warmup_epochs=warmup) is unstable, name


def test_the_thresholds_sit_between_a_wobble_and_a_collapse():
    assert "top-1 ends at 28.0%, 7.2 points below its peak" in instability(COLLAPSE, 1)
    assert "training loss ends at 1.47, above its minimum 1.05" in instability(JUMP_THEN_PLATEAU, 2)
    wobble = {"train_loss": [2.0, 1.2, 1.0, 1.04], "top1": [30.0, 60.0, 70.0, 67.1]}  # within both thresholds
    assert not is_unstable(wobble) and not TOP1_DROP > 3.0 and LOSS_RISE == LOSS_RISE_FRACTION == 0.05


def test_the_tables_show_the_unstable_flag_and_draw_each_studys_curves(fast_overrides, tmp_path):
    from cpvt_lab.results import append_row
    from cpvt_lab.tables import write_tables

    cfg = compose("peg", fast_overrides)
    row = run_experiment(cfg)
    # the stored flag says stable; the curve in the row decides, at table time
    none = compose("none", fast_overrides)  # a none row with peg's numbers: its config and run_id are none's
    unstable_id = run_id(none)
    append_row(cfg.results_dir, {**row, "run_id": unstable_id, "ablation": "none", "unstable": False,
                                 "config": OmegaConf.to_container(none, resolve=True),
                                 "curve": COLLAPSE, "curve_split": "validation"})
    written = write_tables(cfg.results_dir, tmp_path / "tables")
    table1 = (tmp_path / "tables" / "table1_pe_strategies.md").read_text()
    none_line = next(line for line in table1.splitlines() if line.startswith("| none "))
    assert "— ⚠ 1 unstable run left out" in none_line and "|   0 |" in none_line  # no stable seed left
    assert (f"Left out of every cell as unstable: 1 run (none seed 0, {unstable_id}: training loss ends at 2.1, above "
            "its minimum 1.82; top-1 ends at 28.0%, 7.2 points below its peak)") in table1
    peg_line = next(line for line in table1.splitlines() if line.startswith("| peg "))
    assert "⚠" not in peg_line
    assert tmp_path / "tables" / "curves_table1_pe_strategies.png" in written
    assert (tmp_path / "tables" / "curves_table1_pe_strategies.png").stat().st_size > 1000


def test_while_fitting_only_the_training_size_is_evaluated_and_every_size_at_the_end(fast_overrides):
    sizes_seen = []

    class Sizes(pl.Callback):
        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            if trainer.state.fn == "fit":
                sizes_seen.append((batch[0].shape[-1], pl_module.curve_top1.update_count))

    cfg = compose("peg", fast_overrides + ["trainer.max_epochs=2", "data.eval_sizes=[32,48]"])
    row = run_experiment(cfg, callbacks=[Sizes()])
    assert set(row["top1"]) == {"32", "48"}  # the final evaluation covers every size
    assert {size for size, count in sizes_seen} == {32} and all(count for _, count in sizes_seen)  # the curve's
