"""The paper's tables beside our runs: ``python -m cpvt_lab.tables [results=DIR] [out=DIR]``.

Writes into ``out`` (default outputs/tables) everything made from ``<results>/runs.jsonl``
(default outputs/results) and the published figures: one table per study of the paper,
the claims judged, the analyses' tables and the figures (``cpvt_lab.analysis.report``).
The committed tables: ``python -m cpvt_lab.tables results=results/smoke out=paper_tables/smoke``.

Keys:
  results=DIR   folder holding runs.jsonl (default: outputs/results, where runs append)
  out=DIR       folder to write the tables to (default: outputs/tables)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from .analysis.frames import load_runs
from .analysis.report import write_all
from .cli import UsageError, parse_words, run_command
from .results import DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR, results_path

OPTIONS = {"results": DEFAULT_RESULTS_DIR, "out": DEFAULT_TABLES_DIR}


def write_tables(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Every table (Markdown, CSV, figures) of ``results_dir`` into ``out_dir``; return the files written."""
    return write_all(results_dir, out_dir)


def _main(argv: list[str]) -> int:
    args, extra = parse_words(argv, OPTIONS)
    if extra:
        raise UsageError(extra[0].partition("=")[0], f"unknown key; valid: {', '.join(OPTIONS)} (see --help)")
    if not Path(args["results"]).is_dir():
        raise UsageError("results", f"{args['results']!r} is not a folder (it should hold runs.jsonl)")
    written = write_tables(args["results"], args["out"])
    print(f"{len(written)} files written to {args['out']}/ from {results_path(args['results'])} "
          f"({load_runs(args['results']).run_id.nunique()} finished runs)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command(_main, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
