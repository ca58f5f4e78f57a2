"""The paper's claims as Markdown: ``claims.md`` (every claim with its interval) and the claims table of a paper table's page.

A verdict is said plainly: a contradiction as a finding about our data set (the paper's figures
are ImageNet ones), and an inconclusive verdict with its cause where that is too few seeds
(``inconclusive (n < 3)``) or no runs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd

from .measured import ComputedAnalysis
from .page_parts import in_section, plural, regenerated_from, setting_heading, with_interval
from .settings import SECTION
from .stats import MIN_SEEDS, VERDICTS


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
                                                                   claims.b_n)]})
    return table.to_markdown(index=False)


def comparison_lines(questions: pd.DataFrame) -> list[str]:
    """The lines of a table's own questions of one section (``claims.judge_questions``)."""
    if questions.empty:
        return []
    table = pd.DataFrame({
        "question (A vs B)": [f"{r.text} ({r.a} vs {r.b})" for r in questions.itertuples()],
        "ours A": [_cell(r.a_mean, r.a_std, r.a_low, r.a_high, r.a_n) for r in questions.itertuples()],
        "ours B": [_cell(r.b_mean, r.b_std, r.b_low, r.b_high, r.b_n) for r in questions.itertuples()],
        "A-B [95% CI]": [_difference(r) for r in questions.itertuples()],
        "answer": questions.answer})
    return ["Questions of this table (ours, not claims of the paper): A-B in top-1 points with its 95% interval, "
            "as claims.md computes it (`ablation@k`: at the k-th size, 0 the training one; * paired). The answer is "
            f"**A higher** or **A not higher** where the whole interval lies on one side of 0, **not decided** "
            f"otherwise and always with fewer than {MIN_SEEDS} seeds in a cell.", "", table.to_markdown(index=False),
            ""]


def _cell(mean, std, low, high, n) -> str:
    if not n:
        return "no runs"
    return f"{mean:.2f} (n=1)" if n < 2 else f"{with_interval(mean, std, n, low, high)} (n={n})"


def _paper_pair(a, b) -> str:
    return "—" if a is None or b is None or pd.isna(a) or pd.isna(b) else f"{a:.1f} vs {b:.1f} ({a - b:+.1f})"


def _difference(r) -> str:
    if pd.isna(r.diff):
        return "—"
    if pd.isna(r.diff_low):
        return f"{r.diff:+.2f}"
    return f"{r.diff:+.2f} [{r.diff_low:+.2f}, {r.diff_high:+.2f}]" + (" *" if r.paired else "")


def _claim(r) -> str:
    rel = ">" if r.direction == "greater" else "<="
    return f"{r.text} (A={r.a}, B={r.b}: A-B {rel} {r.margin:g})"


INTRO = (
    "do not edit by hand. A cell is `ablation@k`: the ablation's top-1 (%) at its training size (k=0) or the k-th "
    "larger test size. Ours: mean ± std [95% interval of the mean] over seeds (n), from the seeds' spread and the "
    "test set's sampling (a top-1 on m test images varies by p(1-p)/m however many seeds share them). A-B: "
    "difference of means with its 95% interval (Welch's degrees of freedom, the test-set terms of both cells added), "
    "or, for one ablation at two sizes (the same runs twice), the mean per-seed difference with its paired interval "
    "(marked *); d: Cohen's d (pooled SD; paired: mean difference over the SD of the differences). Runs whose "
    "learning curve ends clearly worse than it once was are left out as unstable (counted under 'unstable'). "
    "Verdict: **reproduced** when the claim holds over the whole interval, **contradicted** when it fails over the "
    "whole interval (the paper measured on ImageNet: a contradiction is a finding about our data set, not a failure "
    f"of the runs), **inconclusive** otherwise, and always with fewer than {MIN_SEEDS} seeds in a cell "
    f"(`inconclusive (n < {MIN_SEEDS})`: two seeds say too little about the spread of a third; "
    "`cpvt_lab/analysis/stats.py` states the rule).")


def decided_lines(verdicts: pd.DataFrame) -> list[str]:
    """One line per decisive verdict naming its claims with A-B and its interval (the README quotes these lines);
    the claim's setting is named where the verdicts span several."""
    several = verdicts.setting.dropna().nunique() > 1
    lines = []
    for verdict in ("reproduced", "contradicted"):
        mine = verdicts[verdicts.verdict == verdict]
        if len(mine):
            named = [f"{r.text} ({_difference(r)}" + (f"; {r.setting}" if several else "") + ")"
                     for r in mine.itertuples()]
            lines.append(f"- **{verdict}:** " + "; ".join(named) + ".")
    return lines


def claims_markdown(verdicts: pd.DataFrame, results_dir: str | Path, runs: Optional[pd.DataFrame] = None) -> str:
    """Every claim judged, one section per setting (with the provenance of its ``runs`` when given)."""
    parts = ["# The paper's claims, judged on our runs", "",
             f"{regenerated_from(results_dir)} (or `python -m cpvt_lab.analyze claims "
             f"results_dir={Path(results_dir).as_posix()}`); {INTRO}", ""]
    counts = verdicts.verdict.value_counts()
    parts += ["Totals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + ".", ""]
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
            "A-B [95% CI]": [_difference(r) for r in group.itertuples()],
            "d": ["—" if pd.isna(d) else f"{d:+.2f}" for d in group.cohens_d],
            "unstable": ["—" if pd.isna(k) or not k else plural(int(k), "run") + " left out"
                         for k in group.left_out_unstable],
            "verdict": [verdict_said(*v) for v in zip(group.verdict, group.dataset, group.a_n, group.b_n)],
            "why": group.reason})
        parts += [table.to_markdown(index=False), ""]
    return "\n".join(parts)


def write(folder, out_dir: str | Path) -> list[Path]:
    """``claims.md`` and ``claims.csv``: every claim of the paper, judged (``folder``: an ``analysis.folder``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder.claims.to_csv(out / "claims.csv", index=False)
    (out / "claims.md").write_text(claims_markdown(folder.claims, folder.results_dir, folder.runs))
    return [out / "claims.md", out / "claims.csv"]


ANALYSIS = ComputedAnalysis("claims", "every claim of the paper with our verdict, effect size and n (from runs.jsonl)",
                            {}, write)
