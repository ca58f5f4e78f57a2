"""K seeds' train steps as one stacked step (``cpvt_lab.stacked``), timed on fixed batches beside the single step."""
from __future__ import annotations

import torch

from ..config import build_model
from ..stacked import StackedTraining
from ..stacked.compiled import check_stacked_compiled
from .measurement import Measurement, peak_memory_mb, reset_peak_memory, time_loop


def measure_stacked_step(cfg, device: torch.device, k: int, steps: int, warmup: int,
                         flops_per_image: float) -> Measurement:
    """``k`` networks of ``cfg`` (seeds cfg.seed .. + k - 1), each on its own random batch of the run's size, one
    stacked step for all: images/s counts every seed's images. With ``compile=true`` the stacked forward and loss
    are compiled (inductor, the project's options) and checked against the eager stack first, the verdict beside
    the speed; AdamW, clipping and drop-path as the run config says."""
    batch, size = cfg.data.batch_size, cfg.data.train_size
    models, generators = [], []
    for seed in range(cfg.seed, cfg.seed + k):
        torch.manual_seed(seed)
        models.append(build_model(cfg))
        generators.append(torch.Generator(device).manual_seed(seed))
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(batch, 3, size, size, generator=generator).to(device),
                torch.randint(0, cfg.data.num_classes, (batch,), generator=generator).to(device)) for _ in range(k)]
    training = StackedTraining(models, generators, cfg, batch, total_steps=steps + warmup, max_epochs=1,
                               device=device, precision=cfg.trainer.precision)
    check = None
    if cfg.compile:  # checked against the eager stack first (which also compiles it, outside the warm-up)
        training.compile()
        check = check_stacked_compiled(training, [batches]).as_dict()
    reset_peak_memory(device)
    seconds, warmup_seconds = time_loop(lambda: training.step(batches), steps, warmup, device)
    how = "compiled" if cfg.compile else "eager"
    return Measurement(f"stacked[{cfg.ablation_name}]", f"{k} seeds' train steps as one stacked step, {how}",
                       k * batch * steps, seconds, warmup_seconds, flops_per_image, peak_memory_mb(device),
                       cfg.ablation_name, compiled=bool(cfg.compile), compile_check=check)
