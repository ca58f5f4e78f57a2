"""Every figure of the runs and their analyses, drawn with seaborn.

Runs come as ``frames.table_runs`` gives them (with a ``setting`` label): one panel per setting,
so runs of different scales never share an axis; the spread shown is the std over seeds. The
measured analyses draw the setting with the most runs; the claims, each A - B with its interval.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ..settings import SECTION, SETTING, setting_label
from ..verdicts.stats import VERDICTS


def resolution_plot(runs: pd.DataFrame, title: Optional[str] = None) -> Optional[sns.FacetGrid]:
    """Top-1 against test resolution, one line per ablation (mean over seeds, band = std)."""
    if runs.empty:
        print("no runs to plot")
        return None
    grid = sns.relplot(data=runs, x="size_px", y="top1", hue="ablation", col="setting", col_wrap=1, kind="line",
                       marker="o", errorbar="sd", height=3.5, aspect=1.8, facet_kws={"sharey": False})
    grid.set_axis_labels("test resolution (px)", "top-1 (%)")
    grid.set_titles("{col_name}", size=8)
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid


def train_size_bars(runs: pd.DataFrame, title: Optional[str] = None) -> Optional[sns.FacetGrid]:
    """Top-1 at the training resolution per ablation (bar = mean, whisker = std, dots = seeds)."""
    at_train = runs[runs.size_px == runs.train_size]
    if at_train.empty:
        print("no runs evaluated at their training resolution to plot")
        return None
    grid = sns.catplot(data=at_train, x="ablation", y="top1", col="setting", col_wrap=1, kind="bar",
                       errorbar="sd", height=3.5, aspect=1.8, alpha=0.7, sharey=False)
    grid.map_dataframe(sns.stripplot, x="ablation", y="top1", color="black", size=4)
    grid.set_axis_labels("", "top-1 at the training resolution (%)")
    grid.set_titles("{col_name}", size=8)
    grid.tick_params(axis="x", rotation=30)
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid


CURVE_METRICS = {"train_loss": "training loss", "top1": "top-1 at the training size (%)"}


def curves_plot(curves: pd.DataFrame, title: Optional[str] = None) -> Optional[sns.FacetGrid]:
    """Training loss and top-1 at the training size per epoch, one line per ablation (band = std over seeds)."""
    if curves.empty:
        print("no learning curves to plot")
        return None
    long = curves.melt(id_vars=["ablation", "setting", "epoch", "seed"], value_vars=list(CURVE_METRICS),
                       var_name="metric", value_name="value").dropna(subset=["value"])
    long["metric"] = long.metric.map(CURVE_METRICS)
    grid = sns.relplot(data=long, x="epoch", y="value", hue="ablation", col="metric", row="setting", kind="line",
                       errorbar="sd", height=3, aspect=1.5, facet_kws={"sharey": False})
    settings = long.setting.unique()
    # one setting: its label once, under the figure's title, and each panel titled by its metric alone (the label
    # in every panel title ran into the figure's title); several: each row names its setting
    grid.set_titles("{col_name}" if len(settings) == 1 else "{row_name}\n{col_name}", size=8)
    grid.set_axis_labels("epoch", "")
    for ax in grid.axes.flat:  # whole epochs: a curve has one point per epoch, and no half epochs
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    heading = "\n".join([*([title] if title else []), *([settings[0]] if len(settings) == 1 else [])])
    if heading:
        grid.figure.suptitle(heading, fontsize=9)
        grid.figure.subplots_adjust(top=1 - 0.3 * (heading.count("\n") + 1) / grid.figure.get_figheight())
    return grid


def one_setting(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The lines of the section with the most runs (plots never pool settings), and its label (measurements as
    ``frames.measured_runs`` gives them; without their settings, the readable ``SETTING`` alone tells sections)."""
    keys = [*(SECTION if "recipe_id" in frame.columns else SETTING), "size"]
    counts = frame.groupby(keys).run_id.nunique().sort_values(ascending=False)
    setting = dict(zip(keys, counts.index[0]))
    lines = frame[(frame[keys] == pd.Series(setting)).all(axis=1)]
    return lines, lines.setting.iloc[0] if "setting" in lines.columns else setting_label(setting)


