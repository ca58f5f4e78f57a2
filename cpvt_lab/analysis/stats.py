"""Means, intervals and verdicts over seeds.

Every cell of a table is a set of runs that differ only in the seed. A cell is
summarised by its mean, standard deviation (n-1) and a 95% Student-t interval
for the mean. A comparison of two cells A and B is the difference of means
A - B with a Welch interval (unequal variances, Welch-Satterthwaite degrees of
freedom; scipy's ``ttest_ind(equal_var=False)``); when both cells come from the
same runs (one ablation at two test sizes), the differences are paired by seed
(``ttest_rel``).
Then a verdict on a claim about it. A claim is ``greater``
(A - B > margin) or ``not_greater`` (A - B <= margin), as in
``cpvt_lab.studies.CLAIMS``; the margin is part of what the paper says ("GAP adds
more than 1 point": margin 1), so:

- reproduced: the claim holds over the whole interval
  (greater: low > margin; not_greater: high <= margin);
- contradicted: the claim fails over the whole interval
  (greater: high <= margin; not_greater: low > margin); with margin 0 this is
  "the interval lies wholly in the opposite direction";
- inconclusive: the interval straddles the margin, or either cell has fewer than
  two seeds (no interval exists); the reason says which.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
DIRECTIONS = ("greater", "not_greater")
VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Summary:
    """One cell: n seeds, their mean and standard deviation, and a t-interval for the mean."""
    n: int
    mean: float
    std: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """A - B with its Welch interval and a standardised effect size (Cohen's d, pooled SD)."""
    diff: float
    low: float
    high: float
    df: float
    cohens_d: float


def cell_summary(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """One cell's n, mean, std and t-interval of the mean (NaN where fewer than two values give none)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    if x.std() == 0:  # identical seeds: the mean is known exactly (scipy gives NaN and warns)
        return Summary(n, mean, 0.0, mean, mean)
    low, high = sps.t.interval(confidence, n - 1, loc=mean, scale=sps.sem(x))
    return Summary(n, mean, float(x.std(ddof=1)), float(low), float(high))


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Mean of ``a`` minus mean of ``b``, with a Welch t-interval; needs two or more values on each side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a Welch interval needs >= 2 values per side, got {len(a)} and {len(b)}")
    diff = float(a.mean() - b.mean())
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    d = diff / pooled if pooled > 0 else math.copysign(math.inf, diff) if diff else 0.0
    if a.var() + b.var() == 0:  # scipy warns and guesses a df here; with no spread the difference is exact
        return Difference(diff, diff, diff, math.inf, d)
    test = sps.ttest_ind(a, b, equal_var=False)
    ci = test.confidence_interval(confidence)
    return Difference(diff, float(ci.low), float(ci.high), float(test.df), d)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Mean of the per-pair differences ``a[i] - b[i]`` (one run measured twice) with their t-interval."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired interval needs >= 2 pairs of equal length, got {len(a)} and {len(b)}")
    pairs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, std = float(pairs.mean()), float(pairs.std(ddof=1))
    if std == 0:  # every pair differs by the same amount: the difference is known exactly (scipy gives NaN)
        return Difference(mean, mean, mean, len(pairs) - 1, math.copysign(math.inf, mean) if mean else 0.0)
    test = sps.ttest_rel(a, b)
    ci = test.confidence_interval(confidence)
    return Difference(mean, float(ci.low), float(ci.high), float(test.df), mean / std)


def verdict(difference: Difference, direction: str, margin: float = 0.0) -> tuple[str, str]:
    """(verdict, reason) for the claim on A - B, given its interval."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    lo, hi = difference.low, difference.high
    span = f"95% CI of A-B [{lo:+.2f}, {hi:+.2f}]"
    above, below = lo > margin, hi <= margin  # the whole interval on one side of the margin
    if not (above or below):
        return "inconclusive", f"{span} straddles {margin:g}"
    holds = above if direction == "greater" else below
    side = f"{'above' if above else 'at or below'} {margin:g}"
    return ("reproduced" if holds else "contradicted"), f"{span} wholly {side}"


def compare(a: Sequence[float], b: Sequence[float], direction: str, margin: float = 0.0,
            paired: bool = False) -> dict:
    """Both cells' summaries, the difference and the verdict, as one flat record (a table row).

    ``paired``: ``a[i]`` and ``b[i]`` come from the same run (Cohen's d is then d_z, over the differences).
    """
    sa, sb = cell_summary(a), cell_summary(b)
    record = {**{f"a_{k}": v for k, v in asdict(sa).items()}, **{f"b_{k}": v for k, v in asdict(sb).items()}}
    if sa.n < 2 or sb.n < 2:
        diff = sa.mean - sb.mean if sa.n and sb.n else math.nan
        reason = "no runs" if not (sa.n and sb.n) else f"n<2 seeds (A has {sa.n}, B has {sb.n}): no interval"
        return {**record, "diff": diff, "diff_low": math.nan, "diff_high": math.nan, "cohens_d": math.nan,
                "paired": paired, "verdict": "inconclusive", "reason": reason}
    d = paired_difference(a, b) if paired else welch_difference(a, b)
    outcome, reason = verdict(d, direction, margin)
    return {**record, "diff": d.diff, "diff_low": d.low, "diff_high": d.high, "cohens_d": d.cohens_d,
            "paired": paired, "verdict": outcome, "reason": reason}
