"""Measurements of finished runs, kept beside them: ``<results_dir>/analysis/<kind>/<run_id>.csv``.

One file per run and kind, written atomically and replaced when the run is measured
again, so analyses of different runs never contend and a table is always the union of
whole measurements. Every line carries what the run was (ablation, seed, setting) and
how it was measured (command, device), so a figure can be traced and repeated.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ...atomic import replacing

RUN_FIELDS = ("run_id", "ablation", "pos", "head", "seed", "scale", "dataset", "epochs", "train_size", "model_size")


def folder(results_dir: str | Path, kind: str) -> Path:
    return Path(results_dir) / "analysis" / kind


def annotate(row: dict[str, Any], frame: pd.DataFrame, **how: Any) -> pd.DataFrame:
    """``frame`` prefixed by the run's fields and ``how`` it was measured (command, device, images...)."""
    meta = {**{k: row.get(k) for k in RUN_FIELDS}, **how}
    return pd.concat([pd.DataFrame([meta] * len(frame), index=frame.index), frame], axis=1)


def save(results_dir: str | Path, kind: str, frame: pd.DataFrame) -> Path:
    """Write one run's annotated measurements, replacing any earlier ones of that run."""
    run_ids = frame.run_id.unique()
    if len(run_ids) != 1:
        raise ValueError(f"save one run at a time, got run_ids {list(run_ids)}")
    target = folder(results_dir, kind) / f"{run_ids[0]}.csv"
    with replacing(target) as tmp:
        frame.to_csv(tmp, index=False)
    return target


def load(results_dir: str | Path, kind: str) -> pd.DataFrame:
    """Every saved measurement of this kind (empty when none)."""
    files = sorted(folder(results_dir, kind).glob("*.csv"))
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else pd.DataFrame()
