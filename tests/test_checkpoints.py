"""Checkpoints: every `checkpoint_every` epochs (the resume point), and always the final weights."""
from __future__ import annotations

import pytest
import torch

from cpvt_lab import compose
from cpvt_lab.fingerprint import run_id
from cpvt_lab.train import run_dir, run_experiment

pytestmark = pytest.mark.usefixtures("single_thread")




@pytest.mark.parametrize("every, epochs", [(2, 3), (1, 2), (3, 3)])
def test_the_checkpoint_holds_the_final_weights_whatever_the_period(fast_overrides, every, epochs):
    cfg = compose("peg", fast_overrides + [f"trainer.max_epochs={epochs}", f"checkpoint_every={every}"])
    row = run_experiment(cfg)
    state = torch.load(run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["global_step"] == epochs  # the weights after every step (one batch per epoch here)
    assert row["status"] == "ok"


def test_the_period_is_not_part_of_what_a_run_measures():
    assert run_id(compose("peg", ["checkpoint_every=5"])) == run_id(compose("peg"))
