"""How far from converged the learning curves end: per run (late gains in top-1, final lr) and as the
one line a study page gives each setting.

A cosine schedule ends near its floor lr, which flattens the end of any curve, so a small gain over
the last epochs alone does not show that more epochs would not help: the gain over the second half
and the final lr as a fraction of the peak are given beside it.
"""
from __future__ import annotations

import pandas as pd

LAST_EPOCHS = 10  # the last tenth of the epochs (at least one), in whole epochs
COLUMNS = ["run_id", "epochs", "last_from", "last_gain", "half_from", "half_gain", "final_lr_fraction"]


def late_gains(curves: pd.DataFrame) -> pd.DataFrame:
    """One line per run of ``curves`` (as ``frames.load_curves`` gives them).

    ``last_gain``: top-1 at the last epoch minus top-1 at epoch ``last_from`` (the last tenth of the
    epochs, at least one); ``half_gain``: the same from ``half_from`` (half way); NaN where the curve
    has no such epoch (a one-epoch run). ``final_lr_fraction``: the last lr over the highest recorded.
    """
    records = []
    for run_id, curve in curves.groupby("run_id", sort=False):
        top1 = pd.Series(pd.to_numeric(curve.top1).to_numpy(), index=curve.epoch.astype(int))
        lr = pd.to_numeric(curve.sort_values("epoch").lr)
        last = int(top1.index.max())
        last_from, half_from = last - max(1, last // LAST_EPOCHS), last // 2
        records.append({"run_id": run_id, "epochs": last,
                        "last_from": last_from, "last_gain": top1[last] - top1.get(last_from, float("nan")),
                        "half_from": half_from, "half_gain": top1[last] - top1.get(half_from, float("nan")),
                        "final_lr_fraction": lr.iloc[-1] / lr.max()})
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def convergence_line(curves: pd.DataFrame, n_runs: int) -> str:
    """One line on how far from converged the ``curves`` of a section's ``n_runs`` runs end: medians over runs."""
    gains = late_gains(curves)
    if gains.empty:
        return "How far from converged: no learning curves recorded for these runs."
    if gains.last_gain.isna().all():
        return f"How far from converged: the learning curves ({len(gains)} of {n_runs} runs) have one epoch, no gain."
    return (f"How far from converged ({len(gains)} of {n_runs} runs have learning curves; median over them): top-1 at "
            f"the training size gained {_median_range(gains.last_gain, '+.2f')} points over the last 10% of the "
            f"epochs{_epochs(gains, 'last_from')} and {_median_range(gains.half_gain, '+.2f')} over the second "
            f"half{_epochs(gains, 'half_from')}; the final lr was {_median_range(gains.final_lr_fraction, '.3f')} "
            f"of the peak. A cosine schedule flattens the end of any curve, so a small final gain alone does not "
            f"prove convergence.")


def _median_range(values: pd.Series, fmt: str) -> str:
    values = values.dropna()
    spread = f" (range {values.min():{fmt}} to {values.max():{fmt}})" if len(values) > 1 else ""
    return f"{values.median():{fmt}}{spread}"


def _epochs(gains: pd.DataFrame, start: str) -> str:
    """``(epoch a to b)`` when every run's window is the same (runs of one setting share their epochs)."""
    spans = set(zip(gains[start], gains.epochs))
    if len(spans) != 1:
        return ""
    [(first, last)] = spans
    return f" (epoch {first} to {last})"
