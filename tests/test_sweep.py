"""A grid as Hydra multiruns through the submitit launcher: workers sharing one results_dir record every run once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpvt_lab import compose
from cpvt_lab.fingerprint import run_id
from cpvt_lab.study.plan import plan_grid as plan
from cpvt_lab.results import claim, read_rows, results_path
from cpvt_lab.sweep import main as sweep_main
from cpvt_lab.sweep import sweep_commands
from cpvt_lab.train import run_experiment


def two_grids_sharing_a_run(tmp_path) -> str:
    (tmp_path / "a.yaml").write_text("ablations: [peg, none]\nseeds: [0]\n")
    (tmp_path / "b.yaml").write_text("ablations: [none, sincos]\nseeds: [0]\n")
    (tmp_path / "both.yaml").write_text(f"include: [{tmp_path / 'a.yaml'}, {tmp_path / 'b.yaml'}]\n")
    return str(tmp_path / "both.yaml")


def test_a_grid_becomes_one_multirun_per_plain_grid_on_slurm_by_default(fast_overrides, tmp_path):
    commands = sweep_commands(two_grids_sharing_a_run(tmp_path), fast_overrides, seeds=[0, 1])
    assert len(commands) == 2
    assert all(c[1:5] == ["-m", "cpvt_lab.run", "-m", "hydra/launcher=slurm"] for c in commands)
    assert "ablation=peg,none" in commands[0] and "seed=0,1" in commands[0]


def test_a_grids_settings_become_one_multirun_each_with_their_changes_last(fast_overrides, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("ablations: [peg_gap]\nsettings:\n  plain: []\n  nomix: [optim.mixup=0, optim.cutmix=0]\n")
    plain, nomix = sweep_commands(str(path), [*fast_overrides, "optim.mixup=0.8"])
    assert plain[-1] == "optim.mixup=0.8"
    assert nomix[-3:] == ["optim.mixup=0.8", "optim.mixup=0", "optim.cutmix=0"]  # Hydra: the last value wins


def test_the_slurm_launcher_config_asks_for_one_task_per_ddp_rank():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    with initialize_config_module("cpvt_lab.conf", version_base="1.3"):
        cfg = hydra_compose("config", ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                                       "trainer.num_nodes=2"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)


def test_a_bad_value_stops_the_sweep_before_anything_is_submitted(fast_overrides, tmp_path, capsys):
    assert sweep_main([two_grids_sharing_a_run(tmp_path), *fast_overrides, "model.pos.kernel=4"]) == 2
    assert "odd" in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "results").exists()


@pytest.mark.slow  # 18 s; in CI, test_grid's two runners on one results folder cover the shared claim
def test_local_submitit_workers_sharing_results_dir_record_every_run_once(fast_overrides, tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("ablations: [peg, none]\nseeds: [0]\n")
    (tmp_path / "b.yaml").write_text("ablations: [none]\nseeds: [0]\n")
    (tmp_path / "both.yaml").write_text(f"include: [{tmp_path / 'a.yaml'}, {tmp_path / 'b.yaml'}]\n")
    grid = str(tmp_path / "both.yaml")
    expected = {run.run_id for run in plan(grid, fast_overrides)}
    assert len(expected) == 2  # `none` is in both grids: two workers race for it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert sweep_main([grid, "hydra/launcher=local", *fast_overrides]) == 0
    rows = [json.loads(line) for line in results_path(tmp_path / "results").read_text().splitlines()]
    assert sorted(r["run_id"] for r in rows) == sorted(expected)
    assert all(r["status"] == "ok" for r in rows)
    logs = list((tmp_path / "outputs" / "sweep" / "submitit").glob("*/*_log.out"))
    assert len(logs) == 3  # one process per task of the two multiruns
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["a.yaml", "b.yaml", "both.yaml", "cache", "outputs", "results"]  # nothing in the cwd


def test_a_run_claimed_by_another_worker_is_left_to_it(fast_overrides):
    cfg = compose("none", fast_overrides)
    with claim(cfg.results_dir, run_id(cfg)) as claimed:  # another worker, training it now
        assert claimed
        row = run_experiment(cfg)
    assert row["in_progress"] and row["skipped"] and "top1" not in row
    assert read_rows(cfg.results_dir, status=None) == [] and not (Path(cfg.output_dir) / "runs").exists()
    assert "top1" in run_experiment(cfg)  # the claim died with its holder: the run is free again


def test_dry_run_prints_the_multirun_commands_and_submits_nothing(fast_overrides, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert sweep_main([two_grids_sharing_a_run(tmp_path), "dry_run=true", *fast_overrides]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("python -m cpvt_lab.run -m hydra/launcher=slurm") for line in lines)
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "results").exists()
