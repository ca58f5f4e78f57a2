"""The one judgement of the paper's claims (``cpvt_lab.paper.CLAIMS``) on our runs.

For each claim and each section that holds runs of its paper table (one ``recipe_id``: everything but
the seed and the ablation equal, ``settings``), the two cells' top-1 over seeds are compared by
``stats.compare`` (verdict as defined there: fewer than 3 seeds a cell is inconclusive), beside the
paper's two figures. The design of each comparison (``design``):

- one run at two sizes: one ablation at two test sizes, the same runs measured twice;
- paired by seed: two ablations trained with the same seeds (a seed fixes the data order and the
  augmentation draws as well as the initialisation), compared seed by seed over the seeds they share
  (a seed of one cell without a partner in the other is left out and counted);
- unpaired (Welch): two ablations sharing fewer than two seeds.

The test-set term of A - B comes from the runs' stored predictions where they exist
(``test_set_term``), else from both cells' binomial terms (``test_set_source`` says which). The claims
judged on one section's runs are one family: each gets a p-value and a Holm-adjusted one
(``p_holm``) and a verdict under Holm (``verdict_holm``). Unstable runs are left out of both cells and
counted (``left_out_unstable``). Both the paper tables and ``claims.md`` show these lines. A claim with
no runs at all still gets a line, inconclusive. A table's own questions (its grid's ``compare``: not the
paper's, never in ``claims.md``) are judged the same way, as a family of their own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd

from ...paper import CLAIMS, TABLE_BY_ID, Claim, paper_value, reference
from . import stats
from ..settings import SECTION
from .test_set_term import StoredPredictions, term

SAME_RUNS, PAIRED_BY_SEED, WELCH = "one run at two sizes", "paired by seed", "unpaired (Welch)"

COLUMNS = ["claim", "study", "text", *SECTION, "setting", "a", "b", "direction", "margin", "paper_a", "paper_b",
           "paper_holds", "a_n", "a_mean", "a_std", "a_low", "a_high", "a_images", "b_n", "b_mean", "b_std", "b_low",
           "b_high", "b_images", "diff", "diff_low", "diff_high", "df", "cohens_d", "paired", "design",
           "unpaired_left_out", "test_set_term", "test_set_source", "left_out_unstable", "means_hold", "p", "p_holm",
           "verdict", "verdict_holm", "reason"]


@dataclass
class Cells:
    """Top-1 of every stable seed of both cells of a claim in one section (in seed order, position i of both the
    same seed unless ``design`` is Welch), their runs as (run_id, size_px), and what was left out."""
    a: list[float]
    b: list[float]
    design: str
    images: tuple[Optional[int], Optional[int]] = (None, None)
    left_out_unstable: int = 0
    ambiguous: tuple[str, ...] = ()  # ablations that hold several settings in the section
    runs: tuple[list[tuple[str, int]], list[tuple[str, int]]] = ([], [])
    unpaired: int = 0  # seeds of one cell without a partner in the other, left out

    @property
    def paired(self) -> bool:
        return self.design != WELCH


def _images(lines: pd.DataFrame) -> Optional[int]:
    return int(lines.test_images.min()) if lines.test_images.notna().any() else None


def design(same_ablation: bool, shared_seeds: int) -> str:
    """How A - B is formed: the same runs at two sizes, seed by seed where two or more seeds are shared, else
    Welch's two independent samples."""
    if same_ablation:
        return SAME_RUNS
    return PAIRED_BY_SEED if shared_seeds >= 2 else WELCH


def cell_values(runs: pd.DataFrame, claim: Claim) -> Cells:
    """Both cells of ``claim`` among ``runs`` (one section), unstable runs left out, paired by seed where the
    design allows (``design``; seeds missing from either cell are then left out)."""
    lines = [runs[(runs.ablation == c.ablation) & (runs.size_rank == c.rank)] for c in (claim.a, claim.b)]
    ambiguous = tuple(dict.fromkeys(c.ablation for c, here in zip((claim.a, claim.b), lines)
                                    if here.setting_id.nunique() > 1))
    unstable = pd.concat(lines).query("unstable").run_id.nunique()
    a, b = (here[~here.unstable & (here.setting_id.nunique() < 2)].set_index("seed").sort_index() for here in lines)
    shared = a.index.intersection(b.index)
    how, unpaired = design(claim.a.ablation == claim.b.ablation, len(shared)), 0
    if how != WELCH:
        unpaired = len(a) + len(b) - 2 * len(shared)
        a, b = a.loc[shared], b.loc[shared]
    return Cells(a.top1.tolist(), b.top1.tolist(), how, (_images(lines[0]), _images(lines[1])), unstable, ambiguous,
                 tuple(list(zip(x.run_id, x.size_px.astype(int))) for x in (a, b)), unpaired)


