"""The paper's tables beside our runs: ``python -m cpvt_lab.tables [results_dir=DIR] [tables_dir=DIR]``.

Writes into ``tables_dir`` (default outputs/tables) everything made from ``<results_dir>/runs.jsonl``
(default outputs/results) and the published figures: one page per table of the paper, the claims
judged, the analyses' tables and the figures (``cpvt_lab.analysis.pages.report``). The committed tables:
``python -m cpvt_lab.tables results_dir=results/smoke tables_dir=paper_tables/smoke``.

Keys:
  results_dir=DIR   folder holding runs.jsonl (default: outputs/results, where runs append)
  tables_dir=DIR    folder to write the tables to (default: outputs/tables)
No other KEY=VALUE is taken (results= and out= are the old names of the two, and still read).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from .ablations import SpecError, load_grid, names, shorter_study_folder, study_of_folder
from .cli import UsageError, parse_words, run_command
from .results import DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR, Rows, results_path

OPTIONS = {"results_dir": DEFAULT_RESULTS_DIR, "tables_dir": DEFAULT_TABLES_DIR}


def write_tables(results: str | Path | Rows, tables_dir: str | Path) -> list[Path]:
    """Every table (Markdown, CSV, figures) of ``results`` (a results folder, or its rows) into ``tables_dir``, as
    the study whose folder it is writes them (with ``longer_training.md`` for one that trains another's ablations
    longer); return the files written."""
    from .analysis.pages.report import write_all  # reads the grid files as it loads: after check_grids

    study = study_of_folder(results.results_dir if isinstance(results, Rows) else results)
    return write_all(results, tables_dir, shorter_study_folder(study) if study else None)


def check_grids() -> None:
    """Every grid file read once, so that a broken one is one line (``SpecError``), not a traceback."""
    for name in names("grid"):
        load_grid(name)


def _main(argv: list[str]) -> int:
    args, extra = parse_words(argv, OPTIONS)
    if extra:
        raise UsageError(extra[0].partition("=")[0], f"unknown key; valid: {', '.join(OPTIONS)} (see --help)")
    if not Path(args["results_dir"]).is_dir():
        raise UsageError("results_dir", f"{args['results_dir']!r} is not a folder (it should hold runs.jsonl)")
    check_grids()
    rows = Rows(args["results_dir"])
    if rows.bad:  # named, left out; the tables are made from the rest
        print(rows.bad_lines_note(), file=sys.stderr, flush=True)
    written = write_tables(rows, args["tables_dir"])
    print(f"{len(written)} files written to {args['tables_dir']}/ from {results_path(args['results_dir'])} "
          f"({len(rows.finished())} finished runs)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command(_main, __doc__, argv, errors=(SpecError,))


if __name__ == "__main__":
    sys.exit(main())
