"""The one judgement of the paper's claims (``cpvt_lab.paper.CLAIMS``) on our runs.

For each claim and each section that holds runs of its paper table (one ``recipe_id``: everything but
the seed and the ablation equal, ``settings``), the two cells' top-1 over seeds are compared by
``stats.compare`` (the interval of A - B from the seeds and the test images, paired by seed for
one ablation at two sizes; verdict as defined there: fewer than 3 seeds a cell is inconclusive),
beside the paper's two figures. Unstable runs are left out of both cells and counted
(``left_out_unstable``). Both the paper tables and ``claims.md`` show these lines. A claim with
no runs at all still gets a line, inconclusive. A table's own questions (its grid's ``compare``: not the
paper's, never in ``claims.md``) are judged the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd

from ..paper import CLAIMS, TABLE_BY_ID, Claim, paper_value, reference
from . import stats
from .settings import SECTION

COLUMNS = ["claim", "study", "text", *SECTION, "setting", "a", "b", "direction", "margin", "paper_a", "paper_b",
           "paper_holds", "a_n", "a_mean", "a_std", "a_low", "a_high", "a_images", "b_n", "b_mean", "b_std", "b_low",
           "b_high", "b_images", "diff", "diff_low", "diff_high", "cohens_d", "paired", "left_out_unstable",
           "means_hold", "verdict", "reason"]


@dataclass
class Cells:
    """Top-1 of every stable seed of both cells of a claim in one section, and what was left out."""
    a: list[float]
    b: list[float]
    paired: bool
    images: tuple[Optional[int], Optional[int]] = (None, None)
    left_out_unstable: int = 0
    ambiguous: tuple[str, ...] = ()  # ablations that hold several settings in the section


def _images(lines: pd.DataFrame) -> Optional[int]:
    return int(lines.test_images.min()) if lines.test_images.notna().any() else None


def cell_values(runs: pd.DataFrame, claim: Claim) -> Cells:
    """Both cells of ``claim`` among ``runs`` (one section), unstable runs left out.

    One ablation at two sizes is the same runs measured twice: its values are paired by seed
    (seeds missing from either cell are left out).
    """
    lines = [runs[(runs.ablation == c.ablation) & (runs.size_rank == c.rank)] for c in (claim.a, claim.b)]
    ambiguous = tuple(dict.fromkeys(c.ablation for c, here in zip((claim.a, claim.b), lines)
                                    if here.setting_id.nunique() > 1))
    unstable = pd.concat(lines).query("unstable").run_id.nunique()
    a, b = (here[~here.unstable & (here.setting_id.nunique() < 2)].set_index("seed").top1 for here in lines)
    paired = claim.a.ablation == claim.b.ablation
    if paired:
        seeds = a.index.intersection(b.index)
        a, b = a[seeds], b[seeds]
    return Cells(a.tolist(), b.tolist(), paired, (_images(lines[0]), _images(lines[1])), unstable, ambiguous)


def judge_claims(runs: pd.DataFrame, table_id: Optional[str] = None) -> pd.DataFrame:
    """One line per claim of the paper (of one paper table, or all) and section (``runs`` as ``frames.load_runs``
    gives them; column ``study``: the claim's paper table).

    ``means_hold``: whether our two means point the paper's way (no interval; None without runs);
    ``verdict``: whether the interval of A - B settles it.
    """
    return judge([c for c in CLAIMS if table_id is None or c.table == table_id], runs)


def judge_questions(questions: Sequence[Claim], runs: pd.DataFrame) -> pd.DataFrame:
    """A table's own questions (its grid's ``compare``) judged as the paper's claims are, but ``answer``ed, as there
    is no paper's figure to reproduce: **A higher** or **A not higher** where the interval of A - B lies wholly on
    one side of 0, **not decided** otherwise (and always with fewer than ``MIN_SEEDS`` seeds in a cell)."""
    lines = judge(questions, runs)
    fewest = lines[["a_n", "b_n"]].fillna(0).min(axis=1)
    return lines.drop(columns="verdict").assign(answer=[_answer(*v) for v in zip(lines.verdict, fewest)])


def _answer(verdict: str, fewest: float) -> str:
    if verdict != "inconclusive":
        return "A higher" if verdict == "reproduced" else "A not higher"
    if fewest == 0:
        return "not decided (no runs)"
    return "not decided" + (f" (n < {stats.MIN_SEEDS})" if fewest < stats.MIN_SEEDS else "")


def judge(claims: Sequence[Claim], runs: pd.DataFrame) -> pd.DataFrame:
    """One line per claim (the paper's, or a table's own ``compare``) and section of the runs of its table."""
    ref, records = reference(), []
    for claim in claims:
        table = TABLE_BY_ID[claim.table]
        paper = [paper_value(table, c.ablation, c.rank, ref)[0] for c in (claim.a, claim.b)]
        head = {"claim": claim.id, "study": claim.table, "text": claim.text,
                "a": f"{claim.a.ablation}@{claim.a.rank}", "b": f"{claim.b.ablation}@{claim.b.rank}",
                "direction": claim.direction, "margin": claim.margin, "paper_a": paper[0], "paper_b": paper[1],
                "paper_holds": claim.holds(*paper) if None not in paper else None}
        mine = runs[runs.ablation.isin(table.ablations)]
        if mine.empty:
            records.append({**head, **_judged(claim, Cells([], [], claim.a.ablation == claim.b.ablation))})
        for key, here in mine.groupby(SECTION, dropna=False, sort=False):
            section = {**dict(zip(SECTION, key)), "setting": here.setting.iloc[0]}
            records.append({**head, **section, **_judged(claim, cell_values(here, claim))})
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def _judged(claim: Claim, cells: Cells) -> dict:
    record = stats.compare(cells.a, cells.b, claim.direction, claim.margin, cells.paired, cells.images)
    both = record["a_n"] and record["b_n"]
    record = {**record, "a_images": cells.images[0], "b_images": cells.images[1],
              "left_out_unstable": cells.left_out_unstable,
              "means_hold": claim.holds(record["a_mean"], record["b_mean"]) if both else None}
    if cells.ambiguous:
        record.update(verdict="inconclusive", reason=f"{' and '.join(cells.ambiguous)} hold several settings in "
                      "this section (see their setting ids): which one the claim means is not clear")
    if cells.left_out_unstable:
        runs = "run" if cells.left_out_unstable == 1 else "runs"
        record["reason"] += f"; {cells.left_out_unstable} {runs} left out as unstable"
    return record
