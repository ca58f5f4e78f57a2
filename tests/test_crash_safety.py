"""Crash safety: a grid killed with SIGKILL at random moments finishes on rerun with every run recorded once,
checkpoints are replaced atomically, and a non-finite loss stops a run with a failed row."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cpvt_lab import compose
from cpvt_lab.study.plan import plan_grid as plan
from cpvt_lab.module import NonFiniteLossError
from cpvt_lab.results import read_rows, results_path
from cpvt_lab.train import AtomicCheckpointIO, run_experiment


def test_a_checkpoint_write_that_dies_halfway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)

    def dies_halfway(self, checkpoint, target, storage_options=None):
        Path(target).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt  # stands for the kill
    monkeypatch.setattr("pytorch_lightning.plugins.io.TorchCheckpointIO.save_checkpoint", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2}, path)
    assert torch.load(path, weights_only=False) == {"epoch": 1}


def test_an_infinite_loss_stops_the_run_with_a_failed_row_and_the_reason(fast_overrides):
    cfg = compose("peg", fast_overrides + ["optim.lr=1e30", "trainer.limit_train_batches=3"])
    with pytest.raises(NonFiniteLossError):
        run_experiment(cfg)
    [row] = read_rows(cfg.results_dir, status=None)
    assert row["status"] == "failed" and "non-finite training loss" in row["error"] and "traceback" in row


def kill_at_random_moments(tmp_path: Path, overrides: list[str], kills: int, seed: int,
                           ablations: str = "peg, none, sincos") -> list[float]:
    """Start the grid and kill it with SIGKILL a random time after it has got going (its start-up, the
    imports, is timed once on the first launch); repeat until ``kills`` kills have landed, then let it finish.
    Returns the random delays (for failure messages)."""
    (tmp_path / "grid.yaml").write_text(f"ablations: [{ablations}]\nseeds: [0]\n")
    command = [sys.executable, "-m", "cpvt_lab.grid", str(tmp_path / "grid.yaml"), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng, delays, startup = random.Random(seed), [], None
    while len(delays) < kills:
        started = time.time()
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while startup is None and proc.poll() is None and not (tmp_path / "outputs" / "runs").exists():
                time.sleep(0.05)
            startup = startup or time.time() - started
            delay = rng.uniform(0.0, 3.0)
            time.sleep(max(0.0, started + startup + delay - time.time()))
            if proc.poll() is not None:
                break  # the grid finished before this kill
            proc.send_signal(signal.SIGKILL)
            delays.append(round(delay, 2))
        finally:
            proc.wait(60)
    final = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    return delays


def assert_every_run_recorded_once(tmp_path: Path, overrides: list[str], delays: list[float]) -> None:
    expected = sorted(run.run_id for run in plan(str(tmp_path / "grid.yaml"), overrides))
    lines = results_path(tmp_path / "results").read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line readable
    assert sorted(r["run_id"] for r in rows) == expected, f"kills after {delays} s"
    assert all(r["status"] == "ok" for r in rows), f"kills after {delays} s"


def crash_overrides(fast_overrides: list[str]) -> list[str]:
    return [o for o in fast_overrides if "limit_train_batches" not in o] + [
        "trainer.max_epochs=3", "+trainer.limit_train_batches=3", "trainer.enable_progress_bar=false"]


@pytest.mark.slow  # about 23 s; test_grid's SIGKILL test holds the same in the default suite
def test_a_grid_killed_twice_at_random_moments_finishes_with_every_run_recorded_once(fast_overrides, tmp_path):
    overrides = crash_overrides(fast_overrides)
    delays = kill_at_random_moments(tmp_path, overrides, kills=2, seed=1)
    assert len(delays) == 2
    assert_every_run_recorded_once(tmp_path, overrides, delays)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_a_grid_killed_six_times_at_random_moments_finishes_with_every_run_recorded_once(
        fast_overrides, tmp_path, seed):
    overrides = crash_overrides(fast_overrides)
    # twice the runs of the two-kill grid, so that six kills land before it is done on a fast machine too
    delays = kill_at_random_moments(tmp_path, overrides, kills=6, seed=seed,
                                    ablations="peg, none, sincos, learned, peg_gap, relative")
    assert len(delays) >= 5, f"the grid finished after only {len(delays)} kills"
    assert_every_run_recorded_once(tmp_path, overrides, delays)
