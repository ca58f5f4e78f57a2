"""Gradient clipping (the official CPVT recipe clips) works with the optimiser the recipe uses."""
from __future__ import annotations

import pytest
import torch

from cpvt_lab import compose
from cpvt_lab import module as module_lib
from cpvt_lab.fingerprint import run_id
from cpvt_lab.train import run_experiment

pytestmark = pytest.mark.usefixtures("single_thread")
CLIP = ["trainer.gradient_clip_val=1.0", "trainer.precision=bf16-mixed"]


def test_fused_adamw_only_on_a_gpu_and_only_without_clipping():
    assert module_lib.use_fused_adamw(torch.device("cuda"), clipping=False)
    assert not module_lib.use_fused_adamw(torch.device("cuda"), clipping=True)
    assert not module_lib.use_fused_adamw(torch.device("cpu"), clipping=False)


def test_lightning_refuses_to_clip_before_a_fused_adamw(fast_overrides, monkeypatch):
    """Why the rule exists: the failure a clipped run on a GPU met (reproduced with a fused CPU AdamW)."""
    monkeypatch.setattr(module_lib, "use_fused_adamw", lambda device, clipping: True)
    with pytest.raises(RuntimeError, match="does not allow for gradient clipping"):
        run_experiment(compose("peg", fast_overrides + CLIP))


def test_a_clipped_run_trains_where_fused_adamw_would_be_used(fast_overrides, monkeypatch):
    monkeypatch.setattr(module_lib, "use_fused_adamw", lambda device, clipping: not clipping)  # as on a GPU
    row = run_experiment(compose("peg", fast_overrides + CLIP))
    assert row["status"] == "ok" and row["config"]["trainer"]["gradient_clip_val"] == 1.0


def test_clipping_is_part_of_what_a_run_measures_and_unset_keeps_old_run_ids():
    plain = compose("peg", ["scale=smoke"])
    assert run_id(compose("peg", ["scale=smoke", "trainer.gradient_clip_val=null"])) == run_id(plain)
    assert run_id(compose("peg", ["scale=smoke", "trainer.gradient_clip_val=1.0"])) != run_id(plain)
