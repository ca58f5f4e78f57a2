"""Run a grid as Hydra multiruns: ``python -m cpvt_lab.sweep NAME [overrides...] [hydra/launcher=slurm]``.

Each plain grid (a grid that includes others has several) becomes one multirun of
``python -m cpvt_lab.run`` over its ablations and seeds, all launched together; with the
SLURM launcher (the default) each multirun is one array job, one task per run. Every task
is an ordinary run, so the grid runner's guarantees hold across hosts that share
``results_dir``, whatever order runs finish in: a run with a success row is skipped, a
killed one resumes from its last checkpoint, and a run that another task has claimed is
left to it, so every run gets exactly one row. Everything is checked before anything is
submitted. ``--dry-run`` prints the commands instead.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Sequence

from .config import ConfigError
from .data import DataError
from .grid import GridError, grid_names, load_grid, plan, split_overrides

DEFAULT_LAUNCHER = "hydra/launcher=slurm"


def sweep_commands(name: str, overrides: Sequence[str] = ()) -> list[list[str]]:
    """One ``python -m cpvt_lab.run -m ...`` command per plain grid of ``name``, after checking every run."""
    hydra_args = [o for o in overrides if o.lstrip("+~").startswith(("hydra/", "hydra."))]
    run_args = [o for o in overrides if o not in hydra_args]
    plan(name, run_args)  # composes and validates every run (data included) before anything is submitted
    if not any(o.startswith("hydra/launcher=") for o in hydra_args):
        hydra_args.insert(0, DEFAULT_LAUNCHER)
    seeds, run_args = split_overrides(run_args)
    return [[sys.executable, "-m", "cpvt_lab.run", "-m", *hydra_args, f"ablation={','.join(grid.ablations)}",
             f"seed={','.join(str(s) for s in seeds or grid.seeds)}", *grid.overrides, *run_args]
            for grid in load_grid(name)]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    dry_run = "--dry-run" in argv
    argv = [a for a in argv if a != "--dry-run"]
    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        print(f"usage: python -m cpvt_lab.sweep NAME [overrides...] [hydra/launcher=slurm|local] [--dry-run]\n"
              f"grids: {', '.join(grid_names())}", file=sys.stderr)
        return 2
    try:
        commands = sweep_commands(argv[0], argv[1:])
    except (GridError, ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for command in commands:
        print(shlex.join(["python", *command[1:]]), flush=True)
    if dry_run:
        return 0
    # launched together: a submitit launcher waits for its array, and the arrays should queue side by side
    procs = [subprocess.Popen(command) for command in commands]
    return max(proc.wait() for proc in procs)


if __name__ == "__main__":
    sys.exit(main())
