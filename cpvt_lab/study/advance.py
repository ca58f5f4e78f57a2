"""One step of a study: train the next whole runs within a budget, measure what needs their weights while the
weights exist, draw the attention figures once their runs are at hand, and rewrite the study's tables."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from ..analysis import report, store
from ..analysis.kinds import MEASURED
from ..analysis.measure import measure_run
from ..analysis.runs import checkpoint_path
from ..grid import GridReport, PlannedRun, run_planned
from ..results import FIGURES_DIR, finished_rows
from .definition import Study

ATTENTION = ("learned", "none", "peg")  # the paper's figures: DeiT, DeiT without encoding, CPVT
ATTENTION_FIGURES = ("attention_matrices.png", "attention_query_tiles.png")


def advance(study: Study, planned: Sequence[PlannedRun], budget_seconds: float = 0, out=None) -> GridReport:
    """Train the study's next ``planned`` runs (whole runs, in order, within ``budget_seconds`` when > 0), then
    measure, draw and table; a measurement that fails is reported and the rows are kept."""
    out = out or sys.stdout
    trained = run_planned(f"{study.name} (study)", planned, out, budget_seconds)  # what it trained, skipped, ...
    measure_new(study, out)
    draw_attention(study, out)
    if finished_rows(study.results_dir):
        written = report.write_all(study.results_dir, study.tables_dir)
        print(f"tables: {len(written)} files written to {study.tables_dir}/", file=out, flush=True)
    return trained


def measure_new(study: Study, out) -> None:
    """Every analysis that needs the weights, for each run whose checkpoint is here and that lacks it."""
    for row in finished_rows(study.results_dir):
        if not weights_here(row):
            continue
        for kind in MEASURED:
            if (store.folder(study.results_dir, kind) / f"{row['run_id']}.csv").is_file():
                continue
            try:
                frame = measure_run(kind, row, images=study.analysis_images, **MEASURED[kind].options)
            except Exception as err:  # noqa: BLE001 - one failed measurement must not cost the slot's rows
                print(f"{kind} of {row['ablation']} seed {row['seed']} FAILED: {type(err).__name__}: {err}",
                      file=out, flush=True)
                continue
            print(f"{kind}: {row['ablation']} seed {row['seed']} -> {store.save(study.results_dir, kind, frame)}",
                  file=out, flush=True)


def draw_attention(study: Study, out) -> None:
    """The paper's attention figures into ``<results_dir>/figures/``, from seed-0 runs whose checkpoints are here."""
    figures = Path(study.results_dir) / FIGURES_DIR
    if all((figures / name).is_file() for name in ATTENTION_FIGURES):
        return
    here = {r["ablation"] for r in finished_rows(study.results_dir)
            if r["seed"] == min(study.seeds) and weights_here(r)}
    if not set(ATTENTION) <= here:
        print(f"attention figures: waiting for the seed-{min(study.seeds)} runs of {', '.join(ATTENTION)} with their "
              f"checkpoints here (have: {', '.join(sorted(here & set(ATTENTION))) or 'none'})", file=out, flush=True)
        return
    report.write_attention(study.results_dir, figures, ATTENTION, block=1, images=64)
    print(f"attention figures drawn into {figures}/", file=out, flush=True)


def weights_here(row: dict) -> bool:
    try:
        return bool(checkpoint_path(row))
    except FileNotFoundError:  # trained on another machine (an earlier slot): its measurements came with its row
        return False
