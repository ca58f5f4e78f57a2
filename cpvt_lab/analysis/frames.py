"""Finished result rows as pandas frames: per run and test size, per run and epoch, or per cell pooled over seeds.

Every line carries its run's setting (``settings``: the readable ``SETTING`` columns, the
``setting_id`` its seeds pool within, the ``recipe_id`` its table section compares within, and
their labels) and its training ``recipe``, read from the row's recorded config; a row recorded
before a recipe key existed simply lacks it and counts as having it off. One seed recorded twice
in one setting counts once, the later row (``repeated_seeds`` lists the others). Whether a run is
unstable is judged here, from the curve in its row, by ``cpvt_lab.curves.instability`` (a run
without a curve is not judged); a pooled cell leaves unstable runs out and counts them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from ..curves import instability
from ..data.cifar import CIFAR10_IMAGES
from ..results import Rows, rows_of
from ..paper import TABLE_BY_ID, paper_value, reference
from .verdicts import stats
from .settings import SECTION, SETTING, config_value, describe, one_per_seed, setting_fields

# a row from before rows recorded their uncommitted changes (``code_diff``: null there means none in the package)
UNRECORDED = "not recorded"
IDS = ["setting_id", "recipe_id", "setting", "ablation_label"]
RUN_COLUMNS = ["run_id", "ablation", "seed", *SETTING, *IDS, "size_px", "size_rank", "top1", "test_images",
               "finetuned", "curve", "unstable", "instability", "device", "command", "recipe", "git_commit", "code_diff",
               "finished_at"]
CURVE_COLUMNS = ["run_id", "ablation", "seed", *SETTING, *IDS, "epoch", "train_loss", "top1", "lr"]
# the test-set size of each data set (by its data module) when a row records no test_subset
TEST_SET_IMAGES = {"Cifar10JpegDataModule": CIFAR10_IMAGES["test"], "Cifar10DataModule": CIFAR10_IMAGES["test"]}


def count_test_images(row: dict[str, Any]) -> Optional[int]:
    """How many test images the row's top-1 was measured on: recorded, else derived from its config (the
    stratified ``data.test_subset``, else the data set's test set); None when neither says."""
    if row.get("test_images"):
        return int(row["test_images"])
    config = row.get("config") or {}
    classes, subset = config_value(config, "data.num_classes", 1), config_value(config, "data.test_subset", None)
    full = TEST_SET_IMAGES.get(str(config_value(config, "data._target_", "")).rsplit(".", 1)[-1])
    if subset is None:
        return full
    taken = max(1, int(subset) // classes) * classes  # data.subsets.stratified_subset: as many from every class
    return min(taken, full) if full else taken


def _result_rows(results: str | Path | Rows) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    rows, _ = one_per_seed(rows_of(results).finished())
    return rows, describe(rows)


def repeated_seeds(results: str | Path | Rows) -> list[tuple[dict, dict]]:
    """(row left out, the later row that counts instead) for every seed recorded twice in one setting."""
    return one_per_seed(rows_of(results).finished())[1]


def _run_fields(row: dict[str, Any], ids: pd.DataFrame) -> dict[str, Any]:
    return {"run_id": row["run_id"], "ablation": row["ablation"], "seed": row["seed"],
            **setting_fields(row), **ids.loc[row["run_id"], IDS].to_dict()}


def load_runs(results: str | Path | Rows) -> pd.DataFrame:
    """One line per finished run and test size (a run_id recorded twice counts once, the later row; so does a
    seed recorded twice in one setting), of a results folder or of its rows as a command read them."""
    rows, ids = _result_rows(results)
    records = []
    for r in rows:
        sizes = [int(s) for s in r["top1"]]
        curve = r.get("curve") or {}
        why = instability(curve, config_value(r.get("config") or {}, "optim.warmup_epochs", 0),
                          r.get("curve_split", "test"))
        for size, acc in r["top1"].items():
            records.append({
                **_run_fields(r, ids), "size_px": int(size),
                "size_rank": size_rank(int(size), r["train_size"], sizes), "top1": float(acc),
                "test_images": count_test_images(r), "finetuned": size in r.get("finetuned_sizes", []),
                "curve": bool(curve.get("epoch")), "unstable": bool(why), "instability": why,
                "device": r.get("device"), "command": r.get("command"), "recipe": ids.loc[r["run_id"], "recipe"],
                "git_commit": r.get("git_commit"), "code_diff": r.get("code_diff", UNRECORDED), "finished_at": r.get("finished_at")})
    runs = pd.DataFrame.from_records(records, columns=RUN_COLUMNS)
    return runs.sort_values(["ablation", *SETTING, "setting_id", "seed", "size_px"], ignore_index=True)


def load_curves(results: str | Path | Rows) -> pd.DataFrame:
    """One line per finished run and epoch of its learning curve (runs recorded before curves have none)."""
    rows, ids = _result_rows(results)
    records = []
    for r in rows:
        curve = r.get("curve") or {}
        for i, epoch in enumerate(curve.get("epoch", [])):
            records.append({**_run_fields(r, ids), "epoch": epoch,
                            **{c: curve[c][i] for c in ("train_loss", "top1", "lr")}})
    return pd.DataFrame.from_records(records, columns=CURVE_COLUMNS)


def size_rank(size: int, train_size: int, sizes: Sequence[int]) -> int:
    """0 for the training size, k for the k-th size above it, -k for the k-th below."""
    if size >= train_size:
        return sum(train_size < s <= size for s in set(sizes))
    return -sum(size <= s < train_size for s in set(sizes))


def with_setting(runs: pd.DataFrame, ablations: Sequence[str]) -> pd.DataFrame:
    """The lines of these ablations, in this order, as the plots want them: ``ablation`` is the label a table
    shows (with its setting id where one section holds several settings of it), ``setting`` the section's."""
    runs = runs[runs.ablation.isin(ablations)].copy()
    rank = {a: i for i, a in enumerate(ablations)}
    shown = sorted(set(runs.ablation_label), key=lambda label: (rank[label.split(" · ")[0]], label))
    runs["ablation"] = pd.Categorical(runs.ablation_label, categories=shown, ordered=True)
    order = [c for c in ("setting", "ablation", "seed", "size_px", "epoch") if c in runs.columns]
    return runs.sort_values(order, ignore_index=True)


def table_runs(table_id: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The lines of one paper table's ablations (runs or curves), ordered as the table lists them."""
    return with_setting(runs, TABLE_BY_ID[table_id].ablations)


CELL = [*SECTION, "ablation", "ablation_label", "setting_id", "size_px", "size_rank"]  # one cell of seeds


def _pooled(cell: pd.DataFrame) -> pd.Series:
    stable = cell[~cell.unstable]
    images = int(stable.test_images.min()) if stable.test_images.notna().any() else None
    summary = stats.cell_summary(stable.top1, images)
    return pd.Series({"n": stable.seed.nunique(), "mean": summary.mean, "std": summary.std, "low": summary.low,
                      "high": summary.high, "test_images": images, "finetuned": cell.finetuned.any(),
                      "unstable": cell[cell.unstable].run_id.nunique()})


def pool_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (one setting id, test size): mean, std, n distinct seeds and the 95% interval of the mean
    (``low``, ``high``: seeds and test images, ``stats``; none from one seed), leaving unstable runs out
    (``unstable``: how many) (``runs`` as ``load_runs`` gives them)."""
    columns = ["n", "mean", "std", "low", "high", "test_images", "finetuned", "unstable"]
    if runs.empty:
        return pd.DataFrame(columns=[*CELL, *columns])
    pooled = runs.groupby(CELL, observed=True, dropna=False, sort=True).apply(_pooled)
    return pooled.reset_index()[[*CELL, *columns]]


def table_cells(table_id: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: our mean, std, n and 95% interval per section, ablation and size, and the paper's figure beside
    it (column ``study``: the paper table's id)."""
    paper_table, ref = TABLE_BY_ID[table_id], reference()
    table = pool_seeds(runs[runs.ablation.isin(paper_table.ablations)])
    paper = [paper_value(paper_table, r.ablation, r.size_rank, ref) for r in table.itertuples()]
    px = paper_table.paper_px
    table["paper_px"] = [px[r] if 0 <= r < len(px) else None for r in table.size_rank]
    table["paper_value"] = [v for v, _ in paper]
    table["paper_status"] = [s for _, s in paper]
    table.insert(0, "study", paper_table.id)
    order = {a: i for i, a in enumerate(paper_table.ablations)}
    table = table.sort_values([*SECTION, "ablation", "ablation_label", "size_px"],
                              key=lambda c: c.map(order) if c.name == "ablation" else c, ignore_index=True)
    return table.round({"mean": 2, "std": 2, "low": 2, "high": 2})


def measured_runs(frame: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Stored measurements (``store.load``) of the result runs among ``runs``, with their setting columns (``IDS``;
    ``ablation`` becomes the label a table shows), and sentences on those left out: unstable runs, and runs that
    are no result of the folder (set aside, a seed recorded twice, or gone from its rows)."""
    ids = runs.drop_duplicates("run_id").set_index("run_id")[[*IDS, "recipe", "unstable"]]
    known = frame[frame.run_id.isin(ids.index)].drop(columns=[*IDS, "recipe", "unstable"], errors="ignore")
    joined = known.join(ids, on="run_id")
    notes = []
    if frame.run_id.nunique() > known.run_id.nunique():
        notes.append(f"Left out: the measurements of {frame.run_id.nunique() - known.run_id.nunique()} runs that are "
                     "no result of this folder (set aside, a seed recorded twice, or no longer in its rows).")
    if joined.unstable.any():
        notes.append(f"Left out as unstable: the measurements of {joined[joined.unstable].run_id.nunique()} runs.")
    stable = joined[~joined.unstable.astype(bool)]
    return stable.assign(ablation=stable.ablation_label).drop(columns="unstable"), notes
