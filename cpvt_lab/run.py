"""Run one named ablation: ``python -m cpvt_lab.run ablation=frozen_peg [overrides...]``."""
from __future__ import annotations

import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .config import ConfigError, finalize, world_size


def summary(row: dict) -> str:
    if row.get("in_progress"):
        return f"in progress elsewhere, not started: {row['ablation']} [{row['run_id']}] (another process holds it)"
    top1 = "  ".join(f"top1@{size}={acc:.2f}%" for size, acc in sorted(row["top1"].items(), key=lambda kv: int(kv[0])))
    timing = "" if row.get("skipped") else f"  ({row['train_seconds']:.0f} s training, {row['images_per_second']} img/s)"
    head = "already done, not run again:" if row.get("skipped") else "done:"
    return (f"{head} {row['ablation']} seed={row['seed']} scale={row['scale']} [{row['run_id']}] on "
            f"{row['dataset']}, {row['epochs']} epochs\n  {top1}{timing}\n  row in "
            f"{row['config']['results_dir']}/runs.jsonl")


def check_launch(cfg: DictConfig, multirun: bool) -> None:
    """Lightning starts DDP ranks by re-running this command line; inside a local multirun that
    would re-run the whole sweep in every rank. Under SLURM, srun starts the ranks instead."""
    if multirun and world_size(cfg) != 1 and "SLURM_NTASKS" not in os.environ:
        raise ConfigError("trainer.devices", "DDP with several processes runs one run at a time, or in a sweep on "
                          "SLURM (hydra/launcher=slurm), not in a local multirun")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from .train import is_global_zero, run_experiment  # heavy imports after Hydra has parsed the command line

    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    try:
        cfg = finalize(cfg, ablation=choices["ablation"], scale=choices["scale"])
        check_launch(cfg, multirun=hydra_cfg.mode == RunMode.MULTIRUN)
        row = run_experiment(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if is_global_zero():  # under DDP every rank gets here; one summary is enough
        print(summary(row))


if __name__ == "__main__":
    main()
