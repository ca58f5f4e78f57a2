"""Which results folder a notebook reads, said in its first output.

``$CPVT_RESULTS_DIR`` when set; else your own runs (``outputs/results``, where ``python -m cpvt_lab.run`` appends
its rows) once one of them has finished; else the committed CPU study (``results/cpu``), so that a fresh clone opens
on finished tables, claims and attention maps instead of "no finished run". Paths are relative to the notebook's
folder, as the notebooks run there, so that the committed outputs name no machine's paths.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..results import Rows

OWN = Path("../outputs/results")
COMMITTED = Path("../results/cpu")


def results_folder() -> Path:
    given = os.environ.get("CPVT_RESULTS_DIR")
    if given:
        print(f"reading {given} (set by $CPVT_RESULTS_DIR)")
        return Path(given)
    if (OWN / "runs.jsonl").exists() and Rows(OWN).finished():
        print(f"reading {OWN.as_posix()}, your own runs ($CPVT_RESULTS_DIR=DIR reads another folder)")
        return OWN
    print(f"reading {COMMITTED.as_posix()}, the committed CPU study: no run of yours has finished in "
          f"{OWN.as_posix()} yet ($CPVT_RESULTS_DIR=DIR reads another folder)")
    return COMMITTED
