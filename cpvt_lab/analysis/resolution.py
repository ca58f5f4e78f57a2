"""Top-1 against test resolution for each encoding, from the runs already in ``runs.jsonl``.

Nothing is trained or evaluated here: every run records top-1 at each of its
evaluation sizes (the ``top1`` map of its row), so the curve is those figures,
pooled over seeds within one setting (``settings``: one setting id).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from ..paper import T1, T2, TABLE_BY_ID
from .pages import plots
from .frames import pool_seeds, with_setting
from .measured import ComputedAnalysis

# the encodings the paper compares across resolutions (Tables 1 and 2), in its order
ENCODINGS = list(dict.fromkeys(TABLE_BY_ID[T1].ablations + TABLE_BY_ID[T2].ablations))


def curve(runs: pd.DataFrame, ablations: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per-seed top-1 at each test size of the chosen ablations, with a ``setting`` label per line."""
    return with_setting(runs, list(ablations) if ablations is not None else ENCODINGS)


def write(folder, out_dir: str | Path, ablations: Optional[Sequence[str]] = None) -> list[Path]:
    """``resolution.csv`` (mean, std, 95% interval, n per size) and, when there are runs, ``resolution.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = curve(folder.runs, ablations)
    pool_seeds(points).to_csv(out / "resolution.csv", index=False)
    if points.empty:
        (out / "resolution.png").unlink(missing_ok=True)  # a figure of runs that are gone would mislead
        return [out / "resolution.csv"]
    figure = plots.resolution_plot(points, "Top-1 against test resolution (mean ± std over seeds)")
    return [out / "resolution.csv", plots.save(figure, out / "resolution.png", dpi=120)]


ANALYSIS = ComputedAnalysis("resolution", "top-1 against test resolution per encoding (from runs.jsonl; no model is "
                            "loaded)", {"ablations": None}, write)
