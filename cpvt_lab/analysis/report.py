"""Markdown and CSV tables of the analyses, regenerated from ``<results_dir>``.

``write_reports`` is what ``python -m cpvt_lab.tables`` calls besides the paper's
tables: equivariance and probe tables from the stored measurements
(``<results_dir>/analysis/<kind>/``), the resolution curve and the claims' verdicts
from ``runs.jsonl``. Cells are mean ± std over seeds (n runs), pooled only
within one setting.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .. import tables
from . import claims, resolution, store

def _cells(frame: pd.DataFrame, index: list[str], column: str, value: str, fmt: str) -> pd.DataFrame:
    """Wide table: ``index`` down, ``column`` across, each cell mean ± std (one value: the value alone)."""
    agg = frame.groupby([*index, column], sort=False).agg(mean=(value, "mean"), std=(value, "std"),
                                                          n=("run_id", "nunique")).reset_index()
    agg["cell"] = [format(m, fmt) if n < 2 else f"{m:{fmt}} ± {s:{fmt}}" for m, s, n in zip(agg["mean"], agg["std"], agg.n)]
    wide = agg.pivot(index=index, columns=column, values="cell")
    wide.columns = [f"{column} {c}" for c in wide.columns]
    n = agg.groupby(index, sort=False).n.max()
    return wide.join(n).reset_index()


def _sections(frame: pd.DataFrame, keys: list[str], render: Callable[[pd.DataFrame], list[str]]) -> list[str]:
    parts: list[str] = []
    for key, group in frame.groupby(keys, sort=False):
        setting = dict(zip(keys, key))
        parts += [f"## {tables.setting_label(setting)}" + "".join(f" · {k} {setting[k]}" for k in keys
                                                                      if k not in tables.SETTING), ""]
        if setting["scale"] == "smoke":
            parts += [tables.SMOKE_NOTE, ""]
        parts += render(group)
    return parts


def equivariance_markdown(frame: pd.DataFrame, results_dir: str | Path) -> str:
    parts = ["# Translation equivariance, measured", "",
             f"{tables.regenerated_from(results_dir, 'analysis/equivariance/')} (measure with "
             f"`python -m cpvt_lab.analyze equivariance ablations=[...] results_dir={Path(results_dir).as_posix()}`). "
             "Test images shifted s px down and right, "
             "the vacated border filled with zeros (the data set's mean colour) unless `fill` says cyclic. "
             "Consistency: share of images whose top-1 class is unchanged (%). Equivariance error: "
             "|F(shift x) - shift F(x)| / |shift F(x)| over the overlap of the patch-token maps leaving each block, "
             "for whole-patch shifts only (a sub-patch shift is no translation of the token grid). "
             "Cells: mean ± std over seeds; n runs.", ""]
    if frame.empty:
        return "\n".join(parts + ["_No measurements yet._", ""])

    def render(group: pd.DataFrame) -> list[str]:
        preds, errors = group[group.block == -1], group[group.measure == "equivariance_error"]
        return ["Prediction consistency (%) under a shift of s px:", "",
                _cells(preds[preds.measure == "consistency"], ["ablation"], "shift", "value", ".1f")
                .to_markdown(index=False), "",
                "Top-1 (%) under a shift of s px (s = 0: unshifted):", "",
                _cells(preds[preds.measure == "accuracy"], ["ablation"], "shift", "value", ".1f")
                .to_markdown(index=False), "",
                "Equivariance error (x100) of the patch tokens leaving each block, per whole-patch shift (px):", "",
                _cells(errors.assign(value=100 * errors.value), ["ablation", "shift"], "block", "value", ".1f")
                .to_markdown(index=False), ""]

    return "\n".join(parts + _sections(frame, [*tables.SETTING, "fill", "size"], render))


def probe_markdown(frame: pd.DataFrame, results_dir: str | Path) -> str:
    parts = ["# Does a token know where it is? A linear probe for absolute position", "",
             f"{tables.regenerated_from(results_dir, 'analysis/probe/')} (measure with "
             f"`python -m cpvt_lab.analyze probe ablations=[...] results_dir={Path(results_dir).as_posix()}`). "
             "A multinomial logistic regression reads each "
             "patch token leaving block k (before any PEG placed after block k, whose effect shows from block k+1) "
             "and names its cell among the N = rows x cols of the grid; row and column "
             "accuracy come from the same predictions. Trained on the tokens of half the images, scored on the "
             "other half. Accuracy (%) as mean ± std over seeds; `none` is the floor that image content alone "
             "gives. The paper's mechanism predicts zero padding (`peg`) above circular (`peg_circular`) and no "
             "padding (`peg_nopad`).", ""]
    if frame.empty:
        return "\n".join(parts + ["_No measurements yet._", ""])

    def render(group: pd.DataFrame) -> list[str]:
        out = []
        for target in ("position", "row", "col"):
            here = group[group.target == target]
            out += [f"Probe accuracy for the token's {target} (chance {here.chance.iloc[0]:.1f}%), per block:", "",
                    _cells(here, ["ablation"], "block", "accuracy", ".1f").to_markdown(index=False), ""]
        return out

    return "\n".join(parts + _sections(frame, [*tables.SETTING, "size"], render))


def one_setting(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The lines of the setting with the most runs (plots never pool settings), and its label."""
    keys = [*tables.SETTING, "size"]
    counts = frame.groupby(keys).run_id.nunique().sort_values(ascending=False)
    setting = dict(zip(keys, counts.index[0]))
    return frame[(frame[keys] == pd.Series(setting)).all(axis=1)], tables.setting_label(setting)


