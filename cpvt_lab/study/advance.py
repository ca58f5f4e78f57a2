"""One step of a study: train the next whole runs within a budget, measure each run while its weights exist
(the attention maps the figures are drawn from included), pack the results after each run, and rewrite the
study's tables (with the attention figures, once their runs are measured)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from ..ablations import Study, shorter_study_folder
from ..analysis.pages import report
from ..analysis.measures import store
from ..analysis.kinds import MEASURED
from ..analysis.measures.measure import measure_run
from ..analysis.measures.runs import checkpoint_path
from ..results import Rows, claim
from .exchange import pack
from .plan import PlannedRun
from .runner import RunReport, run_planned



def advance(study: Study, planned: Sequence[PlannedRun], rows: Rows, budget_seconds: float = 0, out=None,
            pack_to: Optional[str | Path] = None) -> RunReport:
    """Train the study's next ``planned`` runs (whole runs, in order, within ``budget_seconds`` when > 0; ``rows``:
    its results folder's, as the command read them, and each new one added),
    measuring each as it ends and packing the results folder into ``pack_to`` after each; then measure what an
    earlier call left unmeasured, and write the tables. A measurement that fails is reported, and tried again by the
    next call on a machine that has the weights; the rows are kept."""
    out = out or sys.stdout

    def after_run(run: PlannedRun, row: dict[str, Any]) -> None:
        if pack_to:  # the row first: a call killed while measuring keeps the run
            pack(study.results_dir, pack_to)
        measure_row(study, row, out)
        if pack_to:
            pack(study.results_dir, pack_to)

    trained = run_planned(f"{study.name} (study)", planned, rows, out, budget_seconds, after_run=after_run)
    for row in rows.finished():
        if weights_here(row):
            measure_row(study, row, out)
    if rows.finished():
        write_tables(study, rows, out)
    if pack_to:
        print(f"packed {study.results_dir} into {pack(study.results_dir, pack_to)}", file=out, flush=True)
    return trained


def write_tables(study: Study, rows: Rows, out=None) -> list[Path]:
    """The study's tables, and, for a study that trains another's ablations longer (``longer_than``), the page of
    which of that study's verdicts hold here (once it has rows)."""
    out = out or sys.stdout
    shorter = shorter_study_folder(study)
    if study.longer_than and shorter is None:
        print(f"no longer_training page: the study {study.longer_than} has no rows yet", file=out)
    written = report.write_all(rows, study.tables_dir, shorter)
    print(f"tables: {len(written)} files written to {study.tables_dir}/", file=out, flush=True)
    return written


def measured(results_dir: str | Path, kind: str, row: dict[str, Any]) -> bool:
    return (store.folder(results_dir, kind) / f"{row['run_id']}.csv").is_file()


def measure_row(study: Study, row: dict[str, Any], out) -> None:
    """Every analysis that needs the run's weights and is not stored yet for it; left to another process (a worker
    of the same study on this machine) that is measuring the run now. A study with ``analysis_images: 0`` (a
    sweep) measures nothing."""
    if not study.analysis_images:
        return
    with claim(study.results_dir, f"measure-{row['run_id']}") as mine:
        if mine:
            _measure(study, row, out)


def _measure(study: Study, row: dict[str, Any], out) -> None:
    for kind in MEASURED:
        if measured(study.results_dir, kind, row):
            continue
        try:
            frame = measure_run(kind, row, images=study.analysis_images, **MEASURED[kind].options)
        except Exception as err:  # noqa: BLE001 - one failed measurement must not cost the slot's rows
            print(f"{kind} of {row['ablation']} seed {row['seed']} FAILED: {type(err).__name__}: {err}",
                  file=out, flush=True)
            continue
        print(f"{kind}: {row['ablation']} seed {row['seed']} -> {store.save(study.results_dir, kind, frame)}",
              file=out, flush=True)


def weights_here(row: dict) -> bool:
    try:
        return bool(checkpoint_path(row))
    except FileNotFoundError:  # trained on another machine (an earlier slot): its measurements came with its row
        return False
