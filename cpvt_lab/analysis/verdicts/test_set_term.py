"""The test-set term of a difference A - B, from which test images each model gets right.

Both cells of a claim are scored on the same m test images, so their top-1s are not independent: an image that
is easy for one model is mostly easy for the other. With the runs' stored predictions (``cpvt_lab.predictions``)
the test-set variance of A - B is measured rather than assumed. For image i let

    d_i = 100 * (mean over A's runs of correct_i  -  mean over B's runs of correct_i)     (points)

A - B is the mean of d_i over the m images, so over resampled test sets its variance is var_i(d_i) / m, a
McNemar-type term: it counts only the images on which the models disagree. (Paired by seed, the same d_i is the
mean over seeds of the per-seed differences.) Added to the seed part, it counts the seed-by-image
interaction twice, which errs towards "inconclusive", as the binomial fallback does by more.

Runs made before predictions were stored have none. Where only some runs of a claim have them, d_i is taken
over those (for a paired design, the seed pairs in which both runs have them): fewer runs average away less of
each image's noise, so the term measured on them is, in expectation, at least that of all the runs. Where no
run of one cell has them, the caller falls back to both cells' binomial terms (as if independent: larger still).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from ... import predictions

BINOMIAL = "binomial, as if independent (no predictions)"


@dataclass(frozen=True)
class TestSetTerm:
    variance: Optional[float]  # points^2; None: no predictions, the binomial terms apply
    source: str  # where the term comes from, in words


def measured(correct_a: Sequence[np.ndarray], correct_b: Sequence[np.ndarray]) -> float:
    """var_i(d_i) / m in points^2, from each cell's runs' (m,) correct/incorrect arrays on the same images; var_i(d_i)
    is held at least that of half an image disagreed on (10^4 * 0.5 / m), as ``stats.binomial_variance`` holds p
    0.5/m inside 0 and 1: two models that agree on every test image still leave a doubt."""
    d = 100.0 * (np.mean(np.asarray(correct_a, dtype=float), axis=0) - np.mean(np.asarray(correct_b, dtype=float),
                                                                              axis=0))
    m = len(d)
    return float(max(d.var(ddof=1), 1e4 * 0.5 / m) / m)


class StoredPredictions:
    """The stored predictions of a results folder's runs, read once (``cpvt_lab.predictions``)."""

    def __init__(self, results_dir: str | Path, run_ids: Iterable[str]):
        self.runs = {r: p for r in dict.fromkeys(run_ids) if (p := predictions.load(results_dir, r)) is not None}

    def correct(self, run_id: str, size: int) -> Optional[tuple[bytes, np.ndarray]]:
        """(the test labels as bytes, the (m,) correct/incorrect array) of a run at ``size``, or None."""
        p = self.runs.get(run_id)
        return None if p is None or size not in p.predicted else (p.labels.tobytes(), p.correct(size))


def term(runs_a: Sequence[tuple[str, int]], runs_b: Sequence[tuple[str, int]],
         stored: Optional[StoredPredictions], paired: bool) -> TestSetTerm:
    """The test-set term of A - B from the predictions of the runs used (``runs_a``, ``runs_b``: (run_id, size_px)
    of each run, position i of both the same seed where ``paired``)."""
    if stored is None:
        return TestSetTerm(None, BINOMIAL)
    a = [stored.correct(*r) for r in runs_a]
    b = [stored.correct(*r) for r in runs_b]
    if paired:
        kept = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
        a, b = [x for x, _ in kept], [y for _, y in kept]
        have, total, unit = len(kept), len(runs_a), "pairs"
    else:
        a, b = [x for x in a if x is not None], [y for y in b if y is not None]
        have, total, unit = len(a) + len(b), len(runs_a) + len(runs_b), "runs"
    if not a or not b:
        return TestSetTerm(None, BINOMIAL)
    if len({labels for labels, _ in [*a, *b]}) > 1:  # scored on different test sets: no image-by-image pairing
        return TestSetTerm(None, "binomial, as if independent (the predictions hold different test labels)")
    a, b = [c for _, c in a], [c for _, c in b]
    said = f"predictions of all {total} {unit}" if have == total else (
        f"predictions of {have} of {total} {unit} (estimated from those)")
    return TestSetTerm(measured(a, b), said)
