"""A run's identity: every setting that changes the trained weights or the measured top-1 changes the run_id,
runtime settings do not, existing run_ids stay, and setting_id pools only runs that differ in the seed alone."""
from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from cpvt_lab.config import auto_precision, compose
from cpvt_lab.fingerprint import run_id, setting_id
from cpvt_lab.provenance import REPO_ROOT

SHORTENED = ["+trainer.limit_train_batches=5", "+trainer.max_steps=10", "+trainer.accumulate_grad_batches=4",
             "+trainer.limit_val_batches=2", "+trainer.overfit_batches=3", "+trainer.max_time=00:00:01:00",
             "trainer.max_epochs=3"]
RUNTIME = ["compile=true", "checkpoint_every=7", "trainer.enable_progress_bar=false", "results_dir=/elsewhere",
           "output_dir=/tmp/x", "data.eval_batch_size=50", "trainer.log_every_n_steps=1",
           f"trainer.precision={auto_precision()}", "stack=on", "stack=off", "peg_lowering=taps"]


@pytest.fixture(scope="module")
def base():
    return compose("peg", ["scale=smoke"])


@pytest.mark.parametrize("override", SHORTENED)
def test_a_setting_that_changes_the_training_changes_the_run_id(base, override):
    assert run_id(compose("peg", ["scale=smoke", override])) != run_id(base)


def test_a_precision_other_than_the_devices_own_changes_the_run_id(base):
    other = "32-true" if auto_precision() == "bf16-mixed" else "bf16-mixed"
    assert run_id(compose("peg", ["scale=smoke", f"trainer.precision={other}"])) != run_id(base)


@pytest.mark.parametrize("override", RUNTIME)
def test_a_runtime_setting_keeps_the_run_id(base, override):
    assert run_id(compose("peg", ["scale=smoke", override])) == run_id(base)


def test_the_committed_rows_keep_their_run_ids():
    """Every committed row, of every results folder (smoke, the CPU study, its sweep), keeps the id it was made with."""
    files = sorted((REPO_ROOT / "results").glob("*/runs.jsonl"))
    assert {f.parent.name for f in files} >= {"smoke", "cpu", "cpu_sweep"}
    for file in files:
        rows = [json.loads(line) for line in file.read_text().splitlines()]
        changed = [r["run_id"] for r in rows if run_id(OmegaConf.create(r["config"])) != r["run_id"]]
        assert rows and not changed, f"{file}: {changed}"


def test_setting_id_is_the_run_without_its_seed(base):
    seeds = [compose("peg", ["scale=smoke", f"seed={s}"]) for s in (0, 1)]
    assert setting_id(seeds[0]) == setting_id(seeds[1]) == setting_id(OmegaConf.to_container(seeds[1]))
    for other in ("optim.lr=0.002", "optim.warmup_epochs=2", "data.batch_size=50", "data.subset=500",
                  "data.augment=trivialaugment", "trainer.gradient_clip_val=1.0", "model.head=gap"):
        assert setting_id(compose("peg", ["scale=smoke", other])) != setting_id(base), other


def test_setting_id_tells_recorded_precisions_apart(base):
    """A row records the precision it trained at: bf16 and fp32 rows of one run_id are not seeds of one cell."""
    recorded = OmegaConf.to_container(base)
    other = {**recorded, "trainer": {**recorded["trainer"], "precision": "bf16-mixed"}}
    fp32 = {**recorded, "trainer": {**recorded["trainer"], "precision": "32-true"}}
    assert setting_id(other) != setting_id(fp32)
