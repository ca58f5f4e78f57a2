"""Every claim of the paper (``cpvt_lab.tables.CLAIMS``) with our verdict, effect size and n.

For each claim and each setting that holds runs of its study, the two cells' top-1
over seeds are compared by ``stats.compare`` (Welch interval of A - B, verdict as
defined there). A claim with no runs at all still gets a line, inconclusive.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .. import tables
from . import stats

COLUMNS = ["claim", "study", "text", *tables.SETTING, "a", "b", "direction", "margin", "paper_a", "paper_b",
           "a_n", "a_mean", "a_std", "a_low", "a_high", "b_n", "b_mean", "b_std", "b_low", "b_high",
           "diff", "diff_low", "diff_high", "cohens_d", "paired", "verdict", "reason"]


def cell_values(runs: pd.DataFrame, claim: tables.Claim) -> tuple[list[float], list[float], bool]:
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


def claim_verdicts(runs: pd.DataFrame) -> pd.DataFrame:
    """One line per claim and setting (``runs`` as ``tables.load_runs`` gives them)."""
    ref, records = tables.reference(), []
    for claim in tables.CLAIMS:
        study = tables.STUDY_BY_ID[claim.study]
        paper = [tables.paper_value(study, c.ablation, c.rank, ref)[0] for c in (claim.a, claim.b)]
        head = {"claim": claim.id, "study": claim.study, "text": claim.text,
                "a": f"{claim.a.ablation}@{claim.a.rank}", "b": f"{claim.b.ablation}@{claim.b.rank}",
                "direction": claim.direction, "margin": claim.margin, "paper_a": paper[0], "paper_b": paper[1]}
        mine = runs[runs.ablation.isin([claim.a.ablation, claim.b.ablation])]
        settings = [s for _, s in mine[tables.SETTING].drop_duplicates().iterrows()]
        if not settings:
            records.append({**head, **stats.compare([], [], claim.direction, claim.margin,
                                                     claim.a.ablation == claim.b.ablation)})
        for setting in settings:
            here = mine[(mine[tables.SETTING] == setting).all(axis=1)]
            a, b, paired = cell_values(here, claim)
            records.append({**head, **setting.to_dict(), **stats.compare(a, b, claim.direction, claim.margin, paired)})
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def _cell(mean, std, low, high, n) -> str:
    if not n:
        return "no runs"
    return f"{mean:.2f} (n=1)" if n < 2 else f"{mean:.2f} ± {std:.2f} [{low:.2f}, {high:.2f}] (n={n})"


def _paper(a, b) -> str:
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


def claims_markdown(verdicts: pd.DataFrame, results_dir: str | Path) -> str:
    parts = ["# The paper's claims, judged on our runs", "",
             f"{tables.regenerated_from(results_dir)} (or `python -m cpvt_lab.analyze claims "
             f"results_dir={Path(results_dir).as_posix()}`); "
             "do not edit by hand. A cell is `ablation@k`: the "
             "ablation's top-1 (%) at its training size (k=0) or the k-th larger test size. Ours: mean ± std "
             "[95% t-interval of the mean] over seeds (n). A-B: difference of means with its 95% Welch interval, or, for one ablation at two sizes "
             "(the same runs twice), the mean per-seed difference with its paired t-interval (marked *); d: "
             "Cohen's d (pooled SD; paired: mean difference over the SD of the differences). "
             "Verdict: **reproduced** when the claim holds over the whole interval, **contradicted** when it "
             "fails over the whole interval, **inconclusive** otherwise or with fewer than 2 seeds per cell "
             "(`cpvt_lab/analysis/stats.py` states the rule).", ""]
    counts = verdicts.verdict.value_counts()
    parts += ["Totals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in stats.VERDICTS) + ".", ""]
    for key, group in verdicts.groupby(tables.SETTING, dropna=False, sort=False):
        # lines without runs carry NaN settings, which turns whole numbers in these columns into floats
        setting = {k: int(v) if isinstance(v, float) and v.is_integer() else v
                   for k, v in zip(tables.SETTING, key)}
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in setting.values()):
            parts += ["## Claims without any runs", ""]
        else:
            parts += [f"## {tables.setting_label(setting)}", ""]
            if setting["scale"] == "smoke":
                parts += [tables.SMOKE_NOTE, ""]
        table = pd.DataFrame({
            "claim (A vs B)": [_claim(r) for r in group.itertuples()],
            "paper A vs B": [_paper(r.paper_a, r.paper_b) for r in group.itertuples()],
            "ours A": [_cell(r.a_mean, r.a_std, r.a_low, r.a_high, r.a_n) for r in group.itertuples()],
            "ours B": [_cell(r.b_mean, r.b_std, r.b_low, r.b_high, r.b_n) for r in group.itertuples()],
            "A-B [95% CI]": [_difference(r) for r in group.itertuples()],
            "d": ["—" if pd.isna(d) else f"{d:+.2f}" for d in group.cohens_d],
            "verdict": group.verdict, "why": group.reason})
        parts += [table.to_markdown(index=False), ""]
    return "\n".join(parts)


VERDICT_COLOURS = {"reproduced": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:grey"}


def claims_plot(verdicts: pd.DataFrame):
    """Each claim's A - B with its 95% interval (a non-zero margin marked |), coloured by verdict."""
    judged = verdicts.dropna(subset=["diff_low"])
    if judged.empty:
        print("no claim has two or more seeds in both cells: nothing to plot")
        return None
    labels = [f"{r.claim} ({r.scale}, {int(r.train_size)} px)" for r in judged.itertuples()]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(judged) + 1.2))
    ax.hlines(labels, judged.diff_low, judged.diff_high, color=[VERDICT_COLOURS[v] for v in judged.verdict])
    sns.scatterplot(x=judged["diff"].to_numpy(), y=labels, hue=judged.verdict.to_numpy(), palette=VERDICT_COLOURS,
                    ax=ax, zorder=3)
    ax.axvline(0, color="black", linewidth=0.8)
    for label, margin in zip(labels, judged.margin):
        if margin:
            ax.plot([margin], [label], marker="|", color="black", markersize=12)
    ax.set(xlabel="A - B, top-1 points (95% Welch interval)", ylabel="")
    fig.tight_layout()
    return fig


def write_claims(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """``claims.md`` and ``claims.csv`` in ``out_dir``, from ``results_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verdicts = claim_verdicts(tables.load_runs(results_dir))
    verdicts.to_csv(out / "claims.csv", index=False)
    (out / "claims.md").write_text(claims_markdown(verdicts, results_dir))
    return [out / "claims.md", out / "claims.csv"]
