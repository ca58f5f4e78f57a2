"""A results folder as the analyses read it: its rows read once (or as a command passed them down), and the frames
made from them, each made once when first asked for."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from ..results import Rows, rows_of
from .measures import store
from .verdicts.claims import judge_claims
from .frames import load_curves, load_runs, measured_runs, repeated_seeds
from .verdicts.test_set_term import StoredPredictions


class ResultsFolder:
    def __init__(self, results: "str | Path | Rows | ResultsFolder"):
        self.rows = results.rows if isinstance(results, ResultsFolder) else rows_of(results)
        self._measured: dict[str, pd.DataFrame] = {}

    @property
    def results_dir(self) -> Path:
        return self.rows.results_dir

    @cached_property
    def runs(self) -> pd.DataFrame:
        """One line per finished run and test size (``frames.load_runs``)."""
        return load_runs(self.rows)

    @cached_property
    def curves(self) -> pd.DataFrame:
        """One line per finished run and epoch (``frames.load_curves``)."""
        return load_curves(self.rows)

    @cached_property
    def predictions(self) -> StoredPredictions:
        """The runs' stored predictions: which test images each got right (runs made before they were stored have
        none)."""
        return StoredPredictions(self.results_dir, self.runs.run_id)

    @cached_property
    def claims(self) -> pd.DataFrame:
        """Every claim of the paper judged on the runs (``claims.judge_claims``)."""
        return judge_claims(self.runs, stored=self.predictions)

    @cached_property
    def repeated(self) -> list[tuple[dict, dict]]:
        """(row left out, the later row that counts instead) for every seed recorded twice in one setting."""
        return repeated_seeds(self.rows)

    def measured(self, kind: str) -> pd.DataFrame:
        """The stored measurements of ``kind`` of the folder's stable result runs (``frames.measured_runs``)."""
        if kind not in self._measured:
            frame = store.load(self.results_dir, kind)
            self._measured[kind] = measured_runs(frame, self.runs)[0] if len(frame) else frame
        return self._measured[kind]