def judge_claims(runs: pd.DataFrame, table_id: Optional[str] = None,
                 stored: Optional[StoredPredictions] = None) -> pd.DataFrame:
    """One line per claim of the paper (of one paper table, or all) and section (``runs`` as ``frames.load_runs``
    gives them; column ``study``: the claim's paper table; ``stored``: the runs' predictions, if any).

    ``means_hold``: whether our two means point the paper's way (no interval; None without runs);
    ``verdict``: whether the interval of A - B settles it; ``verdict_holm``: whether it does with all the paper's
    claims on those runs as one family (so one table's lines are those of the whole family).
    """
    judged = judge(CLAIMS, runs, stored)
    return judged if table_id is None else judged[judged.study == table_id].reset_index(drop=True)


def judge_questions(questions: Sequence[Claim], runs: pd.DataFrame,
                    stored: Optional[StoredPredictions] = None) -> pd.DataFrame:
    """A table's own questions (its grid's ``compare``, a family of their own) judged as the paper's claims are,
    but ``answer``ed, as there is no paper's figure to reproduce: **A higher** or **A not higher** where the
    interval of A - B lies wholly on one side of 0, **not decided** otherwise (and always with fewer than
    ``MIN_SEEDS`` seeds in a cell); ``answer`` under Holm, ``answer_raw`` each at 95%."""
    lines = judge(questions, runs, stored)
    fewest = lines[["a_n", "b_n"]].fillna(0).min(axis=1)
    return lines.drop(columns=["verdict", "verdict_holm"]).assign(
        answer_raw=[_answer(*v) for v in zip(lines.verdict, fewest)],
        answer=[_answer(*v) for v in zip(lines.verdict_holm, fewest)])


def _answer(verdict: str, fewest: float) -> str:
    if verdict != "inconclusive":
        return "A higher" if verdict == "reproduced" else "A not higher"
    if fewest == 0:
        return "not decided (no runs)"
    return "not decided" + (f" (n < {stats.MIN_SEEDS})" if fewest < stats.MIN_SEEDS else "")


def judge(claims: Sequence[Claim], runs: pd.DataFrame, stored: Optional[StoredPredictions] = None) -> pd.DataFrame:
    """One line per claim (the paper's, or a table's own ``compare``) and section of the runs of its table, the
    ``claims`` judged in one section being one family for Holm's adjustment."""
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
            none = Cells([], [], design(claim.a.ablation == claim.b.ablation, 0))
            records.append({**head, **_judged(claim, none, None)})
        for key, here in mine.groupby(SECTION, dropna=False, sort=False):
            section = {**dict(zip(SECTION, key)), "setting": here.setting.iloc[0]}
            records.append({**head, **section, **_judged(claim, cell_values(here, claim), stored)})
    return _with_holm(pd.DataFrame.from_records(records, columns=COLUMNS))


def _with_holm(lines: pd.DataFrame) -> pd.DataFrame:
    """Each section's claims as one family: Holm-adjusted p-values and the verdicts that survive them."""
    if lines.empty:
        return lines
    section = ["|".join(map(str, key)) for key in lines[SECTION].itertuples(index=False)]
    family = lines.groupby(pd.Series(section, index=lines.index), sort=False).p
    lines["p_holm"] = family.transform(lambda p: pd.Series(stats.holm(p.tolist()), index=p.index))
    lines["verdict_holm"] = [stats.holm_verdict(v, p) for v, p in zip(lines.verdict, lines.p_holm)]
    return lines


def _unpaired(count: int) -> str:
    return f"; {count} {'seed' if count == 1 else 'seeds'} without a partner in the other cell left out"


def _judged(claim: Claim, cells: Cells, stored: Optional[StoredPredictions]) -> dict:
    measured = term(*cells.runs, stored, cells.paired)
    record = stats.compare(cells.a, cells.b, claim.direction, claim.margin, cells.paired, cells.images,
                           measured.variance)
    both = record["a_n"] and record["b_n"]
    record = {**record, "a_images": cells.images[0], "b_images": cells.images[1], "design": cells.design,
              "unpaired_left_out": cells.unpaired, "test_set_source": measured.source,
              "test_set_term": math.nan if measured.variance is None else measured.variance,
              "left_out_unstable": cells.left_out_unstable,
              "means_hold": claim.holds(record["a_mean"], record["b_mean"]) if both else None}
    if cells.ambiguous:
        record.update(verdict="inconclusive", reason=f"{' and '.join(cells.ambiguous)} hold several settings in "
                      "this section (see their setting ids): which one the claim means is not clear")
    if cells.left_out_unstable:
        runs = "run" if cells.left_out_unstable == 1 else "runs"
        record["reason"] += f"; {cells.left_out_unstable} {runs} left out as unstable"
    if cells.unpaired:
        record["reason"] += _unpaired(cells.unpaired)
    return record
