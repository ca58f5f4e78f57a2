"""Seaborn plots of a study's runs (as returned by ``cpvt_lab.tables.study_runs``).

Each function draws one panel per setting (scale, data, epochs, training size), so runs
of different scales never share an axis; the spread shown is the std over seeds.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd
import seaborn as sns


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


def curves_plot(curves: pd.DataFrame, title: Optional[str] = None) -> Optional[sns.FacetGrid]:
    """Training loss and top-1 at the training size per epoch, one line per ablation (band = std over seeds)."""
    if curves.empty:
        print("no learning curves to plot")
        return None
    long = curves.melt(id_vars=["ablation", "setting", "epoch", "seed"], value_vars=["train_loss", "top1"],
                       var_name="metric", value_name="value").dropna(subset=["value"])
    grid = sns.relplot(data=long, x="epoch", y="value", hue="ablation", col="metric", row="setting", kind="line",
                       errorbar="sd", height=3, aspect=1.5, facet_kws={"sharey": False})
    grid.set_titles("{row_name}\n{col_name}", size=7)
    grid.set_axis_labels("epoch", "")
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid
