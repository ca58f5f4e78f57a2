"""Run one named ablation: ``python -m cpvt_lab.run ablation=frozen_peg [KEY=VALUE...]``.

Every KEY=VALUE is a Hydra override of the run config (``cpvt_lab/conf``): ``scale=smoke``,
``seed=1``, ``model.pos.kernel=5``, ``results_dir=DIR``, ``+trainer.limit_train_batches=2``,
``~data.subset``. ``-m`` (``--multirun``) sweeps comma-separated values, one run each
(``ablation=peg,none seed=0,1``); Hydra's own flags work as in any Hydra app (``--cfg job``
prints the composed config, ``--hydra-help`` Hydra's help).
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .cli import parse_words, run_command
from .config import ConfigError, finalize, world_size
from .results import top1_line


def summary(row: dict) -> str:
    if row.get("in_progress"):
        return f"in progress elsewhere, not started: {row['ablation']} [{row['run_id']}] (another process holds it)"
    top1 = top1_line(row)
    timing = "" if row.get("skipped") else f"  ({row['train_seconds']:.0f} s training, {row['images_per_second']} img/s)"
    head = "already done, not run again:" if row.get("skipped") else "done:"
    return (f"{head} {row['ablation']} seed={row['seed']} scale={row['scale']} [{row['run_id']}] on "
            f"{row['dataset']}, {row['epochs']} epoch{'' if row['epochs'] == 1 else 's'}\n  {top1}{timing}\n  row in "
            f"{row['config']['results_dir']}/runs.jsonl")


def check_launch(cfg: DictConfig, multirun: bool) -> None:
    """Lightning starts DDP ranks by re-running this command line; inside a local multirun that
    would re-run the whole sweep in every rank. Under SLURM, srun starts the ranks instead."""
    if multirun and world_size(cfg) != 1 and "SLURM_NTASKS" not in os.environ:
        raise ConfigError("trainer.devices", "DDP with several processes runs one run at a time, or in a sweep on "
                          "SLURM (hydra/launcher=slurm), not in a local multirun")


HYDRA_FLAGS = {"--hydra-help", "--version", "--cfg", "-c", "--resolve", "--package", "-p", "--run", "-r", "--multirun",
               "-m", "--shell-completion", "-sc", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
               "--experimental-rerun", "--info", "-i"}


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_main(cfg: DictConfig) -> None:
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    def run(argv: list[str]) -> None:
        _, words = parse_words(argv, {}, flags=HYDRA_FLAGS)  # every word checked as the other commands check theirs
        sys.argv = [sys.argv[0], *words]  # Hydra reads its command line from sys.argv
        hydra_main()

    return run_command(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
