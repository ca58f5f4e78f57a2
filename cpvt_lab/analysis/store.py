"""Measurements of finished runs, kept beside them: ``<results_dir>/analysis/<kind>/<run_id>.csv``.

One file per run and kind, written atomically and replaced when the run is measured
again, so analyses of different runs never contend and a table is always the union of
whole measurements. Every line carries what the run was (ablation, seed, setting) and
how it was measured (command, device), so a figure can be traced and repeated.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

RUN_FIELDS = ("run_id", "ablation", "pos", "head", "seed", "scale", "dataset", "epochs", "train_size", "model_size")


def folder(results_dir: str | Path, kind: str) -> Path:
    return Path(results_dir) / "analysis" / kind


def save(results_dir: str | Path, kind: str, row: dict[str, Any], frame: pd.DataFrame, **how: Any) -> Path:
    """Write one run's measurements, prefixed by the run's fields and ``how`` (command, device, images...)."""
    target = folder(results_dir, kind) / f"{row['run_id']}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = {**{k: row.get(k) for k in RUN_FIELDS}, **how}
    out = pd.concat([pd.DataFrame([meta] * len(frame), index=frame.index), frame], axis=1)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            out.to_csv(f, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load(results_dir: str | Path, kind: str) -> pd.DataFrame:
    """Every saved measurement of this kind (empty when none)."""
    files = sorted(folder(results_dir, kind).glob("*.csv"))
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else pd.DataFrame()
