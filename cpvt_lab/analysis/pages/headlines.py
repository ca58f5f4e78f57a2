"""A measured analysis's headline numbers beside a paper table's top-1, pooled over seeds with their intervals.

A table whose grid lists ``measured: [equivariance, probe]`` shows, for each of its rows, the few numbers per run
that each of those analyses names as its headline (``MeasuredAnalysis.headline``), measured on the same runs at the
training size. A cell is ``mean ± std [low, high]`` over seeds, the interval that of the top-1 cells
(``stats.cell_summary``): from the seeds' spread, and for a share of images (``images`` given) also from the sampling
of the images every seed was scored on, which more seeds do not shrink (the probe's share is of tokens, many to an
image, but counted as one to an image: its interval errs wide). An interval stops at what a measure can be:
0, and 100 for a share.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ..verdicts import stats
from ..measured import MeasuredAnalysis
from .page_parts import with_interval
from ..settings import SECTION

COLUMNS = [*SECTION, "ablation_label", "measure", "n", "mean", "std", "low", "high", "images"]


def _pooled(cell: pd.DataFrame) -> pd.Series:
    images = int(cell.images.min()) if cell.images.notna().any() else None
    summary = stats.cell_summary(cell.groupby("seed").value.mean(), images)
    # every headline is >= 0 and a share <= 100: an interval reaching past that says no more than the bound
    high = min(summary.high, 100.0) if images else summary.high
    return pd.Series({"n": summary.n, "mean": summary.mean, "std": summary.std, "low": max(summary.low, 0.0),
                      "high": high, "images": images})


def headline_cells(runs: pd.DataFrame, measured: Mapping[str, pd.DataFrame],
                   analyses: Sequence[MeasuredAnalysis]) -> pd.DataFrame:
    """Long table: per section, row label and headline measure, the cell over seeds (``runs``: the table's runs as
    ``frames.load_runs`` gives them; ``measured``: each analysis's stored measurements of the folder's stable runs,
    as ``frames.measured_runs`` gives them)."""
    train = runs[runs.size_rank == 0].drop_duplicates("run_id").set_index("run_id")
    parts = []
    for analysis in analyses:
        frame = measured.get(analysis.name, pd.DataFrame())
        if frame.empty:
            continue
        here = frame[frame.run_id.isin(train.index)]
        here = here[here["size"] == here.run_id.map(train.size_px)]  # measured at the training size
        if here.empty:
            continue
        numbers = analysis.headline(here)
        parts.append(numbers.join(train[[*SECTION, "ablation_label", "seed"]], on="run_id"))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    lines = pd.concat(parts, ignore_index=True)
    pooled = lines.groupby([*SECTION, "ablation_label", "measure"], sort=False, dropna=False).apply(_pooled)
    cells = pooled.reset_index()[COLUMNS].astype({"n": int, "images": "Int64"})
    return cells.round({"mean": 2, "std": 2, "low": 2, "high": 2})


def headline_markdown(cells: pd.DataFrame, labels: Sequence[str], size_px: int, kinds: Sequence[str]) -> list[str]:
    """The lines of one section's headline table (``cells`` of that section), rows in the order of ``labels``;
    ``kinds``: the analyses whose pages give the rest."""
    if cells.empty:
        return []
    cells = cells.assign(cell=[with_interval(m, s, n, lo, hi) for m, s, n, lo, hi
                               in cells[["mean", "std", "n", "low", "high"]].itertuples(index=False)])
    wide = cells.pivot(index="ablation_label", columns="measure", values="cell")
    wide = wide[list(dict.fromkeys(cells.measure))].reindex(labels).fillna("no measurements")
    seeds = cells.groupby("ablation_label").n.max().reindex(labels).fillna(0).astype(int)
    table = wide.reset_index(names="ablation").assign(n=seeds.to_list())
    shares = sorted({int(i) for i in cells.images.dropna()})
    return [f"Measured on the same runs at the training size ({size_px} px): mean ± std over seeds (n) and the 95% "
            "interval of the mean in brackets, from the seeds' spread" + (
                f" and, for a share of images, the sampling of the {' or '.join(map(str, shares))} test images each "
                "seed was scored on" if shares else "") + f"; {' and '.join(f'{k}.md' for k in kinds)} give the rest.",
            "", table.to_markdown(index=False), ""]

