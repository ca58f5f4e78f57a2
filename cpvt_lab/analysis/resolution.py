"""Top-1 against test resolution for each encoding, from the runs already in ``runs.jsonl``.

Nothing is trained or evaluated here: every run records top-1 at each of its
evaluation sizes (the ``top1`` map of its row), so the curve is those figures,
pooled over seeds within one setting (``cpvt_lab.tables.SETTING``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from .. import tables
from . import plots

# the encodings the paper compares across resolutions (Tables 1 and 2), in its order
ENCODINGS = list(dict.fromkeys(tables.STUDY_BY_ID[tables.T1].ablations + tables.STUDY_BY_ID[tables.T2].ablations))


def curve(runs: pd.DataFrame, ablations: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per-seed top-1 at each test size of the chosen ablations, with a ``setting`` label per line."""
    chosen = list(ablations) if ablations is not None else ENCODINGS
    runs = runs[runs.ablation.isin(chosen)].copy()
    runs["setting"] = [tables.setting_label(r) for _, r in runs.iterrows()] if len(runs) else []
    runs["ablation"] = pd.Categorical(runs.ablation, categories=[a for a in chosen if a in set(runs.ablation)],
                                      ordered=True)
    return runs.sort_values(["setting", "ablation", "seed", "size_px"], ignore_index=True)


def write_curve(results_dir: str | Path, out_dir: str | Path,
                ablations: Optional[Sequence[str]] = None) -> list[Path]:
    """``resolution.csv`` (mean, std, n per size) and, when there are runs, ``resolution.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = curve(tables.load_runs(results_dir), ablations)
    tables.summarize(points).to_csv(out / "resolution.csv", index=False)
    if points.empty:
        (out / "resolution.png").unlink(missing_ok=True)  # a figure of runs that are gone would mislead
        return [out / "resolution.csv"]
    figure = plots.resolution_plot(points, "Top-1 against test resolution (mean ± std over seeds)")
    figure.savefig(out / "resolution.png", dpi=120, bbox_inches="tight")
    plt.close(figure.figure)
    return [out / "resolution.csv", out / "resolution.png"]
