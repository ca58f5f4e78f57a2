"""The grid runner: grids as data, dedupe across grids, bad input, resume after SIGKILL, interrupted runs."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from cpvt_lab import compose, train
from cpvt_lab.config import ablation_names, compose_seeds
from cpvt_lab.fingerprint import run_id
from cpvt_lab.ablations import load_grid, names
from cpvt_lab.grid import main, run_grid
from cpvt_lab.study.plan import plan_grid as plan
from cpvt_lab.module import NonFiniteLossError
from cpvt_lab.results import read_rows, results_path
from cpvt_lab.train import run_dir, run_experiment
from conftest import Interrupted, stop_at_epoch

SMALL_GRID = "ablations: [none, peg]\nseeds: [0, 1]\ntrain_size: 32\neval_sizes: [32, 48]\n"


def small_grid(tmp_path: Path) -> str:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_GRID)
    return str(path)


def test_grid_files_leave_the_ablation_group_alone():
    assert not {"grids", "studies", *names("grid"), *names("study")} & set(ablation_names())
    with initialize_config_module("cpvt_lab.conf", version_base="1.3"):
        with pytest.raises(MissingConfigException) as err:
            hydra_compose("config", overrides=["ablation=no_such_thing"])
    listed = str(err.value)
    assert "peg_0to5_gap" in listed and "grids" not in listed and "table1" not in listed


def test_the_paper_grid_trains_a_run_shared_by_two_tables_once(fast_overrides):
    overrides = [o for o in fast_overrides if not o.startswith("data.eval_sizes")]
    runs = plan("paper", overrides, seeds=[3])
    tables = load_grid("paper")
    ablations = {a for g in tables for a in g.ablations}
    assert len(runs) == len({r.run_id for r in runs}) == len(ablations) < sum(len(g.ablations) for g in tables)
    [peg] = [r for r in runs if r.ablation == "peg"]
    assert peg.seed == 3 and set(peg.grids) == {g.name for g in tables}  # peg is in every table of the paper
    assert all(r.cfg.data.train_size == 24 and list(r.cfg.data.eval_sizes) == [24, 32, 40, 48] for r in runs)


def test_a_plans_seeds_composed_at_once_are_the_configs_each_seed_composes_alone():
    overrides = ["scale=cpu", "data.val_split=500"]
    at_once = compose_seeds("peg_gap", overrides, [4, 0])
    alone = [compose("peg_gap", [*overrides, f"seed={seed}"]) for seed in (4, 0)]
    assert [OmegaConf.to_container(c) for c in at_once] == [OmegaConf.to_container(c) for c in alone]
    assert [(c.seed, c.data.seed) for c in at_once] == [(4, 4), (0, 0)]  # data.seed: ${seed}, resolved per seed
    assert [run_id(c) for c in at_once] == [run_id(c) for c in alone]


def test_a_grids_settings_are_its_runs_each_with_its_changes_applied_after_the_studys(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("ablations: [peg_gap]\nseeds: [0]\n"
                    "settings:\n  plain: []\n  nomix: [optim.mixup=0]\n  lr: [optim.lr=2e-3]\n")
    assert [(g.name, g.setting, g.changes) for g in load_grid(str(path))] == [
        ("sweep:plain", "plain", ()), ("sweep:nomix", "nomix", ("optim.mixup=0",)),
        ("sweep:lr", "lr", ("optim.lr=2e-3",))]
    runs = plan(str(path), ["optim.mixup=0.8", "optim.lr=1e-3"])
    assert [(r.setting, r.cfg.optim.mixup, r.cfg.optim.lr) for r in runs] == [
        ("plain", 0.8, 1e-3), ("nomix", 0, 1e-3), ("lr", 0.8, 2e-3)]  # the setting's change wins over the study's
    assert len({r.run_id for r in runs}) == 3 and runs[1].label().startswith("peg_gap (nomix) seed=0 [")
    assert all(r.in_grid("sweep") for r in runs) and not runs[0].in_grid("swee")


@pytest.mark.parametrize("settings, says", [
    ("settings: [a, b]", r"settings must map each setting's name to its overrides"),
    ("settings:\n  'no mix': []", r"settings: 'no mix' is no name"),
    ("settings:\n  nomix: optim.mixup=0", r"settings.nomix: a list of KEY=VALUE overrides"),
    ("settings:\n  nomix: [optim.mixup]", r"settings.nomix: a list of KEY=VALUE overrides"),
    ("table: t\ntitle: t\nshows: s\nsettings:\n  a: []", r"settings are a sweep's, a paper table"),
])
def test_a_grids_bad_settings_are_refused_in_one_line(tmp_path, settings, says):
    from cpvt_lab.ablations import SpecError
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"ablations: [peg]\n{settings}\n")
    with pytest.raises(SpecError, match=f"grid 'bad': {says}"):
        load_grid(str(bad))


@pytest.mark.parametrize("args, message", [
    (["no_such_grid"], "unknown grid"),
    (["table1", "seed=1"], "seeds=[...]"),
    (["table1", "seeds=[-1]"], "non-negative"),
    (["peg_position", "model.pos.kernel=4"], "odd"),
    (["table1", "no_such_key=1"], "no_such_key"),
])
def test_bad_input_exits_2_before_any_work(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*args, f"results_dir={tmp_path / 'r'}", f"output_dir={tmp_path / 'o'}"]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_grid_killed_with_sigkill_resumes_with_one_success_row_per_run(fast_overrides, tmp_path):
    grid = small_grid(tmp_path)
    overrides = fast_overrides
    rows_file = results_path(tmp_path / "results")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cpvt_lab.grid", grid, *overrides], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not (rows_file.exists() and rows_file.read_text()):
            time.sleep(0.2)
        assert proc.poll() is None, "the grid finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert 1 <= len(read_rows(tmp_path / "results")) < 4

    out = io.StringIO()
    report = run_grid(grid, overrides, out=out)
    assert not report.failed and len(report.trained) + len(report.skipped) == 4
    rows = read_rows(tmp_path / "results")
    assert len(rows) == len({r["run_id"] for r in rows}) == 4

    again = io.StringIO()
    report = run_grid(grid, overrides, out=again)
    assert not report.trained and len(report.skipped) == 4
    assert "nothing new to train" in again.getvalue()
    assert len(read_rows(tmp_path / "results")) == 4


class EpochsSeen(pl.Callback):
    def __init__(self):
        self.epochs = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append(trainer.current_epoch)


def test_an_interrupted_run_resumes_from_the_checkpoint_of_its_last_epoch(fast_overrides):
    cfg = compose("peg", fast_overrides + ["trainer.max_epochs=2"])
    with pytest.raises(Interrupted):
        run_experiment(cfg, callbacks=[stop_at_epoch(1)])
    assert (run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt").is_file()
    assert read_rows(cfg.results_dir, status=None) == []
    seen = EpochsSeen()
    row = run_experiment(cfg, callbacks=[seen])
    assert seen.epochs == [1] and row["status"] == "ok" and row["epochs"] == 2
    assert len(read_rows(cfg.results_dir)) == 1


def test_a_failing_run_is_recorded_with_its_reason_and_the_grid_goes_on(fast_overrides, tmp_path, monkeypatch):
    real = train._train_and_evaluate

    def nan_for_none(cfg, *args, **kwargs):
        if cfg.ablation_name == "none":
            raise NonFiniteLossError("non-finite training loss (nan) at epoch 0, step 1")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(train, "_train_and_evaluate", nan_for_none)
    out = io.StringIO()
    report = run_grid(small_grid(tmp_path), fast_overrides, seeds=[0], out=out)
    assert [(r.ablation, reason.split(":")[0]) for r, reason in report.failed] == [("none", "NonFiniteLossError")]
    assert [r.ablation for r in report.trained] == ["peg"]
    assert "FAILED: none seed=0" in out.getvalue()
    [failed] = read_rows(tmp_path / "results", status="failed")
    assert failed["ablation"] == "none" and "non-finite" in failed["error"]
    assert [r["ablation"] for r in read_rows(tmp_path / "results")] == ["peg"]


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_hydra_multirun_still_runs_ad_hoc_sweeps(fast_overrides, tmp_path):
    args = ["-m", "ablation=none,peg", "seed=0", *fast_overrides]
    out = subprocess.run([sys.executable, "-m", "cpvt_lab.run", *args], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = read_rows(tmp_path / "results")
    assert sorted((r["ablation"], r["seed"]) for r in rows) == [("none", 0), ("peg", 0)]


@pytest.mark.slow
def test_the_whole_paper_grid_runs_at_smoke_scale_and_a_second_start_trains_nothing(tiny_archive, tmp_path):
    overrides = ["scale=smoke", f"data.archive={tiny_archive}", f"data.cache_dir={tmp_path / 'cache'}",
                 "data.subset=null", "data.test_subset=null", "data.batch_size=40", "trainer.enable_progress_bar=false",
                 f"results_dir={tmp_path / 'results'}", f"output_dir={tmp_path / 'outputs'}"]
    count = len({a for g in load_grid("paper") for a in g.ablations})  # one run per ablation at one seed
    report = run_grid("paper", overrides, seeds=[0], out=io.StringIO())
    assert not report.failed and len(report.trained) == count
    again = io.StringIO()
    report = run_grid("paper", overrides, seeds=[0], out=again)
    assert not report.trained and len(report.skipped) == count and "nothing new to train" in again.getvalue()
    rows = read_rows(tmp_path / "results")
    assert len(rows) == len({r["run_id"] for r in rows}) == count


@pytest.mark.slow
def test_two_runners_on_one_results_dir_train_each_run_once(fast_overrides, tmp_path):
    grid = small_grid(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-m", "cpvt_lab.grid", grid, *fast_overrides], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    trained = [line for out in outputs for line in out.splitlines() if line.startswith("  trained: ")]
    assert len(trained) == len(set(trained)) == 4
    rows = read_rows(tmp_path / "results")
    assert len(rows) == len({r["run_id"] for r in rows}) == 4


def test_a_time_budget_starts_no_run_that_would_not_finish_and_the_next_call_goes_on(fast_overrides, tmp_path):
    out = io.StringIO()
    report = run_grid(small_grid(tmp_path), fast_overrides, seeds=[0], out=out, budget_seconds=0.001)
    assert len(report.trained) == 1 and len(report.not_started) == 1  # the first run always starts
    assert "not started, for the time budget (1" in out.getvalue()
    report = run_grid(small_grid(tmp_path), fast_overrides, seeds=[0], out=io.StringIO(), budget_seconds=0.001)
    assert len(report.skipped) == 1 and len(report.trained) == 1 and not report.not_started
    assert len(read_rows(fast_overrides_results(fast_overrides))) == 2


def test_a_budget_holds_after_failed_runs_too(fast_overrides, tmp_path):
    """Failed runs take time as well: a call whose runs all fail still starts none past its budget."""
    out = io.StringIO()
    report = run_grid(small_grid(tmp_path), [*fast_overrides, "optim.lr=1e30", "trainer.limit_train_batches=2"], seeds=[0], out=out,
                      budget_seconds=0.001)  # every run ends in a non-finite loss
    assert len(report.failed) == 1 and len(report.not_started) == 1 and not report.trained


def fast_overrides_results(overrides):
    return next(o.split("=", 1)[1] for o in overrides if o.startswith("results_dir="))


def test_a_negative_budget_is_refused(capsys):
    assert main(["table3", "budget_seconds=-1"]) == 2 and "budget_seconds" in capsys.readouterr().err
