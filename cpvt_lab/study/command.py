"""The study, a few whole runs at a time: ``python -m cpvt_lab.study [status|continue|merge] [study=cifar] [KEY=VALUE...]``.

  status     (the default) where the study stands: its runs in, per grid; the device time, devices and
             versions of its rows; the runs that come next. Reads only, and needs no data. With no study=,
             every study in ablations/studies/, one line each: its runs in, and where its rows and tables are.
  continue   train the next runs, whole, in the study's order of priority (within budget_seconds), measure
             every measured analysis (equivariance, the position probe, the attention maps) of every run whose
             weights are here and that lacks it, rewrite the study's tables (the paper's attention figures
             among them, once the seed-0 runs of the attention grid are measured), and print the status.
             Run it again, on any machine, to go on: runs with a row are not trained again, so rows brought
             back from several machines add up.
  merge      from=FILE: add the rows, measurements and predictions of a packed results folder (pack=, below)
             or another results folder to the study's, all at once or not at all: every incoming line is
             checked first (its fields, its run_id against its config, its data), and one that is no row
             refuses the whole merge, named; a finished row of a run finished here is refused with the
             difference, the rest added. Then rewrite the tables and print the status.

Keys:
  study=NAME         a study file in ablations/studies/ (cifar: the paper's grids, seeds 0-2, at scale=cifar
                     for a GPU; cpu: the same and the RoPE grid at scale=cpu, minutes a run on 2 CPU cores;
                     smoke: a miniature that measures nothing), or the path of one;
                     continue and merge work on cifar when none is given
  budget_seconds=0   continue: start no run that would not end within this many seconds (0: no budget)
  pack=FILE          continue: write the results folder into FILE (.tar.gz) after every run and at the end,
                     so a call killed at its time limit keeps every run it finished; checked before any
                     run trains, and never a file that pack did not write
  results_dir=, tables_dir=   instead of the study file's folders
Every other KEY=VALUE is a run-config override for every run that leaves the runs what they are
(data.archive=PATH, compile=false); one that would change their run_id is refused.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..ablations import SpecError, load_study
from ..ablations import names as study_names
from ..cli import UsageError, parse_words, run_command
from ..config import ConfigError
from ..data import DataError
from ..results import Rows
from .advance import advance, write_tables
from .exchange import check_pack_target, merge
from .plan import plan_study
from .standing import standing

ACTIONS = ("status", "continue", "merge")
CPU_SCALES = {"scale=smoke", "scale=cpu"}  # sized for a CPU: no warning there
DEFAULT_STUDY = "cifar"  # what continue and merge work on when no study= is given
OPTIONS = {"study": "", "budget_seconds": 0.0, "results_dir": "", "tables_dir": "", "pack": "", "from": ""}


def _main(argv: list[str]) -> int:
    action = argv.pop(0) if argv and "=" not in argv[0] and not argv[0].startswith("-") else "status"
    if action not in ACTIONS:
        raise UsageError(action, f"unknown action; valid: {', '.join(ACTIONS)} (see --help)")
    args, extra = parse_words(argv, OPTIONS)
    if args["budget_seconds"] < 0:
        raise UsageError("budget_seconds", f"must be >= 0 (0: no budget), got {args['budget_seconds']}")
    if action == "status" and not args["study"]:
        if extra or args["results_dir"] or args["tables_dir"]:
            raise UsageError("study", "name the study these words are for (study=NAME); "
                                      f"valid: {', '.join(study_names('study'))}")
        print(overview(), flush=True)
        return 0
    study = load_study(args["study"] or DEFAULT_STUDY)
    study = dataclasses.replace(study, **{k: args[k] for k in ("results_dir", "tables_dir") if args[k]})
    if action == "merge":
        source = Path(args["from"] or "")
        if not args["from"] or not source.exists():
            raise UsageError("from", f"merge needs from=FILE, a packed study (.tar.gz) or a results folder; "
                                     f"got {args['from']!r}" + (" (not found)" if args["from"] else ""))
    if args["pack"]:
        check_pack_target(args["pack"])
    planned = plan_study(study, extra)  # every run composed and checked (the data before training) before any work
    rows, failed = Rows(study.results_dir), []  # read once, passed down; the rows this call adds join them
    if rows.bad:
        print(rows.bad_lines_note(), file=sys.stderr, flush=True)
    if action == "continue":
        _warn_without_gpu(study)
        failed = advance(study, planned, rows, args["budget_seconds"], pack_to=args["pack"] or None).failed
    elif action == "merge":
        print(merge(source, rows).report(str(source), study.results_dir), flush=True)
        write_tables(study, rows)
    print(standing(study, planned, rows).report(), flush=True)
    return 1 if failed else 0


def overview() -> str:
    """Every study of ablations/studies/ and where it stands, one line each (planning needs no data)."""
    lines = ["studies (ablations/studies/):"]
    studies = [load_study(name) for name in study_names("study")]
    width = max(len(study.name) for study in studies)
    for study in studies:
        lines.append("  " + standing(study, plan_study(study, []), Rows(study.results_dir)).summary(width))
    lines.append("one study in detail: python -m cpvt_lab.study study=NAME; "
                 "continue one: python -m cpvt_lab.study continue study=NAME")
    return "\n".join(lines)


def _warn_without_gpu(study) -> None:
    """A GPU-sized study on a CPU is not refused (it is honest, only slow), but said before hours go into it."""
    import torch

    if not torch.cuda.is_available() and not CPU_SCALES & set(study.overrides):
        print(f"note: no GPU here; a run of study {study.name} ({' '.join(study.overrides)}) may take hours on this "
              "CPU (study=cpu is sized for a CPU)", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command(_main, __doc__, argv, errors=(SpecError, ConfigError, DataError))


if __name__ == "__main__":
    sys.exit(main())
