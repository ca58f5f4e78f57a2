"""The paper's claims as Markdown: ``claims.md`` (every claim with its interval) and the claims table of a paper table's page.

``claims.md`` opens with the verdicts (totals under Holm and raw, then the decided claims) and
says how they are reached after them. A verdict is said plainly: a contradiction as a finding
about our data set (the paper's figures are ImageNet ones), and an inconclusive verdict with its
cause where that is too few seeds (``inconclusive (n < 3)``) or no runs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd

from ..measured import ComputedAnalysis
from .page_parts import in_section, plural, regenerated_from, setting_heading, with_interval
from ..settings import SECTION
from ..verdicts.stats import FAMILY_ALPHA, MIN_SEEDS, VERDICTS


def verdict_said(verdict: str, dataset: str, n_a: float = MIN_SEEDS, n_b: float = MIN_SEEDS) -> str:
    """A verdict cell: a contradiction said plainly (the paper's figures are ImageNet ones, ours are not), an
    inconclusive one with its cause where that is no runs or fewer than ``MIN_SEEDS`` seeds in a cell."""
    if verdict == "contradicted":
        return f"contradicted: the opposite of the paper's ImageNet result holds on {dataset}"
    fewest = min(0 if pd.isna(n) else n for n in (n_a, n_b))
    if verdict == "inconclusive" and fewest < MIN_SEEDS:
        return f"inconclusive ({'no runs' if fewest == 0 else f'n < {MIN_SEEDS}'})"
    return verdict


def claim_directions(claims: pd.DataFrame) -> str:
    """The claims table of a paper table's page: the paper's figures and our means, their direction, and the verdict."""
    def direction(holds, n_a, n_b):
        if holds is None or pd.isna(holds):
            return "no runs"
        return ("yes" if holds else "no") + (" (one seed)" if min(n_a, n_b) < 2 else "")

    table = pd.DataFrame({
        "claim of the paper": claims.text,
        "paper": [f"{a:.1f} vs {b:.1f}" if not (pd.isna(a) or pd.isna(b)) else "—"
                  for a, b in zip(claims.paper_a, claims.paper_b)],
        "ours (mean)": [f"{a:.2f} vs {b:.2f}" if not (pd.isna(a) or pd.isna(b)) else "—"
                        for a, b in zip(claims.a_mean, claims.b_mean)],
        "same direction as the paper?": [direction(*v) for v in zip(claims.means_hold, claims.a_n, claims.b_n)],
        "verdict (95% interval)": [verdict_said(*v) for v in zip(claims.verdict, claims.dataset, claims.a_n,
                                                                   claims.b_n)],
        "under Holm": [verdict_said(*v) for v in zip(claims.verdict_holm, claims.dataset, claims.a_n, claims.b_n)]})
    return table.to_markdown(index=False)


def comparison_lines(questions: pd.DataFrame) -> list[str]:
    """The lines of a table's own questions of one section (``claims.judge_questions``)."""
    if questions.empty:
        return []
    table = pd.DataFrame({
        "question (A vs B)": [f"{r.text} ({r.a} vs {r.b})" for r in questions.itertuples()],
        "ours A": [_cell(r.a_mean, r.a_std, r.a_low, r.a_high, r.a_n) for r in questions.itertuples()],
        "ours B": [_cell(r.b_mean, r.b_std, r.b_low, r.b_high, r.b_n) for r in questions.itertuples()],
        "A-B [95% CI]": [difference(r) for r in questions.itertuples()],
        "design": questions.design,
        "p (Holm)": [_p(r.p, r.p_holm) for r in questions.itertuples()],
        "answer (each at 95%)": questions.answer_raw,
        "answer (Holm)": questions.answer})
    return ["Questions of this table (ours, not claims of the paper): A-B in top-1 points with its 95% interval, "
            "as claims.md computes it (`ablation@k`: at the k-th size, 0 the training one). The answer is "
            f"**A higher** or **A not higher** where the whole interval lies on one side of 0, **not decided** "
            f"otherwise and always with fewer than {MIN_SEEDS} seeds in a cell; under Holm, the table's questions "
            f"are one family (family-wise error {FAMILY_ALPHA:.0%}): an answer stands where its Holm-adjusted p is "
            f"below {FAMILY_ALPHA:g}.", "", table.to_markdown(index=False), ""]


def _p(p, p_holm) -> str:
    return "—" if pd.isna(p) else f"{_p_value(p)} ({_p_value(p_holm)})"


def _p_value(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _cell(mean, std, low, high, n) -> str:
    if not n:
        return "no runs"
    return f"{mean:.2f} (n=1)" if n < 2 else f"{with_interval(mean, std, n, low, high)} (n={n})"


def _paper_pair(a, b) -> str:
    return "—" if a is None or b is None or pd.isna(a) or pd.isna(b) else f"{a:.1f} vs {b:.1f} ({a - b:+.1f})"


def difference(r) -> str:
    if pd.isna(r.diff):
        return "—"
    if pd.isna(r.diff_low):
        return f"{r.diff:+.2f}"
    return f"{r.diff:+.2f} [{r.diff_low:+.2f}, {r.diff_high:+.2f}]"


def _claim(r) -> str:
    rel = ">" if r.direction == "greater" else "<="
    return f"{r.text} (A={r.a}, B={r.b}: A-B {rel} {r.margin:g})"


METHOD = (
    "## How the verdicts are reached", "",
    "A cell is `ablation@k`: the ablation's top-1 (%) at its training size (k=0) or the k-th larger test size. "
    "Ours: mean ± std [95% interval of the mean] over seeds (n), from the seeds' spread and the test set's sampling "
    "(a top-1 on m test images varies by p(1-p)/m however many seeds share them).", "",
    "A-B: the difference with its 95% interval, formed by the claim's design. **Paired by seed**: the two ablations "
    "were trained with the same seeds, and a seed fixes the data order and the augmentation draws as well as the "
    "initialisation, so A-B is the mean of the per-seed differences over the seeds both cells have (a seed without a "
    "partner is left out, and the why says so). **One run at two sizes**: one ablation at two test sizes, the same "
    "runs measured twice, paired the same way. **Unpaired (Welch)**: two ablations sharing fewer than two seeds, "
    "Welch's interval. The test-set term of A-B (column *test-set term*) comes from the runs' stored predictions "
    "where they exist: for each test image the difference of the two cells' share of runs getting it right, whose "
    "variance over the m images, divided by m, is the variance of A-B over resampled test sets; with predictions "
    "from only some of the runs it is measured on those. Without any, both cells' binomial terms are added as if "
    "the two cells had been scored on independent images, which overstates it (both share one test set). d: Cohen's "
    "d (pooled SD; paired: mean difference over the SD of the differences), in `claims.csv`.", "",
    "Verdict (each claim at 95%): **reproduced** when the claim holds over the whole interval, **contradicted** when "
    "it fails over the whole interval (the paper measured on ImageNet: a contradiction is a finding about our data "
    f"set, not a failure of the runs), **inconclusive** otherwise, and always with fewer than {MIN_SEEDS} seeds in "
    f"a cell (`inconclusive (n < {MIN_SEEDS})`: two seeds say too little about the spread of a third). p: the "
    "two-sided test of A-B against the claim's margin with the interval's standard error and degrees of freedom "
    "(below 0.05 exactly where the interval excludes the margin). The paper's claims on one set of runs are one "
    f"family of questions: at 95% each, some would be decided by chance alone, so under Holm (family-wise error "
    f"{FAMILY_ALPHA:.0%}; p adjusted by Holm's step-down rule, in brackets) a verdict stays decisive only where its "
    f"adjusted p is below {FAMILY_ALPHA:g}. Runs whose learning curve ends clearly worse than it once was are left "
    "out as unstable (counted under 'unstable'). `cpvt_lab/analysis/verdicts/stats.py` states the rules, "
    "`cpvt_lab/analysis/verdicts/claims.py` the designs and `cpvt_lab/analysis/verdicts/test_set_term.py` the "
    "test-set term.", "")


def totals(verdicts: pd.Series) -> str:
    counts = verdicts.value_counts()
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)


def decided_lines(verdicts: pd.DataFrame) -> list[str]:
    """One line per verdict that Holm leaves decisive, naming its claims with A-B, its interval and adjusted p (the
    README quotes these lines), then one naming the claims decided at 95% alone but not under Holm; the claim's
    setting is named where the verdicts span several."""
    several = verdicts.setting.dropna().nunique() > 1

    def named(lines: pd.DataFrame) -> str:
        return "; ".join(f"{r.text} ({difference(r)}, p {_p_value(r.p_holm)} after Holm"
                         + (f"; {r.setting}" if several else "") + ")" for r in lines.itertuples())
    lines = []
    for verdict in ("reproduced", "contradicted"):
        mine = verdicts[verdicts.verdict_holm == verdict]
        if len(mine):
            lines.append(f"- **{verdict}:** " + named(mine) + ".")
    lost = verdicts[(verdicts.verdict != "inconclusive") & (verdicts.verdict_holm == "inconclusive")]
    if len(lost):
        lines.append("- decided at 95% alone, inconclusive under Holm: " + "; ".join(
            f"{r.text} ({r.verdict} at 95%: {difference(r)}, p {_p_value(r.p)}, {_p_value(r.p_holm)} after Holm)"
            for r in lost.itertuples()) + ".")
    return lines


def claims_markdown(verdicts: pd.DataFrame, results_dir: str | Path, runs: Optional[pd.DataFrame] = None) -> str:
    """Every claim judged, one section per setting (with the provenance of its ``runs`` when given)."""
    parts = ["# The paper's claims, judged on our runs", "",
             f"{regenerated_from(results_dir)} (or `python -m cpvt_lab.analyze claims "
             f"results_dir={Path(results_dir).as_posix()}`); do not edit by hand. A-B in top-1 points with its 95% "
             "interval; how the verdicts are reached is said [after the tables](#how-the-verdicts-are-reached).", "",
             f"Totals under Holm (the paper's claims on one set of runs as one family, family-wise error "
             f"{FAMILY_ALPHA:.0%}): {totals(verdicts.verdict_holm)}.", "",
             f"Totals with each claim judged alone at 95%: {totals(verdicts.verdict)}.", ""]
    decided = decided_lines(verdicts)
    parts += [*decided, ""] if decided else []
    for key, group in verdicts.groupby(SECTION, dropna=False, sort=False):
        # lines without runs carry NaN settings, which turns whole numbers in these columns into floats
        setting = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in zip(SECTION, key)}
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in setting.values()):
            parts += ["## Claims without any runs", ""]
        else:
            mine = in_section(runs, setting) if runs is not None else None
            parts += setting_heading({**setting, "setting": group.setting.iloc[0]}, runs=mine)
        table = pd.DataFrame({
            "claim (A vs B)": [_claim(r) for r in group.itertuples()],
            "paper A vs B": [_paper_pair(r.paper_a, r.paper_b) for r in group.itertuples()],
            "ours A": [_cell(r.a_mean, r.a_std, r.a_low, r.a_high, r.a_n) for r in group.itertuples()],
            "ours B": [_cell(r.b_mean, r.b_std, r.b_low, r.b_high, r.b_n) for r in group.itertuples()],
            "A-B [95% CI]": [difference(r) for r in group.itertuples()],
            "design": group.design,
            "test-set term": group.test_set_source,
            "unstable": ["—" if pd.isna(k) or not k else plural(int(k), "run") + " left out"
                         for k in group.left_out_unstable],
            "p (Holm)": [_p(r.p, r.p_holm) for r in group.itertuples()],
            "verdict": [verdict_said(*v) for v in zip(group.verdict, group.dataset, group.a_n, group.b_n)],
            "under Holm": [verdict_said(*v) for v in zip(group.verdict_holm, group.dataset, group.a_n, group.b_n)],
            "why": group.reason})
        parts += [table.to_markdown(index=False), ""]
    return "\n".join(parts + list(METHOD))


def write(folder, out_dir: str | Path) -> list[Path]:
    """``claims.md`` and ``claims.csv``: every claim of the paper, judged (``folder``: an ``analysis.folder``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder.claims.to_csv(out / "claims.csv", index=False)
    (out / "claims.md").write_text(claims_markdown(folder.claims, folder.results_dir, folder.runs))
    return [out / "claims.md", out / "claims.csv"]


ANALYSIS = ComputedAnalysis("claims", "every claim of the paper with our verdict, effect size and n (from runs.jsonl)",
                            {}, write)
