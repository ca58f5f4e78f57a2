"""Finished result rows as pandas frames: per run and test size, per run and epoch, or per cell pooled over seeds.

Every line carries its run's setting (``SETTING``: never pooled across, so smoke runs never
mix with real ones) and its training ``recipe``, read from the row's recorded config; a row
recorded before a recipe key existed simply lacks it and counts as having it off.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..results import finished_rows
from ..studies import STUDY_BY_ID, paper_value, reference
from . import stats

SETTING = ["scale", "dataset", "epochs", "train_size", "model_size"]  # never pooled across
RUN_COLUMNS = ["run_id", "ablation", "seed", *SETTING, "size_px", "size_rank", "top1", "finetuned", "unstable",
               "device", "command", "recipe"]
CURVE_COLUMNS = ["run_id", "ablation", "seed", *SETTING, "epoch", "train_loss", "top1", "lr"]
# (config key, label, value when the row predates the key): what a training recipe is made of
RECIPE = (("data.augment", "augment", None), ("data.random_erasing", "random erasing", 0),
          ("optim.mixup", "mixup", 0), ("optim.cutmix", "cutmix", 0),
          ("optim.label_smoothing", "label smoothing", 0), ("model.drop_path", "drop path", 0),
          ("optim.weight_decay", "weight decay", 0), ("optim.warmup_epochs", "warm-up epochs", 0),
          ("trainer.gradient_clip_val", "gradient clip", None))


def _config_value(config: dict[str, Any], dotted: str, missing: Any) -> Any:
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            return missing
        config = config[key]
    return missing if config is None else config


def _shown(value: Any) -> str:
    if value is None or value is False:
        return "off"
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def recipe(config: dict[str, Any]) -> str:
    """The training recipe of a recorded config in one line (what a table's numbers depend on besides the setting)."""
    parts = [f"lr {_shown(_config_value(config, 'optim.lr', '?'))} per "
             f"{_shown(_config_value(config, 'optim.lr_batch', '?'))} images"]
    for key, label, missing in RECIPE:
        value = _config_value(config, key, missing)
        parts.append(f"{label} {_shown(value)}")
    return ", ".join(parts)


def size_rank(size: int, train_size: int, sizes: Sequence[int]) -> int:
    """0 for the training size, k for the k-th size above it, -k for the k-th below."""
    if size >= train_size:
        return sum(train_size < s <= size for s in set(sizes))
    return -sum(size <= s < train_size for s in set(sizes))


def load_runs(results_dir: str | Path) -> pd.DataFrame:
    """One line per finished run and test size (a run_id recorded twice counts once, the later row)."""
    records = []
    for r in finished_rows(results_dir):
        sizes = [int(s) for s in r["top1"]]
        for size, acc in r["top1"].items():
            records.append({
                "run_id": r["run_id"], "ablation": r["ablation"], "seed": r["seed"],
                **{k: r.get(k) for k in SETTING}, "size_px": int(size),
                "size_rank": size_rank(int(size), r["train_size"], sizes), "top1": float(acc),
                "finetuned": size in r.get("finetuned_sizes", []), "unstable": bool(r.get("unstable")),
                "device": r.get("device"), "command": r.get("command"), "recipe": recipe(r.get("config") or {})})
    runs = pd.DataFrame.from_records(records, columns=RUN_COLUMNS)
    return runs.sort_values(["ablation", *SETTING, "seed", "size_px"], ignore_index=True)


def load_curves(results_dir: str | Path) -> pd.DataFrame:
    """One line per finished run and epoch of its learning curve (runs recorded before curves have none)."""
    records = []
    for r in finished_rows(results_dir):
        curve = r.get("curve") or {}
        for i, epoch in enumerate(curve.get("epoch", [])):
            records.append({"run_id": r["run_id"], "ablation": r["ablation"], "seed": r["seed"],
                            **{k: r.get(k) for k in SETTING}, "epoch": epoch,
                            **{c: curve[c][i] for c in ("train_loss", "top1", "lr")}})
    return pd.DataFrame.from_records(records, columns=CURVE_COLUMNS)


def setting_label(setting: dict | pd.Series) -> str:
    return (f"scale={setting['scale']} · {setting['dataset']} · {setting['epochs']} epochs · "
            f"trained at {setting['train_size']} px · model {setting['model_size']}")


def with_setting(runs: pd.DataFrame, ablations: Sequence[str]) -> pd.DataFrame:
    """The lines of these ablations, in this order, with a ``setting`` label (as the plots want them)."""
    runs = runs[runs.ablation.isin(ablations)].copy()
    runs["setting"] = [setting_label(r) for _, r in runs.iterrows()] if len(runs) else []
    runs["ablation"] = pd.Categorical(runs.ablation, categories=[a for a in ablations if a in set(runs.ablation)],
                                      ordered=True)
    order = [c for c in ("setting", "ablation", "seed", "size_px", "epoch") if c in runs.columns]
    return runs.sort_values(order, ignore_index=True)


def study_runs(study_id: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The lines of one study's ablations (runs or curves), ordered as the study lists them."""
    return with_setting(runs, STUDY_BY_ID[study_id].ablations)


def pool_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, n and the 95% t-interval of the mean (``low``, ``high``; none from one seed) over seeds per
    setting, ablation and test size (``runs`` as ``load_runs`` gives them)."""
    keys = [*SETTING, "ablation", "size_px", "size_rank"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "n", "mean", "std", "low", "high", "finetuned", "unstable"])
    grouped = runs.groupby(keys, observed=True, dropna=False)
    return grouped.agg(n=("run_id", "nunique"), mean=("top1", "mean"), std=("top1", "std"),
                       low=("top1", lambda v: stats.cell_summary(v).low),
                       high=("top1", lambda v: stats.cell_summary(v).high),
                       finetuned=("finetuned", "any"), unstable=("unstable", "any")).reset_index()


def study_table(study_id: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: our mean, std, n and 95% interval per setting, ablation and size, and the paper's figure beside it."""
    study, ref = STUDY_BY_ID[study_id], reference()
    table = pool_seeds(runs[runs.ablation.isin(study.ablations)])
    paper = [paper_value(study, r.ablation, r.size_rank, ref) for r in table.itertuples()]
    table["paper_px"] = [study.paper_px[r] if 0 <= r < len(study.paper_px) else None for r in table.size_rank]
    table["paper_value"] = [v for v, _ in paper]
    table["paper_status"] = [s for _, s in paper]
    table.insert(0, "study", study.id)
    order = {a: i for i, a in enumerate(study.ablations)}
    table = table.sort_values([*SETTING, "ablation", "size_px"], key=lambda c: c.map(order) if c.name == "ablation"
                              else c, ignore_index=True)
    return table.round({"mean": 2, "std": 2, "low": 2, "high": 2})
