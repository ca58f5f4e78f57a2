"""Every value of a run config checked before any work starts: one line naming the key and what is allowed."""
from __future__ import annotations

import importlib.util
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf

from .config import ConfigError, build_model
from .data.augment import MAX_MAGNITUDE, POLICIES
from .models import HEADS, SIZES
from .models.lowering import LOWERINGS
from .results import results_path

MODEL_KEYS = {"size", "pos", "head", "drop_path"}

# Types are checked here by hand rather than by Hydra structured configs: a structured config refuses a bad
# type inside Hydra's compose, with OmegaConf's own multi-line error, before this project can say which key
# and what is allowed in one line (docs/bad_input.md holds every message, and a test runs each); and the
# position encodings' options differ per encoding, an open dict a schema would have to leave unchecked.


def _check(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(key, problem)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg: DictConfig, data: bool = True) -> None:
    """Fail fast, before anything is written, on any value that cannot work; ``data=False`` leaves the data alone
    (planning needs none: ``check_data`` looks at it before a run trains)."""
    for key in sorted(OmegaConf.missing_keys(cfg)):
        raise ConfigError(key, "must be set (it has no default)" + (", e.g. data.root=/path/to/imagenet"
                                                                      if key == "data.root" else ""))
    _check_logger(cfg)
    for key in ("compile", "finetune.enabled", "ema.enabled", "rerun"):
        value = OmegaConf.select(cfg, key, default=False)
        _check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
    _check(_is_int(cfg.seed) and cfg.seed >= 0, "seed", f"must be a non-negative integer, got {cfg.seed!r}")
    _check(cfg.get("peg_lowering", "conv") in LOWERINGS, "peg_lowering",
           f"must be one of {', '.join(LOWERINGS)} (how a PEG's depth-wise convolution runs), "
           f"got {cfg.get('peg_lowering')!r}")
    _check(cfg.get("stack", "auto") in ("auto", "on", "off"), "stack",
           f"must be auto (stacked on a GPU), on or off, got {cfg.get('stack')!r}")
    cap = cfg.get("stack_max", 0)
    _check(_is_int(cap) and (cap == 0 or cap >= 2), "stack_max",
           f"must be 0 (no limit) or at least 2 runs to a stack, got {cap!r}")
    _check(cfg.model.size in SIZES, "model.size", f"unknown size {cfg.model.size!r}; valid: {', '.join(SIZES)}")
    _check(cfg.model.head in HEADS, "model.head", f"unknown head {cfg.model.head!r}; valid: {', '.join(HEADS)}")
    unknown = sorted(set(cfg.model) - MODEL_KEYS)
    _check(not unknown, f"model.{unknown[0] if unknown else ''}",
           "not a setting; valid: " + ", ".join(sorted(MODEL_KEYS)) + ". The head decides the class token: "
           "head=cls has one and classifies it, head=gap has none and averages the patch tokens")
    _check(isinstance(cfg.data.eval_sizes, ListConfig), "data.eval_sizes",
           f"must be a list of image sizes, e.g. [32,48], got {cfg.data.eval_sizes!r}")
    patch = SIZES[cfg.model.size]["patch_size"]
    sizes = {"data.train_size": cfg.data.train_size,
             **{f"data.eval_sizes[{i}]": s for i, s in enumerate(cfg.data.eval_sizes)}}
    _check(len(cfg.data.eval_sizes) > 0, "data.eval_sizes", "needs at least one evaluation size")
    for key, size in sizes.items():
        _check(_is_int(size) and size > 0 and size % patch == 0, key,
               f"image size must be a positive multiple of the patch size {patch} ({cfg.model.size}), got {size!r}")
    _check(len(set(cfg.data.eval_sizes)) == len(cfg.data.eval_sizes), "data.eval_sizes",
           f"sizes repeat: {list(cfg.data.eval_sizes)}")
    for key in ("data.batch_size", "trainer.max_epochs", "data.num_classes", "checkpoint_every", "optim.lr_batch",
                "finetune.epochs"):
        value = OmegaConf.select(cfg, key)
        _check(_is_int(value) and value >= 1, key, f"must be an integer >= 1, got {value!r}")
    eval_batch = OmegaConf.select(cfg, "data.eval_batch_size", default=None)
    _check(eval_batch is None or (_is_int(eval_batch) and eval_batch >= 1), "data.eval_batch_size",
           f"must be null (the training batch) or an integer >= 1, got {eval_batch!r}")
    for key in ("data.seed", "data.subset_seed", "data.val_seed", "data.crop_padding"):  # where the data set has them
        value = OmegaConf.select(cfg, key, default=0)
        _check(_is_int(value) and value >= 0, key, f"must be an integer >= 0, got {value!r}")
    for key in ("data.flip", "data.on_device", "model.pos.frozen"):  # where the data set or encoding has them
        value = OmegaConf.select(cfg, key, default=False)
        _check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
    augment = OmegaConf.select(cfg, "data.augment")
    _check(augment is None or augment in POLICIES, "data.augment",
           f"unknown policy {augment!r}; valid: null, {', '.join(POLICIES)}")
    magnitude = OmegaConf.select(cfg, "data.randaugment_m", default=0)
    _check(_is_int(magnitude) and 0 <= magnitude <= MAX_MAGNITUDE, "data.randaugment_m",
           f"must be an integer from 0 to {MAX_MAGNITUDE} (a magnitude bin), got {magnitude!r}")
    for key, least in (("data.repeated_aug", 1), ("data.num_workers", 0),
                       ("data.randaugment_n", 1)):  # where the data set has them
        value = OmegaConf.select(cfg, key, default=least)
        _check(_is_int(value) and value >= least, key, f"must be an integer >= {least}, got {value!r}")
    for key in ("data.subset", "data.test_subset", "data.val_split"):  # val_split where the data set has one
        value = OmegaConf.select(cfg, key)
        _check(value is None or (_is_int(value) and value >= cfg.data.num_classes), key,
               f"must be null or an integer >= the number of classes ({cfg.data.num_classes}), got {value!r}")
    # inf passes ">= 0" and starts a run that can only end in a NaN loss; nan compares false to everything
    for key in ("optim.lr", "optim.weight_decay", "optim.label_smoothing", "optim.warmup_epochs", "optim.mixup",
                "optim.cutmix", "optim.min_lr_ratio", "model.drop_path", "ema.decay", "finetune.lr",
                "data.random_erasing", "data.crop_pct"):  # the last two where the data set has them
        value = OmegaConf.select(cfg, key, default=0)
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
               and value >= 0, key, f"must be a finite number >= 0, got {value!r}")
    clip = cfg.trainer.get("gradient_clip_val")
    _check(clip is None or (isinstance(clip, (int, float)) and not isinstance(clip, bool) and 0 < clip < math.inf),
           "trainer.gradient_clip_val", f"must be null (no clipping) or a finite number > 0, got {clip!r}")
    for key in ("model.drop_path", "optim.label_smoothing", "ema.decay"):
        value = OmegaConf.select(cfg, key)
        _check(value < 1, key, f"must be a number in [0, 1), got {value!r}")
    for key in ("optim.min_lr_ratio", "data.random_erasing"):
        value = OmegaConf.select(cfg, key, default=0)
        _check(value <= 1, key, f"must be a number in [0, 1], got {value!r}")
    pos = cfg.model.pos
    for key in ("kernel", "layers", "max_distance"):
        _check(key not in pos or _is_int(pos[key]), f"model.pos.{key}", f"must be an integer, got {pos.get(key)!r}")
    _check("positions" not in pos or (isinstance(pos.positions, ListConfig) and all(map(_is_int, pos.positions))),
           "model.pos.positions", f"must be a list of block indices, e.g. [0] or [0,1,2], got {pos.get('positions')!r}")
    try:  # the model's own constructors check every position-encoding option
        with torch.device("meta"):
            build_model(cfg)
    except (ValueError, TypeError) as err:
        raise ConfigError("model.pos", str(err)) from None
    _check_trainer(cfg)
    _check_writable(cfg.results_dir, "results_dir")
    rows = results_path(cfg.results_dir)  # rows are appended to it: a folder there fails only at the end
    _check(not rows.exists() or rows.is_file(), "results_dir",
           f"{rows} is not a regular file; move it away or choose another results_dir")
    _check_writable(cfg.output_dir, "output_dir")
    if data:
        check_data(cfg)


