"""Means, intervals and verdicts over seeds.

Every cell of a table is a set of runs that differ only in the seed. A cell is
summarised by its mean, standard deviation (n-1) and a 95% Student-t interval
for the mean. A comparison of two cells A and B is the difference of means
A - B with a Welch interval (unequal variances, Welch-Satterthwaite degrees of
freedom); when both cells come from the same runs (one ablation at two test
sizes), the differences are paired by seed and get a t-interval of their own.
Then a verdict on a claim about it. A claim is ``greater``
(A - B > margin) or ``not_greater`` (A - B <= margin), as in
``cpvt_lab.tables.CLAIMS``; the margin is part of what the paper says ("GAP adds
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


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Mean of ``a`` minus mean of ``b``, with a Welch t-interval; needs two or more values on each side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a Welch interval needs >= 2 values per side, got {len(a)} and {len(b)}")
    diff = float(a.mean() - b.mean())
    va, vb = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    d = diff / pooled if pooled > 0 else math.copysign(math.inf, diff) if diff else 0.0
    if va + vb == 0:  # no spread at all: the difference is known exactly
        return Difference(diff, diff, diff, math.inf, d)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(va + vb)
    return Difference(diff, diff - half, diff + half, float(df), d)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Mean of the per-pair differences ``a[i] - b[i]`` (one run measured twice) with their t-interval."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired interval needs >= 2 pairs of equal length, got {len(a)} and {len(b)}")
    d = summarize(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), confidence)
    if d.std == 0:  # every pair differs by the same amount: the difference is known exactly
        return Difference(d.mean, d.mean, d.mean, d.n - 1, math.copysign(math.inf, d.mean) if d.mean else 0.0)
    return Difference(d.mean, d.low, d.high, d.n - 1, d.mean / d.std)


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
    sa, sb = summarize(a), summarize(b)
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
