"""Means, intervals and verdicts over seeds and test images.

Every cell of a table is a set of runs that differ only in the seed, each measured on the
same m test images. Its mean top-1 is uncertain for two reasons: the seeds (another seed,
another model) and the test set (another m images, another top-1). So the variance of a
cell's mean is

    V = s^2 / n  +  10^4 p (1 - p) / m        (top-1 in points, p = mean / 100)

the seed variance of the mean plus the binomial variance of a top-1 measured on m images
(p held 0.5/m inside 0 and 1, so a perfect or a zero score still carries a doubt). The
binomial part does not shrink with more seeds: every seed is scored on the same images.
A difference of two cells A - B has a seed part and a test-set part. The seed part is Welch's
(two independent sets of runs) or, where both cells were trained with the same seeds (the
seed fixes the data order and the augmentation draws) or are the same runs at two sizes, the
variance of the per-seed differences over n pairs. The test-set part is the variance of the
difference over resampled test images: measured from the runs' stored predictions where they
exist (``image_term``: which images each model gets right), else both cells' binomial terms
added, as if the two models had been scored on independent images. Both share one test set,
so that fallback overstates the variance: it errs on the side of "inconclusive".

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

The paper's claims are many questions asked of one set of runs, so each verdict also has a
p-value (the two-sided test of A - B against the margin, with the interval's standard error and
degrees of freedom: p < 0.05 exactly where the interval excludes the margin) and a Holm-adjusted
one over its family (``holm``); under Holm a verdict stays decisive only where the adjusted p is
below 0.05 (family-wise error 5%), and is inconclusive otherwise.
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
FAMILY_ALPHA = 0.05  # the family-wise error rate Holm's verdicts keep


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
    """A - B with its interval, standard error and df, and a standardised effect size (Cohen's d, pooled SD)."""
    diff: float
    low: float
    high: float
    df: float
    cohens_d: float
    se: float = math.nan


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


def _test_set_term(means: tuple[float, float], test_images: tuple[Optional[int], Optional[int]],
                   image_term: Optional[float]) -> float:
    """The test-set variance of A - B: measured (``image_term``), else both cells' binomial terms added."""
    if image_term is not None:
        return image_term
    return binomial_variance(means[0], test_images[0]) + binomial_variance(means[1], test_images[1])


def _difference(diff: float, seed_parts, known: float, cohens_d: float, confidence: float) -> Difference:
    low, high, df = interval(diff, seed_parts, known, confidence)
    return Difference(diff, low, high, df, cohens_d, math.sqrt(sum(v for v, _ in seed_parts) + known))


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                     test_images: tuple[Optional[int], Optional[int]] = (None, None),
                     image_term: Optional[float] = None) -> Difference:
    """Mean of ``a`` minus mean of ``b`` with its interval (Welch, plus the test-set term: ``image_term`` when
    measured, else both cells' binomial terms); needs two or more values on each side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a Welch interval needs >= 2 values per side, got {len(a)} and {len(b)}")
    diff = float(a.mean() - b.mean())
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    known = _test_set_term((a.mean(), b.mean()), test_images, image_term)
    seed_parts = [(x.var(ddof=1) / len(x), len(x)) for x in (a, b)]
    return _difference(diff, seed_parts, known, _cohens_d(diff, pooled), confidence)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                      test_images: tuple[Optional[int], Optional[int]] = (None, None),
                      image_term: Optional[float] = None) -> Difference:
    """Mean of the per-pair differences ``a[i] - b[i]`` (one seed, or one run measured twice) with its interval
    (paired t, plus the test-set term: ``image_term`` when measured, else both cells' binomial terms)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired interval needs >= 2 pairs of equal length, got {len(a)} and {len(b)}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pairs = a - b
    mean, std = float(pairs.mean()), float(pairs.std(ddof=1))
    known = _test_set_term((a.mean(), b.mean()), test_images, image_term)
    return _difference(mean, [(std ** 2 / len(pairs), len(pairs))], known, _cohens_d(mean, std), confidence)


def p_value(difference: Difference, margin: float = 0.0) -> float:
    """Two-sided p of A - B = margin, with the interval's standard error and df (NaN where there is no interval):
    below 1 - CONFIDENCE exactly where the interval excludes the margin."""
    if math.isnan(difference.low) or not difference.se > 0:
        return math.nan
    return float(2 * sps.t.sf(abs(difference.diff - margin) / difference.se, difference.df))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of one family of p-values (family-wise error control, whatever the dependence
    between the tests): the k-th smallest of m times (m - k + 1), made non-decreasing, at most 1. A question
    without a p-value (NaN: no interval, it was not tested) is no member of the family and stays NaN."""
    tested = [i for i, v in enumerate(p_values) if not math.isnan(v)]
    p = np.array([p_values[i] for i in tested], dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]), 1.0)
    out = [math.nan] * len(p_values)
    for rank, k in enumerate(order):
        out[tested[k]] = float(adjusted[rank])
    return out


def holm_verdict(raw: str, p_holm: float, alpha: float = FAMILY_ALPHA) -> str:
    """The verdict under Holm: the raw one where it is decisive and its adjusted p is below ``alpha``."""
    return raw if raw != "inconclusive" and p_holm < alpha else "inconclusive"


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
            paired: bool = False, test_images: tuple[Optional[int], Optional[int]] = (None, None),
            image_term: Optional[float] = None) -> dict:
    """Both cells' summaries, the difference, its p-value against the margin and the verdict, as one flat record
    (a table row).

    ``paired``: ``a[i]`` and ``b[i]`` share a seed, or come from the same run (Cohen's d is then d_z, over the
    differences); ``test_images``: the number of test images each cell's top-1 was measured on (None: unknown);
    ``image_term``: the test-set variance of A - B measured from predictions (None: the binomial terms).
    """
    sa, sb = (cell_summary(v, m) for v, m in zip((a, b), test_images))
    record = {**{f"a_{k}": v for k, v in asdict(sa).items()}, **{f"b_{k}": v for k, v in asdict(sb).items()}}
    few = f"inconclusive (n < {MIN_SEEDS}): A has {sa.n} seeds, B has {sb.n}"
    if sa.n < 2 or sb.n < 2:
        diff = sa.mean - sb.mean if sa.n and sb.n else math.nan
        reason = "no runs" if not (sa.n and sb.n) else f"{few}; one seed gives no interval"
        return {**record, "diff": diff, "diff_low": math.nan, "diff_high": math.nan, "df": math.nan,
                "cohens_d": math.nan, "paired": paired, "p": math.nan, "verdict": "inconclusive", "reason": reason}
    d = (paired_difference if paired else welch_difference)(a, b, test_images=test_images, image_term=image_term)
    outcome, reason = verdict(d, direction, margin)
    if min(sa.n, sb.n) < MIN_SEEDS:
        outcome, reason = "inconclusive", f"{few}, whatever the interval ({reason})"
    return {**record, "diff": d.diff, "diff_low": d.low, "diff_high": d.high, "df": d.df, "cohens_d": d.cohens_d,
            "paired": paired, "p": p_value(d, margin), "verdict": outcome, "reason": reason}
