"""What a run measures, as a stable fingerprint: its ``run_id``."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .config import world_size

# The keys that define WHAT a run measures. Paths, devices and progress bars do not
# change the experiment, so they stay out of the run_id.
IDENTITY_KEYS = ("ablation_name", "scale_name", "seed", "model", "optim", "finetune", "trainer.max_epochs")
DATA_RUNTIME_KEYS = ("archive", "cache_dir", "root", "download", "on_device", "num_workers", "eval_batch_size",
                     "seed", "_target_")
# Augmentation settings the in-memory sets gained later, with the values that leave a run as it was: they enter
# the fingerprint only when they change the run, so older run_ids stay (ImageFolder's random_erasing always did)
ARRAY_AUGMENT_OFF = {"augment": None, "random_erasing": 0.0}
RANDAUGMENT_KEYS = ("randaugment_n", "randaugment_m")


def identity(cfg: DictConfig) -> dict[str, Any]:
    """The settings that define what a run measures (paths, devices and progress bars do not)."""
    ident = {key: OmegaConf.to_container(OmegaConf.select(cfg, key), resolve=True)
             if isinstance(OmegaConf.select(cfg, key), DictConfig) else OmegaConf.select(cfg, key)
             for key in IDENTITY_KEYS}
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
    if cfg.ema.enabled:  # like world_size: enters the fingerprint only when it changes the run
        ident["ema"] = OmegaConf.to_container(cfg.ema)
    if cfg.trainer.get("gradient_clip_val") is not None:  # enters only when set, like ema
        ident["gradient_clip_val"] = cfg.trainer.gradient_clip_val
    if world_size(cfg) != 1:  # more processes, larger global batch and lr; one process keeps older ids
        ident["world_size"] = world_size(cfg)
    return ident


def run_id(cfg: DictConfig) -> str:
    """A stable fingerprint of what the run measures (same config, same id, on any machine)."""
    blob = json.dumps(identity(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
