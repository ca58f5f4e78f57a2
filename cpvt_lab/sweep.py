"""A grid on a cluster: ``python -m cpvt_lab.sweep NAME [seeds=[0,1]] [dry_run=true] [KEY=VALUE...]``.

The cluster launcher (SLURM through submitit), and only that: on one machine a grid runs with
``python -m cpvt_lab.grid NAME``, a study with ``python -m cpvt_lab.study``. Each plain grid (a grid that includes others has several) becomes one multirun of
``python -m cpvt_lab.run`` over its ablations and seeds, all launched together; with the
SLURM launcher (the default) each multirun is one array job, one task per run. Every task
is an ordinary run, so the grid runner's guarantees hold across hosts that share
``results_dir``, whatever order runs finish in: a run with a success row is skipped, a
killed one resumes from its last checkpoint, and a run that another task has claimed is
left to it, so every run gets exactly one row. Everything is checked, the data included, before
anything is submitted. NAME, ``seeds=[...]`` and the run-config overrides are those of ``cpvt_lab.grid``;
``hydra/launcher=local`` (or any ``hydra...`` override) goes to the multiruns; ``dry_run=true``
prints the commands instead of launching them.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any, Sequence

from .ablations import SpecError, check_seeds, load_grid, names, one_grid
from .cli import name_first, parse_words, run_command
from .config import ConfigError
from .data import DataError
from .grid import OPTIONS as GRID_OPTIONS
from .study.plan import check_runs_data, plan_study

DEFAULT_LAUNCHER = "hydra/launcher=slurm"
OPTIONS = {**GRID_OPTIONS, "dry_run": False}


def sweep_commands(name: str, overrides: Sequence[str] = (), seeds: Any = None) -> list[list[str]]:
    """One ``python -m cpvt_lab.run -m ...`` command per plain grid of ``name``, after checking every run."""
    hydra_args = [o for o in overrides if o.lstrip("+~").startswith(("hydra/", "hydra."))]
    run_args = [o for o in overrides if o not in hydra_args]
    check_runs_data(plan_study(one_grid(name, tuple(run_args), seeds)))  # every run checked before any is submitted
    if not any(o.startswith("hydra/launcher=") for o in hydra_args):
        hydra_args.insert(0, DEFAULT_LAUNCHER)
    seeds = None if seeds is None else check_seeds(seeds, "seeds")
    return [[sys.executable, "-m", "cpvt_lab.run", "-m", *hydra_args, f"ablation={','.join(grid.ablations)}",
             f"seed={','.join(str(s) for s in seeds or grid.seeds)}", *grid.overrides, *run_args, *grid.changes]
            for grid in load_grid(name)]


def main(argv: Sequence[str] | None = None) -> int:
    def sweep(argv: list[str]) -> int:
        name, words = name_first(argv, "grid", [*names("grid"), "or the path of a grid YAML file"])
        options, overrides = parse_words(words, OPTIONS)
        commands = sweep_commands(name, overrides, options["seeds"])
        for command in commands:
            print(shlex.join(["python", *command[1:]]), flush=True)
        if options["dry_run"]:
            return 0
        # launched together: a submitit launcher waits for its array, and the arrays should queue side by side
        procs = [subprocess.Popen(command) for command in commands]
        return max(proc.wait() for proc in procs)

    return run_command(sweep, f"{__doc__}\ngrids: {', '.join(names('grid'))}", argv,
                       errors=(SpecError, ConfigError, DataError))


if __name__ == "__main__":
    sys.exit(main())
