"""A short grid timed whole, as a user waits for it: start-up, data, compilation, checks, training,
evaluation, checkpoints and rows of every run, back to back in this process."""
from __future__ import annotations

import tempfile
import time
from typing import Sequence

import torch

from ..config import compose
from ..train import run_experiment


def time_grid(ablations: Sequence[str], overrides: Sequence[str], epochs: int) -> dict:
    """Train ``ablations`` one after another for ``epochs`` each; images trained over the whole wall time."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        rows = [run_experiment(compose(a, [*overrides, f"trainer.max_epochs={epochs}", f"results_dir={folder}",
                                           f"output_dir={folder}", "trainer.enable_progress_bar=false"]))
                for a in ablations]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    images = sum(r["images_trained"] for r in rows)
    return {"ablations": list(ablations), "epochs": epochs, "runs": len(rows), "images": images,
            "wall_seconds": round(wall, 2), "effective_images_per_second": round(images / wall, 1),
            "training_seconds": round(sum(r["train_seconds"] for r in rows), 2),
            "compiled": [r["compiled"] for r in rows]}