def equivariance_plot(frame: pd.DataFrame):
    """Consistency against shift, and the equivariance error against block for each whole-patch shift."""
    if frame.empty:
        print("no equivariance measurements to plot")
        return None
    frame, label = one_setting(frame)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.lineplot(data=frame[frame.measure == "consistency"], x="shift", y="value", hue="ablation", marker="o",
                 errorbar="sd", ax=left)
    left.set(xlabel="shift (px)", ylabel="unchanged top-1 (%)", title="prediction consistency")
    errors = frame[frame.measure == "equivariance_error"]
    sns.lineplot(data=errors, x="block", y="value", hue="ablation", style="shift", marker="o", errorbar="sd",
                 ax=right)
    right.set(xlabel="block", ylabel="relative error", title="feature-map equivariance error (whole-patch shifts)")
    fig.suptitle(label, fontsize=9)
    fig.tight_layout()
    return fig


def probe_plot(frame: pd.DataFrame):
    """Position-probe accuracy against block, one line per ablation, chance dashed."""
    if frame.empty:
        print("no probe measurements to plot")
        return None
    frame, label = one_setting(frame)
    position = frame[frame.target == "position"]
    ax = sns.lineplot(data=position, x="block", y="accuracy", hue="ablation", marker="o", errorbar="sd")
    ax.axhline(position.chance.iloc[0], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="block", ylabel="position probe accuracy (%)", title=label)
    ax.title.set_fontsize(9)
    return ax.figure


def write_measured(kind: str, results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """``<kind>.md`` and ``<kind>.csv`` (every stored measurement) for equivariance or probe."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = store.load(results_dir, kind)
    frame.to_csv(out / f"{kind}.csv", index=False)
    (out / f"{kind}.md").write_text(MARKDOWN[kind](frame, results_dir))
    return [out / f"{kind}.md", out / f"{kind}.csv"]


MARKDOWN = {"equivariance": equivariance_markdown, "probe": probe_markdown}


def write_reports(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Every analysis table and figure into ``out_dir``; returns the files written."""
    written = claims.write_claims(results_dir, out_dir) + resolution.write_curve(results_dir, out_dir)
    for kind in MARKDOWN:
        written += write_measured(kind, results_dir, out_dir)
    return written
