"""Which runs train in a stack: the switch (``stack=auto|on|off``), and what a stack cannot do as a separate run
would (fine-tuning at other sizes, several devices, gradient accumulation, a
DataLoader's workers): those runs train one by one."""
from __future__ import annotations

import json
from typing import Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from ..data.memory import ArrayDataModule


def stacking_on(cfg: DictConfig) -> bool:
    """``stack=auto`` (the default) stacks on a GPU only: on a CPU K networks cost K times one."""
    mode = cfg.get("stack", "auto")
    return mode == "on" or (mode == "auto" and stack_device(cfg).type == "cuda")


def why_not_stacked(cfg: DictConfig) -> Optional[str]:
    """Why the run of ``cfg`` cannot train in a stack (None: it can)."""
    t = cfg.trainer
    reasons = [
        (cfg.finetune.enabled, "fine-tuning at other sizes"),
        (t.get("devices", 1) != 1 or t.get("num_nodes", 1) != 1, "several devices (or devices=auto)"),
        (t.get("check_val_every_n_epoch", 1) != 1 or t.get("limit_val_batches") is not None,
         "a learning curve evaluated otherwise than after every epoch on every test image"),
        (t.get("accumulate_grad_batches", 1) != 1, "gradient accumulation"),
        (t.get("gradient_clip_algorithm") not in (None, "norm"), "clipping by value"),
        (str(t.precision) not in ("32-true", "32", "bf16-mixed"), f"precision {t.precision}"),
        (not issubclass(_target(cfg.data), ArrayDataModule), "a data set not held as device tensors"),
    ]
    return next((why for bad, why in reasons if bad), None)


def stack_device(cfg: DictConfig) -> torch.device:
    """Where the runs would train: the GPU if there is one and the trainer's accelerator allows it."""
    gpu = torch.cuda.is_available() and cfg.trainer.get("accelerator", "auto") in ("auto", "gpu", "cuda")
    return torch.device("cuda", torch.cuda.current_device()) if gpu else torch.device("cpu")


def _target(data: DictConfig) -> type:
    module, _, name = data._target_.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


# What the runs of one stack may differ in besides the seed: what each member takes alone (its data module's
# augmentation, its Mixup/CutMix and label smoothing, its drop-path draws). Everything else is shared: the
# architecture, the data set and batch, the optimizer and its schedule.
MEMBER_KEYS = {
    "data": ("seed", "augment", "randaugment_n", "randaugment_m", "random_erasing", "crop_padding", "flip"),
    "optim": ("mixup", "cutmix", "label_smoothing"),
    "model": ("drop_path",),
}


def stackable_groups(cfgs: Sequence[DictConfig]) -> list[list[int]]:
    """Indices of ``cfgs`` that can train as one stack: the same config but for the seed and the ``MEMBER_KEYS``,
    stacking on, nothing that stacks badly; groups of at least two, in the order of their first member, and of at
    most ``stack_max`` (a larger group split into that many stacks of near-equal size)."""
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        if stacking_on(cfg) and why_not_stacked(cfg) is None:
            config = OmegaConf.to_container(cfg, resolve=True)
            config.pop("seed")
            for section, keys in MEMBER_KEYS.items():
                for key in keys:
                    config[section].pop(key, None)
            key = json.dumps(config, sort_keys=True, default=str)
            groups.setdefault(key, []).append(i)
    return [part for g in groups.values() for part in _split(g, cfgs[g[0]].get("stack_max", 0)) if len(part) >= 2]


def _split(group: list[int], cap: int) -> list[list[int]]:
    """``group`` in as few parts of at most ``cap`` (0: no limit) as hold it, their sizes at most one apart (7 by 3:
    3, 2 and 2, not 3, 3 and one run alone)."""
    parts = -(-len(group) // cap) if cap else 1
    size, extra = divmod(len(group), parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [group[a:b] for a, b in zip(bounds, bounds[1:])]
