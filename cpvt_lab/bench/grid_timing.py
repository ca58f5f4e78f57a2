"""A short grid timed whole, as a user waits for it: planning, start-up, data, compilation, checks, training,
evaluation, checkpoints and rows of every run, back to back in this process, through the study runner."""
from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
import yaml

from ..ablations import one_grid
from ..results import Rows
from ..study.plan import plan_study
from ..study.runner import run_planned


def time_grid(ablations: Sequence[str], overrides: Sequence[str], epochs: int,
              seeds: Optional[Sequence[int]] = None) -> dict:
    """Train ``ablations`` one after another for ``epochs`` each (with ``seeds``: each of them; else the run's seed);
    images trained over the whole wall time, and over the rows' training seconds."""
    seeds = list(seeds or [int(o.split("=", 1)[1]) for o in overrides if o.split("=", 1)[0] == "seed"][-1:] or [0])
    overrides = [o for o in overrides if o.split("=", 1)[0] != "seed"]  # the grid sets the seed
    with tempfile.TemporaryDirectory() as folder:
        grid = Path(folder) / "bench_grid.yaml"
        grid.write_text(yaml.safe_dump({"ablations": list(ablations)}))
        started = time.perf_counter()
        runs = plan_study(one_grid(str(grid), (*overrides, f"trainer.max_epochs={epochs}", f"results_dir={folder}",
                                               f"output_dir={folder}"), seeds))
        rows = Rows(folder)
        run_planned("bench", runs, rows, out=io.StringIO())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    done = rows.finished()
    images = sum(r["images_trained"] for r in done)
    training = sum(r["train_seconds"] for r in done)  # a stacked row's is its share: the sum is the device's time
    return {"ablations": list(ablations), "seeds": seeds, "epochs": epochs, "runs": len(done), "images": images,
            "wall_seconds": round(wall, 2), "effective_images_per_second": round(images / wall, 1),
            "training_seconds": round(training, 2),
            "training_images_per_second": round(images / training, 1) if training else None,
            "stacked": [r.get("stacked") for r in done], "compiled": [r["compiled"] for r in done]}
