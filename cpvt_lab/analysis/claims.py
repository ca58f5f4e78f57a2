"""The one judgement of the paper's claims (``cpvt_lab.studies.CLAIMS``) on our runs.

For each claim and each setting that holds runs of its study, the two cells' top-1 over
seeds are compared by ``stats.compare`` (Welch interval of A - B, or a paired one for one
ablation at two sizes; verdict as defined there), beside the paper's two figures. Both
the study tables and ``claims.md`` show these lines. A claim with no runs at all still
gets a line, inconclusive.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd

from ..studies import CLAIMS, STUDY_BY_ID, Claim, paper_value, reference
from . import stats
from .frames import SETTING

COLUMNS = ["claim", "study", "text", *SETTING, "a", "b", "direction", "margin", "paper_a", "paper_b", "paper_holds",
           "a_n", "a_mean", "a_std", "a_low", "a_high", "b_n", "b_mean", "b_std", "b_low", "b_high",
           "diff", "diff_low", "diff_high", "cohens_d", "paired", "means_hold", "verdict", "reason"]


def cell_values(runs: pd.DataFrame, claim: Claim) -> tuple[list[float], list[float], bool]:
    """Top-1 of every seed of both cells among ``runs`` (one setting), and whether they pair up.

    One ablation at two sizes is the same runs measured twice: its values are paired by seed
    (seeds missing from either cell are left out).
    """
    a, b = (runs[(runs.ablation == c.ablation) & (runs.size_rank == c.rank)].set_index("seed").top1
            for c in (claim.a, claim.b))
    if claim.a.ablation != claim.b.ablation:
        return a.tolist(), b.tolist(), False
    seeds = a.index.intersection(b.index)
    return a[seeds].tolist(), b[seeds].tolist(), True


def judge_claims(runs: pd.DataFrame, study_id: Optional[str] = None) -> pd.DataFrame:
    """One line per claim (of one study, or all) and setting (``runs`` as ``frames.load_runs`` gives them).

    ``means_hold``: whether our two means point the paper's way (no interval; None without runs);
    ``verdict``: whether the interval of A - B settles it.
    """
    ref, records = reference(), []
    for claim in CLAIMS:
        if study_id is not None and claim.study != study_id:
            continue
        study = STUDY_BY_ID[claim.study]
        paired = claim.a.ablation == claim.b.ablation
        paper = [paper_value(study, c.ablation, c.rank, ref)[0] for c in (claim.a, claim.b)]
        head = {"claim": claim.id, "study": claim.study, "text": claim.text,
                "a": f"{claim.a.ablation}@{claim.a.rank}", "b": f"{claim.b.ablation}@{claim.b.rank}",
                "direction": claim.direction, "margin": claim.margin, "paper_a": paper[0], "paper_b": paper[1],
                "paper_holds": claim.holds(*paper) if None not in paper else None}
        mine = runs[runs.ablation.isin(study.ablations)]
        settings = [s for _, s in mine[SETTING].drop_duplicates().iterrows()]
        if not settings:
            records.append({**head, **_judged(claim, [], [], paired)})
        for setting in settings:
            here = mine[(mine[SETTING] == setting).all(axis=1)]
            records.append({**head, **setting.to_dict(), **_judged(claim, *cell_values(here, claim))})
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def _judged(claim: Claim, a: list[float], b: list[float], paired: bool) -> dict:
    record = stats.compare(a, b, claim.direction, claim.margin, paired)
    both = record["a_n"] and record["b_n"]
    return {**record, "means_hold": claim.holds(record["a_mean"], record["b_mean"]) if both else None}
