"""A result row's setting: which runs pool as seeds of one cell, and which cells a table sets side by side.

Runs pool as seeds only where everything but the seed is equal: their ``setting_id``
(``cpvt_lab.fingerprint.setting_id`` of the recorded config, precision as recorded), so an lr
sweep in one folder is three settings, never three seeds. Cells of different ablations sit side
by side (a table section, a claim) where everything but the seed and the ablation is equal: their
``recipe_id``, the same fingerprint less what an ablation file sets (``ABLATION_KEYS``). A seed
recorded twice in one setting (two run_ids, as when the fingerprint's rules changed) counts once:
the later row. Every row holds its config: ``row_check`` refuses one without it when a folder is read.

Runs on different data never pool, nor share a section: the data (``row_data.data_key``: content hash and
split) enters both ids, and the ``dataset`` a table shows names it (``setting_fields``). Every section is
labelled by its ``SETTING`` (``setting_label``); where one label covers several
recipes, each label adds the recipe terms that tell them apart and the recipe id.
"""
from __future__ import annotations

import copy
from typing import Any

import pandas as pd

from .. import fingerprint
from ..row_data import data_key, dataset_label

SETTING = ["scale", "dataset", "epochs", "train_size", "model_size"]  # the readable part of a setting
SECTION = [*SETTING, "recipe_id"]  # the cells of one table section: never compared across
ABLATION_KEYS = ("ablation_name", "model.pos", "model.head", "finetune")  # what an ablations/*.yaml sets
# (config key, label, value when the row predates the key): what a training recipe is made of
RECIPE = (("data.augment", "augment", None), ("data.random_erasing", "random erasing", 0),
          ("optim.mixup", "mixup", 0), ("optim.cutmix", "cutmix", 0),
          ("optim.label_smoothing", "label smoothing", 0), ("model.drop_path", "drop path", 0),
          ("optim.weight_decay", "weight decay", 0), ("optim.warmup_epochs", "warm-up epochs", 0),
          ("trainer.gradient_clip_val", "gradient clip", None), ("ema.enabled", "EMA", None),
          ("data.subset", "training subset", None), ("data.batch_size", "batch", "?"),
          ("trainer.precision", "precision", "?"))


def config_value(config: dict[str, Any], dotted: str, missing: Any) -> Any:
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            return missing
        config = config[key]
    return missing if config is None else config


def _shown(value: Any) -> str:
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def recipe(config: dict[str, Any]) -> str:
    """The training recipe of a recorded config in one line (what a table's numbers depend on besides the setting)."""
    parts = [f"lr {_shown(config_value(config, 'optim.lr', '?'))} per "
             f"{_shown(config_value(config, 'optim.lr_batch', '?'))} images"]
    return ", ".join(parts + [f"{label} {_shown(config_value(config, key, missing))}"
                              for key, label, missing in RECIPE])


def setting_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The row's readable ``SETTING``, its data named as the tables show it (``row_data.dataset_label``)."""
    return {**{k: row.get(k) for k in SETTING}, "dataset": dataset_label(row)}


def _with_data(fingerprint_id: str, row: dict[str, Any]) -> str:
    """The id, with the row's data where it is not the project's archive (whose cells keep their ids)."""
    key = data_key(row)
    return fingerprint_id if key is None else fingerprint._digest({"setting": fingerprint_id, "data": key})


def setting_id(row: dict[str, Any]) -> str:
    """The row's setting fingerprint: its runs pool as seeds of one cell."""
    return _with_data(fingerprint.setting_id(row["config"]), row)


def recipe_id(row: dict[str, Any]) -> str:
    """The row's setting fingerprint less its ablation: the cells a table section compares."""
    config = copy.deepcopy(row["config"])
    for dotted in ABLATION_KEYS:
        *parents, last = dotted.split(".")
        node = config
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return _with_data(fingerprint.setting_id(config), row)


# What each model size is, for a reader: the size's name ("smoke" for the CPU study's model too) stays in the rows,
# configs and run_ids, and only the pages say what the model is
MODEL_NAMES = {"smoke": "width-48 ViT (12 blocks, patch 4)", "vit_ti4": "ViT-Ti/4 (width 192, 12 blocks)",
               "deit_tiny": "DeiT-Ti", "deit_small": "DeiT-S", "deit_base": "DeiT-B"}


def model_name(size: str) -> str:
    return MODEL_NAMES.get(size, f"model {size}")


def setting_label(setting: dict | pd.Series) -> str:
    epochs = setting["epochs"]
    return (f"scale={setting['scale']} · {setting['dataset']} · {epochs} epoch{'' if epochs == 1 else 's'} · "
            f"trained at {setting['train_size']} px · {model_name(setting['model_size'])}")


def _seed_key(row: dict[str, Any]) -> tuple:
    return (row["ablation"], *setting_fields(row).values(), setting_id(row), row["seed"])


def one_per_seed(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[dict, dict]]]:
    """``rows`` (oldest first) less repeated seeds: one row per ablation, setting and seed, the later one.

    Returns the rows kept and, for each row left out, (that row, the later row that counts instead).
    """
    kept: dict[tuple, dict[str, Any]] = {}
    repeated = []
    for row in rows:
        key = _seed_key(row)
        if key in kept:
            repeated.append(kept.pop(key))
        kept[key] = row
    return list(kept.values()), [(r, kept[_seed_key(r)]) for r in repeated]


def describe(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per run_id: its ``setting_id``, ``recipe_id``, ``recipe`` and section label ``setting``, and the
    ``ablation_label`` a table shows (the ablation, with its setting id where an ablation holds several
    settings in one section: ``model.pos.kernel=5`` on ``ablation=peg`` is not ``peg``)."""
    frame = pd.DataFrame.from_records(
        [{"run_id": r["run_id"], "ablation": r["ablation"], **setting_fields(r),
          "setting_id": setting_id(r), "recipe_id": recipe_id(r), "recipe": recipe(r.get("config") or {})}
         for r in rows], columns=["run_id", "ablation", *SETTING, "setting_id", "recipe_id", "recipe"])
    base = pd.Series([setting_label(s) for s in frame[SETTING].to_dict("records")], index=frame.index, dtype=object)
    frame["setting"] = base
    for _, group in frame.groupby(base, sort=False):
        recipes = dict(zip(group.recipe_id, group.recipe))
        if len(recipes) > 1:
            common = set.intersection(*(set(r.split(", ")) for r in recipes.values()))
            for rid, words in recipes.items():
                differ = [w for w in words.split(", ") if w not in common]
                frame.loc[group.index[group.recipe_id == rid], "setting"] += " · " + ", ".join(
                    [*differ, f"recipe {rid[:6]}"])
    settings = frame.groupby(["recipe_id", *SETTING, "ablation"], dropna=False).setting_id.transform("nunique")
    frame["ablation_label"] = [a if k < 2 else f"{a} · setting {s[:6]}"
                               for a, k, s in zip(frame.ablation, settings, frame.setting_id)]
    return frame.drop(columns=["ablation", *SETTING]).set_index("run_id")
