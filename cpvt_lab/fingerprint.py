"""What a run measures, as stable fingerprints: its ``run_id``, and its ``setting_id`` (the same less the seed).

Every setting that can change the trained weights or the measured top-1 enters the identity;
paths, devices, progress bars, checkpoint periods and ``compile`` (held to eager by the compile
guard) do not. Settings added after the first rows were written enter only when they change the
run, so existing run_ids stay (tests pin them).
"""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from .config import auto_precision, world_size

IDENTITY_KEYS = ("ablation_name", "scale_name", "seed", "model", "optim", "finetune", "trainer.max_epochs")
DATA_RUNTIME_KEYS = ("archive", "cache_dir", "root", "download", "on_device", "num_workers", "eval_batch_size",
                     "seed", "_target_")
# Augmentation settings the in-memory sets gained later, with the values that leave a run as it was: they enter
# the fingerprint only when they change the run, so older run_ids stay (ImageFolder's random_erasing always did)
ARRAY_AUGMENT_OFF = {"augment": None, "random_erasing": 0.0}
RANDAUGMENT_KEYS = ("randaugment_n", "randaugment_m")
VALIDATION_KEYS = ("val_split", "val_seed")  # enter only when a validation split is held out
# Trainer arguments that change neither the weights nor the measured top-1. Every other trainer argument that is
# set (limit_train_batches, max_steps, accumulate_grad_batches, max_time, overfit_batches, ...) enters the
# identity: a shortened debug run must never pass for the full run. max_epochs always does (IDENTITY_KEYS).
TRAINER_RUNTIME_KEYS = frozenset({
    "_target_", "accelerator", "devices", "num_nodes", "strategy", "use_distributed_sampler", "num_sanity_val_steps",
    "log_every_n_steps", "check_val_every_n_epoch", "val_check_interval", "enable_model_summary",
    "enable_progress_bar", "enable_checkpointing", "default_root_dir", "logger", "callbacks", "plugins", "profiler",
    "benchmark", "detect_anomaly", "barebones", "inference_mode", "sync_batchnorm"})
TRAINER_OWN_RULE = frozenset({"max_epochs", "gradient_clip_val", "precision"})  # enter by the rules below


def _container(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def identity(cfg: DictConfig, recorded_precision: bool = False) -> dict[str, Any]:
    """The settings that define what a run measures (paths, devices and progress bars do not).

    ``trainer.precision`` enters where it differs from the device's own choice (bf16 on a GPU that has it,
    else fp32), so that one run is one run_id on any machine; with ``recorded_precision`` it always enters
    (the pooling key of recorded rows: a bf16 run and an fp32 run are not seeds of one setting).
    """
    ident = {key: _container(OmegaConf.select(cfg, key)) for key in IDENTITY_KEYS}
    data = OmegaConf.to_container(cfg.data, resolve=True)
    ident["data"] = {k: v for k, v in data.items() if k not in DATA_RUNTIME_KEYS}
    ident["dataset"] = data["_target_"].rsplit(".", 1)[-1]
    if "augment" in data:  # the in-memory sets
        for key, off in ARRAY_AUGMENT_OFF.items():
            if ident["data"][key] == off:
                del ident["data"][key]
        if data["augment"] != "randaugment":  # its settings change nothing under another policy
            for key in RANDAUGMENT_KEYS:
                del ident["data"][key]
    if not data.get("val_split"):  # training on every training image, as every run before the split existed
        for key in VALIDATION_KEYS:
            ident["data"].pop(key, None)
    if cfg.ema.enabled:  # like world_size: enters the fingerprint only when it changes the run
        ident["ema"] = OmegaConf.to_container(cfg.ema)
    if cfg.trainer.get("gradient_clip_val") is not None:  # enters only when set, like ema
        ident["gradient_clip_val"] = cfg.trainer.gradient_clip_val
    trainer = {k: _container(v) for k, v in cfg.trainer.items()
               if k not in TRAINER_RUNTIME_KEYS | TRAINER_OWN_RULE and v is not None}
    if trainer:
        ident["trainer"] = trainer
    precision = cfg.trainer.get("precision")
    if precision is not None and (recorded_precision or str(precision) != auto_precision()):
        ident["precision"] = str(precision)
    if world_size(cfg) != 1:  # more processes, larger global batch and lr; one process keeps older ids
        ident["world_size"] = world_size(cfg)
    return ident


def _digest(ident: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_id(cfg: DictConfig) -> str:
    """A stable fingerprint of what the run measures (same config, same id, on any machine)."""
    return _digest(identity(cfg))


def setting_id(config: DictConfig | Mapping[str, Any]) -> str:
    """The fingerprint of everything a run measures but its seed, from a run config or a row's recorded config:
    runs pool as seeds of one cell only where this is equal (an lr sweep in one folder is three settings)."""
    if isinstance(config, DictConfig):
        return _setting_id(config)
    # the tables ask for each row's setting many times, and building a DictConfig is most of the cost
    return _recorded_setting_id(json.dumps(config, sort_keys=True, default=str))


@functools.lru_cache(maxsize=4096)
def _recorded_setting_id(config_json: str) -> str:
    return _setting_id(OmegaConf.create(json.loads(config_json)))


def _setting_id(cfg: DictConfig) -> str:
    ident = identity(cfg, recorded_precision=True)
    del ident["seed"]
    return _digest(ident)


def recorded_run_ids(config: Mapping[str, Any]) -> set[str]:
    """The run_ids a row's recorded ``config`` can carry, on any machine: precision enters a run_id only where it
    differs from the training device's own choice (``identity``), which a row does not record, so both are its."""
    ident = identity(OmegaConf.create(dict(config)), recorded_precision=True)
    without = {k: v for k, v in ident.items() if k != "precision"}
    return {_digest(ident), _digest(without)}
