"""Run one grid as a study: ``python -m cpvt_lab.grid NAME [seeds=[0,1]] [budget_seconds=S] [KEY=VALUE...]``.

A grid is a YAML file in ``ablations/grids/`` naming ablations, seeds and the training and evaluation sizes;
``include:`` unions other grids. NAME is a grid's name or the path of a grid YAML file. ``seeds=[...]``
replaces the grid's seeds; every other KEY=VALUE is a run-config override of ``cpvt_lab.run`` for every run
(``results_dir=DIR`` says where the rows go). The runs are planned and trained as a study's are, by the same
runner (``cpvt_lab.study.runner``): a run is its run_id, so a run shared by two grids is trained once, and a
run with a success row is skipped, an interrupted one resumes from its last checkpoint, a failed one is
recorded and the grid goes on, and a run another process is training is waited for. ``budget_seconds=S``
starts no run that would not end within S seconds (judged by the longest run so far, failed ones included;
the first always starts), so a short GPU slot ends with whole runs only. The tables of the rows:
``python -m cpvt_lab.tables results_dir=DIR``; a study file adds seeds, measurements and tables
(``python -m cpvt_lab.study``); a cluster: ``python -m cpvt_lab.sweep``.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence

from .ablations import SpecError, names, one_grid
from .cli import UsageError, name_first, parse_words, run_command
from .config import ConfigError
from .data import DataError
from .study.plan import plan_study
from .study.runner import RunReport, run_planned

OPTIONS = {"seeds": None, "budget_seconds": 0.0}  # the grid's own words (0: no budget); the rest are overrides


def run_grid(name: str, overrides: Sequence[str] = (), seeds: Any = None, out=sys.stdout,
             budget_seconds: float = 0) -> RunReport:
    """Run every run of grid ``name`` not yet done (within ``budget_seconds``, when > 0); return what was
    trained, skipped, failed and left for later."""
    runs = plan_study(one_grid(name, tuple(overrides), seeds))  # every run composed and checked first
    return run_planned(name, runs, out=out, budget_seconds=budget_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    def grid(argv: list[str]) -> int:
        name, words = name_first(argv, "grid", [*names("grid"), "or the path of a grid YAML file"])
        options, overrides = parse_words(words, OPTIONS)
        if options["budget_seconds"] < 0:
            raise UsageError("budget_seconds", f"must be >= 0 (0: no budget), got {options['budget_seconds']}")
        return 1 if run_grid(name, overrides, options["seeds"], budget_seconds=options["budget_seconds"]).failed else 0

    return run_command(grid, f"{__doc__}\ngrids: {', '.join(names('grid'))}", argv,
                       errors=(SpecError, ConfigError, DataError))


if __name__ == "__main__":
    sys.exit(main())
