"""Every named ablation runs end to end; the run CLI, result rows, seeds and bad names behave."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch

from cpvt_lab import build_model, compose
from cpvt_lab.ablations import load_grid, names
from cpvt_lab.config import ConfigError, ablation_names
from cpvt_lab.fingerprint import run_id
from cpvt_lab.module import NonFiniteLossError
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.results import (
    DEFAULT_RESULTS_DIR,
    DEFAULT_TABLES_DIR,
    read_rows,
    results_path,
)
from cpvt_lab.train import run_dir, run_experiment

REQUIRED = {"run_id", "ablation", "pos", "head", "seed", "dataset", "scale", "epochs", "params", "train_seconds",
            "images_per_second", "top1", "device", "versions", "git_commit", "status", "config"}
def test_every_ablation_a_grid_names_is_an_ablation_file():
    named = {a for grid in names("grid") for g in load_grid(grid) for a in g.ablations}  # load_grid checks them too
    assert named <= set(ablation_names()) and {g.name for g in load_grid("paper")} <= set(names("grid"))


@pytest.mark.parametrize("ablation", ablation_names())
def test_every_ablation_trains_a_step_and_evaluates_at_two_sizes(ablation, fast_overrides):
    cfg = compose(ablation, fast_overrides)
    row = run_experiment(cfg)
    assert REQUIRED <= set(row)
    assert row["status"] == "ok" and row["ablation"] == ablation
    assert set(row["top1"]) == {"32", "48"} and all(0 <= v <= 100 for v in row["top1"].values())
    assert row["dataset"] == "CIFAR-10, JPEG copy"
    if ablation == "interpolated":
        assert row["finetuned_sizes"] == ["48"]
    assert [r["run_id"] for r in read_rows(cfg.results_dir)] == [row["run_id"]]


def test_frozen_peg_weights_do_not_change_while_the_rest_trains(fast_overrides):
    cfg = compose("frozen_peg", fast_overrides)
    run_experiment(cfg)
    state = torch.load(run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    pl.seed_everything(cfg.seed, verbose=False)  # as run_experiment does before building the model
    initial = build_model(cfg).state_dict()
    for name, value in initial.items():
        trained = state[f"model.{name}"]
        if name.startswith("pos_encoding."):
            assert torch.equal(trained, value), name
    assert not torch.equal(state["model.head.weight"], initial["head.weight"])


def test_same_seed_gives_the_same_result_on_cpu(fast_overrides, tmp_path):
    overrides = [o for o in fast_overrides if not o.startswith(("results_dir", "output_dir"))]
    rows = [run_experiment(compose("peg", overrides + [f"results_dir={tmp_path / k}", f"output_dir={tmp_path / k}"]))
            for k in ("a", "b")]
    assert rows[0]["top1"] == rows[1]["top1"] and rows[0]["run_id"] == rows[1]["run_id"]


def test_run_id_is_stable_and_ignores_paths_but_not_seeds(fast_overrides):
    a = compose("peg", fast_overrides)
    b = compose("peg", fast_overrides + ["results_dir=/elsewhere", "output_dir=/tmp/x"])
    c = compose("peg", fast_overrides + ["seed=1"])
    assert run_id(a) == run_id(b) != run_id(c)


def test_a_finished_run_is_not_trained_or_recorded_twice(fast_overrides):
    cfg = compose("none", fast_overrides)
    first = run_experiment(cfg)
    second = run_experiment(cfg)
    assert second["skipped"] and second["run_id"] == first["run_id"]
    assert len(read_rows(cfg.results_dir)) == 1


def test_rerun_trains_a_finished_run_again_and_keeps_the_old_row_as_superseded(fast_overrides):
    from cpvt_lab.results import Rows

    first = run_experiment(compose("none", fast_overrides))
    cfg = compose("none", [*fast_overrides, "rerun=true"])
    second = run_experiment(cfg)
    assert not second.get("skipped") and second["run_id"] == first["run_id"] == run_id(cfg)  # rerun: same run
    rows = Rows(cfg.results_dir)
    assert [r["finished_at"] for r in rows.all] == [first["finished_at"], second["finished_at"]]  # nothing deleted
    assert rows.finished() == [second] and second["supersedes"] == first["finished_at"]
    kept = [p.name for p in run_dir(cfg, first["run_id"]).parent.iterdir() if ".superseded-" in p.name]
    assert len(kept) == 1  # the old run's folder (its checkpoint) set aside, not resumed from


def test_a_failing_run_writes_a_failed_row_and_no_success_row(fast_overrides):
    # an absurd lr: the second step's loss is NaN (a missing archive is now caught by validation)
    cfg = compose("peg", fast_overrides + ["optim.lr=1e30", "trainer.limit_train_batches=2"])
    with pytest.raises(NonFiniteLossError, match="non-finite training loss"):
        run_experiment(cfg)
    assert read_rows(cfg.results_dir) == []
    [failed] = read_rows(cfg.results_dir, status="failed")
    assert failed["error"].startswith("NonFiniteLossError: non-finite training loss")


def test_compose_rejects_unknown_ablations_with_the_valid_names():
    with pytest.raises(ConfigError, match="peg_nopad"):
        compose("no_such_thing")


def cli(args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "cpvt_lab.run", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_unknown_ablation_exits_nonzero_lists_valid_names_and_writes_nothing(tmp_path):
    out = cli(["ablation=no_such_thing"], tmp_path)
    assert out.returncode != 0
    assert "frozen_peg" in out.stderr + out.stdout and "peg27_at_m1" in out.stderr + out.stdout
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_value_exits_nonzero_names_the_key_and_writes_nothing(tmp_path):
    out = cli(["ablation=peg", "model.pos.kernel=4"], tmp_path)
    assert out.returncode == 2
    assert "model.pos" in out.stderr and "odd" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_runs_an_ablation_and_appends_exactly_one_row_under_outputs(tiny_archive, tmp_path):
    work = tmp_path / "work"  # the working directory, with results_dir and output_dir left at their defaults
    work.mkdir()
    args = ["ablation=frozen_peg", f"data.archive={tiny_archive}", f"data.cache_dir={tmp_path / 'cache'}",
            "data.subset=null", "data.test_subset=null", "data.batch_size=40", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false"]
    out = cli(args, work)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "top1@32=" in out.stdout and "top1@48=" in out.stdout
    rows = results_path(work / DEFAULT_RESULTS_DIR)
    lines = rows.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["ablation"] == "frozen_peg"
    assert [p.name for p in work.iterdir()] == ["outputs"]  # nothing beside what git ignores
    again = cli(args, work)
    assert again.returncode == 0 and "already done" in again.stdout
    assert len(rows.read_text().splitlines()) == 1


def test_default_paths_are_ones_git_ignores():
    """A run, or the tables, with default paths never change a tracked file (`make run` leaves git status clean)."""
    cfg = compose("peg")
    assert cfg.results_dir == DEFAULT_RESULTS_DIR  # conf/config.yaml and the readers' default agree
    paths = [str(run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt"), str(results_path(cfg.results_dir)),
             f"{DEFAULT_TABLES_DIR}/README.md"]
    check = subprocess.run(["git", "check-ignore", "--verbose", "--non-matching", *paths], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    if check.returncode == 128:
        pytest.skip(f"not a git checkout: {check.stderr.strip()}")
    not_ignored = [line.split("\t")[-1] for line in check.stdout.splitlines() if line.startswith("::")]
    assert not_ignored == []
