"""A short grid timed whole, as a user waits for it: planning, start-up, data, compilation, checks, training,
evaluation, checkpoints and rows of every run, back to back in this process, through the study runner."""
from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch
import yaml

from ..ablations import one_grid
from ..results import Rows
from ..study.plan import plan_study
from ..study.runner import run_planned


def time_grid(ablations: Sequence[str], overrides: Sequence[str], epochs: int) -> dict:
    """Train ``ablations`` one after another for ``epochs`` each; images trained over the whole wall time."""
    seeds = [int(o.split("=", 1)[1]) for o in overrides if o.split("=", 1)[0] == "seed"] or [0]
    overrides = [o for o in overrides if o.split("=", 1)[0] != "seed"]  # the grid sets the seed
    with tempfile.TemporaryDirectory() as folder:
        grid = Path(folder) / "bench_grid.yaml"
        grid.write_text(yaml.safe_dump({"ablations": list(ablations)}))
        started = time.perf_counter()
        runs = plan_study(one_grid(str(grid), (*overrides, f"trainer.max_epochs={epochs}", f"results_dir={folder}",
                                               f"output_dir={folder}"), seeds[-1:]))
        rows = Rows(folder)
        run_planned("bench", runs, rows, out=io.StringIO())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    done = rows.finished()
    images = sum(r["images_trained"] for r in done)
    return {"ablations": list(ablations), "epochs": epochs, "runs": len(done), "images": images,
            "wall_seconds": round(wall, 2), "effective_images_per_second": round(images / wall, 1),
            "training_seconds": round(sum(r["train_seconds"] for r in done), 2),
            "compiled": [r["compiled"] for r in done]}