def _chosen(frame: pd.DataFrame, ablations: Optional[Sequence[str]], kind: str):
    """The measurements of ``ablations`` (all by default) in one setting, with its label; None (said) if none."""
    if ablations is not None:
        frame = frame[frame.ablation.isin(ablations)]
    if frame.empty:
        print(f"no {kind} measurements to plot")
        return None
    return one_setting(frame)


def equivariance_plot(frame: pd.DataFrame, ablations: Optional[Sequence[str]] = None):
    """Consistency against shift, and the equivariance error against block for each whole-patch shift, for
    ``ablations`` (in that order; all measured ones by default: a study's 23 are too many lines to tell apart).

    One legend, under the two panels: the ablations (colour) and the shifts (line style) are the same in both,
    and a legend inside a panel of many ablations covers its lines."""
    chosen = _chosen(frame, ablations, "equivariance")
    if chosen is None:
        return None
    frame, label = chosen
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    order = [a for a in ablations if a in set(frame.ablation)] if ablations is not None else None
    sns.lineplot(data=frame[frame.measure == "consistency"], x="shift", y="value", hue="ablation", marker="o",
                 errorbar="sd", ax=left, legend=False, hue_order=order)
    left.set(xlabel="shift (px)", ylabel="unchanged top-1 (%)", title="prediction consistency")
    errors = frame[frame.measure == "equivariance_error"]
    sns.lineplot(data=errors, x="block", y="value", hue="ablation", style="shift", marker="o", errorbar="sd",
                 ax=right, hue_order=order)
    right.set(xlabel="block", ylabel="relative error", title="feature-map equivariance error (whole-patch shifts)")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    if right.get_legend() is not None:
        handles, labels = right.get_legend_handles_labels()
        right.get_legend().remove()
        fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=min(len(labels), 6),
                   frameon=False)
    fig.suptitle(label, fontsize=9)
    return fig


def probe_plot(frame: pd.DataFrame, ablations: Optional[Sequence[str]] = None):
    """Position-probe accuracy against block, one line per ablation of ``ablations`` (all measured ones by
    default), chance dashed; the legend under the panel, where it covers no line."""
    chosen = _chosen(frame, ablations, "probe")
    if chosen is None:
        return None
    frame, label = chosen
    position = frame[frame.target == "position"]
    order = [a for a in ablations if a in set(position.ablation)] if ablations is not None else None
    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    sns.lineplot(data=position, x="block", y="accuracy", hue="ablation", marker="o", errorbar="sd", ax=ax,
                 hue_order=order)
    ax.axhline(position.chance.iloc[0], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="block", ylabel="position probe accuracy (%)")
    fig.suptitle(label, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=min(len(labels), 6),
               frameon=False)
    return fig


VERDICT_COLOURS = dict(zip(VERDICTS, ("tab:green", "tab:red", "tab:grey")))


def claim_labels(verdicts: pd.DataFrame) -> list[str]:
    """Each claim in words, with its section's label where the claims span several (never internal ids)."""
    several = verdicts.setting.dropna().nunique() > 1
    return [f"{r.text} ({r.setting})" if several else r.text for r in verdicts.itertuples()]


def claims_plot(verdicts: pd.DataFrame):
    """Each claim's A - B with its 95% interval (a non-zero margin marked |), coloured by its verdict under Holm."""
    judged = verdicts.dropna(subset=["diff_low"])
    if judged.empty:
        print("no claim has two or more seeds in both cells: nothing to plot")
        return None
    labels = claim_labels(judged)
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(judged) + 1.2))
    ax.hlines(labels, judged.diff_low, judged.diff_high, color=[VERDICT_COLOURS[v] for v in judged.verdict_holm])
    sns.scatterplot(x=judged["diff"].to_numpy(), y=labels, hue=judged.verdict_holm.to_numpy(),
                    palette=VERDICT_COLOURS, ax=ax, zorder=3)
    ax.axvline(0, color="black", linewidth=0.8)
    for label, margin in zip(labels, judged.margin):
        if margin:
            ax.plot([margin], [label], marker="|", color="black", markersize=12)
    ax.set(xlabel="A - B, top-1 points (95% interval: seeds and test images)", ylabel="")
    ax.legend(title="verdict under Holm")
    fig.tight_layout()
    return fig


def save(figure, path: Path, dpi: int) -> Path:
    """Write a figure (a matplotlib figure or a seaborn grid) and close it."""
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure.figure if hasattr(figure, "figure") else figure)
    return path
