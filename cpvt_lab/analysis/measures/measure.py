"""One finished run measured by one analysis: rebuild its model, take its test images, measure, annotate."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import pandas as pd
import torch

from ...provenance import command_line, device_name
from ...results import Rows
from . import store
from ..frames import load_runs, measured_runs
from ..kinds import MEASURED
from .runs import load_run_model, select_rows, test_images


def measure_run(kind: str, row: dict[str, Any], images: int = 256, size: Optional[int] = None, seed: int = 0,
                **options: Any) -> pd.DataFrame:
    """The run's measurements by the analysis ``kind`` (its own ``options``), each line carrying the run's
    fields and how it was measured."""
    if kind not in MEASURED:
        raise ValueError(f"kind must be one of {tuple(MEASURED)}, got {kind!r}")
    device = "cuda" if torch.cuda.is_available() else "cpu"  # a GPU slot measures on its GPU
    model = load_run_model(row, device)
    size = size or row["train_size"]
    x, y = (t.to(device) for t in test_images(row, limit=images, size=size))
    frame = MEASURED[kind].measure(model, x, y, seed=seed, **options)
    return store.annotate(row, frame, size=size, images=len(x), analysis_seed=seed, device=device_name(),
                          command=command_line())


def stored_or_measured(kind: str, results_dir: str, ablations: Sequence[str], images: int = 32,
                       **options: Any) -> pd.DataFrame:
    """Stored measurements of ``kind``; when none are stored, the finished runs of ``ablations`` measured
    now on a few images (not stored). Says which, and what is missing, so a notebook never hides it. Either way
    only the folder's result runs, with their settings (``frames.measured_runs``)."""
    stored, results = store.load(results_dir, kind), Rows(results_dir)
    if not stored.empty:
        print(f"stored {kind} measurements of {stored.run_id.nunique()} runs from {store.folder(results_dir, kind)}")
        return _of_results(stored, results)
    rows = [r for r in select_rows(results) if r["ablation"] in ablations]
    frames = []
    for row in rows:
        try:
            frames.append(measure_run(kind, row, images=images, **options))
        except FileNotFoundError as err:
            print(f"skipped: {err}")
    absent = sorted(set(ablations) - {r["ablation"] for r in rows})
    print(f"no stored {kind} measurements in {store.folder(results_dir, kind)}: measured now "
          f"{len(frames)} runs on {images} test images each (store them with "
          f"`python -m cpvt_lab.analyze {kind} results_dir={results_dir}`)"
          + (f"; no finished runs of {', '.join(absent)}" if absent else ""))
    return _of_results(pd.concat(frames, ignore_index=True), results) if frames else pd.DataFrame()


def _of_results(frame: pd.DataFrame, results: Rows) -> pd.DataFrame:
    """The measurements of the folder's result runs with their settings (``frames.measured_runs``), saying what
    was left out."""
    frame, notes = measured_runs(frame, load_runs(results))
    for note in notes:
        print(note)
    return frame
