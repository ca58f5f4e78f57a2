"""Means, intervals and verdicts over seeds and test images.

Every cell of a table is a set of runs that differ only in the seed, each measured on the
same m test images. Its mean top-1 is uncertain for two reasons: the seeds (another seed,
another model) and the test set (another m images, another top-1). So the variance of a
cell's mean is

    V = s^2 / n  +  10^4 p (1 - p) / m        (top-1 in points, p = mean / 100)

the seed variance of the mean plus the binomial variance of a top-1 measured on m images
(p held 0.5/m inside 0 and 1, so a perfect or a zero score still carries a doubt). The
binomial part does not shrink with more seeds: every seed is scored on the same images.
A difference of two cells A - B adds both cells' terms (paired by seed, one ablation at two
test sizes: the seed variance of the per-seed differences, plus the binomial terms of both
sizes); as both cells share one test set, adding their binomial terms overstates the
variance of the difference, which errs on the side of "inconclusive".

The interval is mean ± t * sqrt(V) with Welch-Satterthwaite degrees of freedom in which the
binomial part counts as a known variance (infinite degrees of freedom):
df = V^2 / sum((s_i^2 / n_i)^2 / (n_i - 1)). With no seed spread at all that is a normal
interval (df infinite), as wide as the test set makes it; without a known number of test
images (a data set whose test set nothing records) the seed part alone remains, as in Student's and
Welch's tests, and zero spread then gives no interval at all. One seed gives none either.

Then a verdict on a claim about A - B. A claim is ``greater`` (A - B > margin) or
``not_greater`` (A - B <= margin), as in ``cpvt_lab.paper.CLAIMS``; the margin is part of
what the paper says ("GAP adds more than 1 point": margin 1), so:

- reproduced: the claim holds over the whole interval
  (greater: low > margin; not_greater: high <= margin);
- contradicted: the claim fails over the whole interval
  (greater: high <= margin; not_greater: low > margin); with margin 0 this is
  "the interval lies wholly in the opposite direction";
- inconclusive: the interval straddles the margin, there is no interval, or either cell has
  fewer than ``MIN_SEEDS`` (3) seeds, whatever its interval: two seeds say too little about
  the spread of a third. The reason says which.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
MIN_SEEDS = 3  # fewer seeds in a cell: inconclusive whatever the interval
DIRECTIONS = ("greater", "not_greater")
VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Summary:
    """One cell: n seeds, their mean and standard deviation, and an interval for the mean."""
    n: int
    mean: float
    std: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """A - B with its interval and a standardised effect size (Cohen's d, pooled SD)."""
    diff: float
    low: float
    high: float
    df: float
    cohens_d: float


def binomial_variance(mean: float, test_images: Optional[int]) -> float:
    """The variance (points^2) of a top-1 of ``mean`` percent measured on ``test_images`` images (0 when unknown)."""
    if not test_images or math.isnan(mean):
        return 0.0
    p = min(max(mean / 100.0, 0.5 / test_images), 1.0 - 0.5 / test_images)
    return 1e4 * p * (1.0 - p) / test_images


def interval(centre: float, seed_parts: Sequence[tuple[float, int]], known: float,
             confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(low, high, df) around ``centre``: ``seed_parts`` are (s^2 / n, n) of each cell, ``known`` the binomial
    variance; Welch-Satterthwaite df with the known part at infinite df. NaN when the variance is zero."""
    total = sum(v for v, _ in seed_parts) + known
    if total <= 0:
        return math.nan, math.nan, math.nan
    if known == 0 and len(seed_parts) == 1:
        df = float(seed_parts[0][1] - 1)  # Student's t, exactly
    else:
        estimated = sum(v * v / (n - 1) for v, n in seed_parts)
        df = total * total / estimated if estimated > 0 else math.inf
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(total)
    return centre - half, centre + half, df


def cell_summary(values: Sequence[float], test_images: Optional[int] = None,
                 confidence: float = CONFIDENCE) -> Summary:
    """One cell's n, mean, std and interval of the mean (NaN where fewer than two values give none)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    low, high, _ = interval(mean, [(std ** 2 / n, n)], binomial_variance(mean, test_images), confidence)
    return Summary(n, mean, std, low, high)


def _cohens_d(diff: float, spread: float) -> float:
    return diff / spread if spread > 0 else math.copysign(math.inf, diff) if diff else 0.0


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                     test_images: tuple[Optional[int], Optional[int]] = (None, None)) -> Difference:
    """Mean of ``a`` minus mean of ``b`` with its interval (Welch, plus both cells' binomial terms);
    needs two or more values on each side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a Welch interval needs >= 2 values per side, got {len(a)} and {len(b)}")
    diff = float(a.mean() - b.mean())
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    known = binomial_variance(a.mean(), test_images[0]) + binomial_variance(b.mean(), test_images[1])
    low, high, df = interval(diff, [(x.var(ddof=1) / len(x), len(x)) for x in (a, b)], known, confidence)
    return Difference(diff, low, high, df, _cohens_d(diff, pooled))


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                      test_images: tuple[Optional[int], Optional[int]] = (None, None)) -> Difference:
    """Mean of the per-pair differences ``a[i] - b[i]`` (one run measured twice) with its interval (paired t,
    plus the binomial terms of both measurements)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired interval needs >= 2 pairs of equal length, got {len(a)} and {len(b)}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pairs = a - b
    mean, std = float(pairs.mean()), float(pairs.std(ddof=1))
    known = binomial_variance(a.mean(), test_images[0]) + binomial_variance(b.mean(), test_images[1])
    low, high, df = interval(mean, [(std ** 2 / len(pairs), len(pairs))], known, confidence)
    return Difference(mean, low, high, df, _cohens_d(mean, std))


def verdict(difference: Difference, direction: str, margin: float = 0.0) -> tuple[str, str]:
    """(verdict, reason) for the claim on A - B, given its interval."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    lo, hi = difference.low, difference.high
    if math.isnan(lo):
        return "inconclusive", "no spread over seeds and no known number of test images: no interval"
    span = f"95% CI of A-B [{lo:+.2f}, {hi:+.2f}]"
    above, below = lo > margin, hi <= margin  # the whole interval on one side of the margin
    if not (above or below):
        return "inconclusive", f"{span} straddles {margin:g}"
    holds = above if direction == "greater" else below
    side = f"{'above' if above else 'at or below'} {margin:g}"
    return ("reproduced" if holds else "contradicted"), f"{span} wholly {side}"


def compare(a: Sequence[float], b: Sequence[float], direction: str, margin: float = 0.0,
            paired: bool = False, test_images: tuple[Optional[int], Optional[int]] = (None, None)) -> dict:
    """Both cells' summaries, the difference and the verdict, as one flat record (a table row).

    ``paired``: ``a[i]`` and ``b[i]`` come from the same run (Cohen's d is then d_z, over the differences);
    ``test_images``: the number of test images each cell's top-1 was measured on (None: unknown).
    """
    sa, sb = (cell_summary(v, m) for v, m in zip((a, b), test_images))
    record = {**{f"a_{k}": v for k, v in asdict(sa).items()}, **{f"b_{k}": v for k, v in asdict(sb).items()}}
    few = f"inconclusive (n < {MIN_SEEDS}): A has {sa.n} seeds, B has {sb.n}"
    if sa.n < 2 or sb.n < 2:
        diff = sa.mean - sb.mean if sa.n and sb.n else math.nan
        reason = "no runs" if not (sa.n and sb.n) else f"{few}; one seed gives no interval"
        return {**record, "diff": diff, "diff_low": math.nan, "diff_high": math.nan, "cohens_d": math.nan,
                "paired": paired, "verdict": "inconclusive", "reason": reason}
    d = (paired_difference if paired else welch_difference)(a, b, test_images=test_images)
    outcome, reason = verdict(d, direction, margin)
    if min(sa.n, sb.n) < MIN_SEEDS:
        outcome, reason = "inconclusive", f"{few}, whatever the interval ({reason})"
    return {**record, "diff": d.diff, "diff_low": d.low, "diff_high": d.high, "cohens_d": d.cohens_d,
            "paired": paired, "verdict": outcome, "reason": reason}
