"""DDP: two CPU processes (gloo) give one row whose accuracy is the single-process accuracy of the same checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate

from cpvt_lab import build_model, compose
from cpvt_lab.config import ConfigError
from cpvt_lab.data import TensorBatches
from cpvt_lab.results import DEFAULT_RESULTS_DIR, results_path
from cpvt_lab.run import check_launch
from cpvt_lab.train import run_dir

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_eval_shards_cover_every_image_exactly_once():
    n = 61  # not a multiple of the world size or of the batch
    images, labels = torch.zeros(n, 3, 4, 4, dtype=torch.uint8), torch.arange(n)
    seen = [label for rank in range(3)
            for _, y in TensorBatches(images, labels, 7, MEAN, STD, rank=rank, world_size=3) for label in y.tolist()]
    assert sorted(seen) == list(range(n))


def test_training_shards_are_disjoint_and_equal_in_length():
    n = 50
    images, labels = torch.zeros(n, 3, 4, 4, dtype=torch.uint8), torch.arange(n)
    shards = [[label for _, y in TensorBatches(images, labels, 4, MEAN, STD, train=True, rank=r, world_size=2)
               for label in y.tolist()] for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 24  # 50 -> 48 usable: whole global batches only
    assert not set(shards[0]) & set(shards[1])


def test_ddp_is_refused_inside_a_local_multirun_but_not_on_slurm(monkeypatch):
    cfg = compose("peg", ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu"])
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    check_launch(cfg, multirun=False)
    with pytest.raises(ConfigError, match="trainer.devices: DDP"):
        check_launch(cfg, multirun=True)
    monkeypatch.setenv("SLURM_NTASKS", "2")  # srun starts the ranks: no re-launch of the command line
    check_launch(cfg, multirun=True)
    check_launch(compose("peg", []), multirun=True)


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_ddp_on_two_cpu_processes_writes_one_row_equal_to_single_process_evaluation(tiny_archive, tmp_path):
    overrides = [f"data.archive={tiny_archive}", f"data.cache_dir={tmp_path / 'cache'}", "data.subset=null",
                 "data.test_subset=null", "data.batch_size=20", "data.eval_batch_size=7", "trainer.max_epochs=1",
                 "trainer.enable_progress_bar=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "cpvt_lab.run", "ablation=peg", "trainer=ddp", "trainer.devices=2",
                          "trainer.accelerator=cpu", *overrides], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "distributed_backend=gloo" in out.stdout + out.stderr
    assert out.stdout.count("done: peg") == 1  # one summary, from rank 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "outputs"]  # no Hydra folders
    [line] = results_path(tmp_path / DEFAULT_RESULTS_DIR).read_text().splitlines()
    row = json.loads(line)
    assert row["status"] == "ok" and row["config"]["trainer"]["devices"] == 2

    cfg = compose("peg", overrides + [f"output_dir={tmp_path / 'outputs'}"])
    checkpoint = run_dir(cfg, row["run_id"]) / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    model = build_model(cfg)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    model.eval()
    data = instantiate(cfg.data)
    data.setup("validate")
    for size in cfg.data.eval_sizes:
        correct = total = 0
        with torch.no_grad():
            for x, y in data.eval_dataloader(size):
                correct += int((model(x).argmax(-1) == y).sum())
                total += len(y)
        assert total == 60
        assert row["top1"][str(size)] == round(100.0 * correct / total, 3)