def _check_logger(cfg: DictConfig) -> None:
    """The logger's package is installed (one of ``logger.requires``): a missing one fails here, not at the first
    logged metric, after the data and the model are up."""
    requires = list(cfg.logger.get("requires") or [])
    if requires and not any(importlib.util.find_spec(name) for name in requires):
        target = cfg.logger._target_.rsplit(".", 1)[-1]
        raise ConfigError("logger", f"{target} needs the package {' or '.join(requires)}, which is not installed here "
                                    f"(pip install {requires[0]}; or logger=csv, the default)")


def _check_trainer(cfg: DictConfig) -> None:
    """Build the Trainer once, without running it: Lightning rejects unknown arguments, missing accelerators
    and impossible device counts here, before any file is written."""
    import pytorch_lightning  # noqa: F401 - sets its loggers' levels on import; quieted below
    from hydra.utils import instantiate

    for key in ("trainer.devices", "trainer.num_nodes"):
        value = OmegaConf.select(cfg, key, default=1)
        _check(value == "auto" or isinstance(value, ListConfig) or (_is_int(value) and value >= 1), key,
               f"must be an integer >= 1, a list of device indices or 'auto', got {value!r}")
    quiet = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [log.level for log in quiet]
    try:
        for log in quiet:
            log.setLevel(logging.WARNING)  # the real Trainer reports devices; this one says nothing
        instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    except InstantiationException as err:
        raise ConfigError("trainer", str(err.__cause__ or err)) from None
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


def check_data(cfg: DictConfig) -> None:
    """The data module's own cheap check (archive readable, ImageFolder layout), before any file is written."""
    from hydra.utils import instantiate

    from .data import DataError

    try:
        datamodule = instantiate(cfg.data)
    except InstantiationException as err:
        raise ConfigError("data", str(err.__cause__ or err)) from None
    try:
        datamodule.check()
    except DataError as err:
        raise ConfigError(err.key, str(err)) from None


def _check_writable(path: str, key: str) -> None:
    """The nearest existing folder on the way to ``path`` must be a writable directory."""
    p = Path(path).expanduser().absolute()
    while not p.exists():
        p = p.parent
    _check(p.is_dir() and os.access(p, os.W_OK | os.X_OK), key,
           f"{path!r} is not writable ({p} is {'not a directory' if not p.is_dir() else 'read-only'})")
