"""The run config: composed by Hydra from ``cpvt_lab/conf``, and the network it describes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from omegaconf import DictConfig, ListConfig, OmegaConf

from .cli import UsageError
from .models import CPVTViT
from .models.lowering import lower_pegs

CONFIG_MODULE = "cpvt_lab.conf"
ABLATIONS_DIR = Path(__file__).resolve().parent / "conf" / "ablation"

class ConfigError(UsageError):
    """A config value that cannot work; the message names the key and what is allowed."""


def auto_precision() -> str:
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("cpvt.precision"):
        OmegaConf.register_new_resolver("cpvt.precision", auto_precision)


register_resolvers()


def ablation_names() -> list[str]:
    return sorted(p.stem for p in ABLATIONS_DIR.glob("*.yaml"))


def compose(ablation: str = "peg", overrides: Sequence[str] = ()) -> DictConfig:
    """The resolved config of one run, as ``python -m cpvt_lab.run ablation=NAME OVERRIDES`` would build it."""
    cfg, choices = _hydra_compose(ablation, overrides)
    return finalize(cfg, ablation=choices["ablation"], scale=choices["scale"])


def compose_seeds(ablation: str, overrides: Sequence[str], seeds: Sequence[int]) -> list[DictConfig]:
    """``compose(ablation, [*overrides, f"seed={seed}"])`` for each seed, with one Hydra composition for all (the
    slow part of planning a study): the seed is one value, and what derives from it (``data.seed: ${seed}``) is
    resolved after it is set."""
    cfg, choices = _hydra_compose(ablation, overrides)
    composed = []
    for seed in seeds:
        cfg.seed = seed
        composed.append(finalize(cfg, ablation=choices["ablation"], scale=choices["scale"]))
    return composed


def _hydra_compose(ablation: str, overrides: Sequence[str]) -> tuple[DictConfig, DictConfig]:
    """The composed config, its interpolations unresolved, and Hydra's choices of config groups."""
    if ablation not in ablation_names():
        raise ConfigError("ablation", f"unknown ablation {ablation!r}; valid: {', '.join(ablation_names())}")
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = hydra_compose("config", overrides=[f"ablation={ablation}", *overrides], return_hydra_config=True)
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), cfg.hydra.runtime.choices


def finalize(cfg: DictConfig, ablation: str, scale: str) -> DictConfig:
    """Record the chosen ablation and scale names in the config and resolve every interpolation."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    cfg.ablation_name, cfg.scale_name = ablation, scale
    OmegaConf.resolve(cfg)
    OmegaConf.set_struct(cfg, True)
    return cfg


def build_model(cfg: DictConfig, img_size: int | None = None) -> CPVTViT:
    """The network of a run config (logits for any input whose sides are multiples of the patch size)."""
    model = CPVTViT(
        pos=OmegaConf.to_container(cfg.model.pos, resolve=True), head=cfg.model.head, size=cfg.model.size,
        img_size=img_size or cfg.data.train_size, num_classes=cfg.data.num_classes,
        drop_path_rate=cfg.model.drop_path)
    return lower_pegs(model, cfg.get("peg_lowering", "conv"))  # configs written before the key: conv


def world_size(cfg: DictConfig) -> Optional[int]:
    """Processes of a run (devices x nodes); None when Lightning picks the device count itself."""
    devices = cfg.trainer.get("devices", 1)
    if isinstance(devices, ListConfig):
        devices = len(devices)
    return devices * cfg.trainer.get("num_nodes", 1) if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0 else None
