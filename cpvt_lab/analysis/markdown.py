"""The Markdown of every generated table: the study tables, the claims, the measured analyses and the index.

Every page opens with the folder it was read from and the command that regenerates it, and
every cell of seeds is ``mean ± std`` (``mean_std``), with the 95% t-interval of its mean where
the page gives one (``with_interval``), pooled only within one setting, whose
heading names the setting and whose provenance line names the runs, devices, commands and
training recipe the numbers come from.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import pandas as pd

from ..results import FIGURES_DIR, RESULTS_FILE
from ..studies import STUDIES, STUDY_BY_ID, Study, paper_value, reference
from .convergence import convergence_line
from .frames import SETTING, setting_label, study_table
from .stats import VERDICTS

SMOKE_NOTE = "**Smoke scale: these runs check the pipeline and measure nothing.**"


def regenerated_from(results_dir: str | Path, source: str = RESULTS_FILE) -> str:
    """The opening of every generated table: the folder it was read from (several are committed), and the command."""
    folder = Path(results_dir).as_posix()
    return f"Regenerated from `{folder}/{source}` by `python -m cpvt_lab.tables results={folder}`"


def mean_std(mean: float, std: float, n: int, fmt: str = ".2f") -> str:
    """A cell of seeds: ``mean ± std``, or the mean alone when one seed gives no spread."""
    if pd.isna(mean):
        return "—"
    return format(mean, fmt) if n < 2 or pd.isna(std) else f"{mean:{fmt}} ± {std:{fmt}}"


def with_interval(mean: float, std: float, n: int, low: float, high: float) -> str:
    """A cell of seeds with the 95% t-interval of its mean: ``mean ± std [low, high]`` (one seed gives none)."""
    cell = mean_std(mean, std, n)
    return cell if n < 2 or pd.isna(low) else f"{cell} [{low:.2f}, {high:.2f}]"


def setting_heading(setting: dict, extra: Sequence[str] = (), runs: Optional[pd.DataFrame] = None) -> list[str]:
    """A setting's section heading, the smoke note where it applies, and (given ``runs``, as ``frames.load_runs``
    gives them) the provenance of those runs."""
    parts = [f"## {setting_label(setting)}" + "".join(f" · {k} {setting[k]}" for k in extra), ""]
    parts += [SMOKE_NOTE, ""] if setting["scale"] == "smoke" else []
    return parts + ([provenance(runs), ""] if runs is not None and len(runs) else [])


def sections(frame: pd.DataFrame, extra: Sequence[str], render: Callable[[pd.DataFrame], list[str]],
             runs: Optional[pd.DataFrame] = None) -> list[str]:
    """One section per setting (and ``extra`` keys) of ``frame``, each rendered by ``render(lines)``."""
    keys, parts = [*SETTING, *extra], []
    for key, group in frame.groupby(keys, sort=False):
        mine = runs[runs.run_id.isin(group.run_id)] if runs is not None else None
        parts += setting_heading(dict(zip(keys, key)), extra, mine) + render(group)
    return parts


def provenance(runs: pd.DataFrame) -> str:
    """Where a table's numbers come from: seeds, devices, the commands that made them, and the training recipe."""
    seeds = ", ".join(str(s) for s in sorted(runs.seed.unique()))
    devices = "; ".join(sorted(runs.device.dropna().unique())) or "not recorded"
    commands = ", ".join(f"`{c}`" for c in sorted(runs.command.dropna().unique())) or "not recorded"
    recipes = runs.drop_duplicates("run_id").groupby("recipe").run_id.nunique()
    recipe = ("; ".join(recipes.index) if len(recipes) == 1
              else "; ".join(f"{n} runs: {r}" for r, n in recipes.items()))
    return (f"{runs.run_id.nunique()} runs, seeds {seeds}, on {devices}; made by {commands}. "
            f"Recipe: {recipe or 'not recorded'}.")


def wide_cells(frame: pd.DataFrame, index: list[str], column: str, value: str, fmt: str) -> pd.DataFrame:
    """Wide table: ``index`` down, ``column`` across, each cell ``mean_std`` over runs, and n runs."""
    # groupby, not pivot_table: pivot_table drops the std column when every cell has one run (all NaN)
    agg = frame.groupby([*index, column], sort=False).agg(mean=(value, "mean"), std=(value, "std"),
                                                          n=("run_id", "nunique")).reset_index()
    agg["cell"] = [mean_std(m, s, n, fmt) for m, s, n in zip(agg["mean"], agg["std"], agg.n)]
    wide = agg.pivot(index=index, columns=column, values="cell")
    wide.columns = [f"{column} {c}" for c in wide.columns]
    return wide.join(agg.groupby(index, sort=False).n.max()).reset_index()


def _ours(mean, std, n, low, high, rank, finetuned, unstable) -> str:
    # the interval at the training size only: claims.md gives it at every size, the table stays readable
    cell = with_interval(mean, std, n, low, high) if rank == 0 else mean_std(mean, std, n)
    return cell + (" †" if finetuned else "") + (" ⚠ unstable" if unstable else "")


def _paper(value, status) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1f} ({status})"


def _wide(study: Study, table: pd.DataFrame) -> pd.DataFrame:
    """One line per ablation, our cell and the paper's beside it for each size (``table`` of one setting)."""
    ref = reference()
    sizes = table[["size_px", "size_rank"]].drop_duplicates().sort_values("size_px")
    columns = ["mean", "std", "n", "low", "high", "size_rank", "finetuned", "unstable"]
    cells = table.assign(cell=[_ours(*r) for r in table[columns].itertuples(index=False)])
    ours = cells.pivot(index="ablation", columns="size_px", values="cell").reindex(study.ablations)
    wide = pd.DataFrame({
        "ablation": study.ablations,
        "paper row": [f"{row.model}, {row.variant}" if (row := study.paper_row(a)) else "—" for a in study.ablations],
        "n": [int(table[table.ablation == a].n.max()) if (table.ablation == a).any() else 0
              for a in study.ablations]})
    for size, rank in sizes.itertuples(index=False):
        wide[f"{size} px" + (" (train)" if rank == 0 else "")] = ours[size].fillna("no runs").to_list()
        if 0 <= rank < len(study.paper_px):
            wide[f"paper {study.paper_px[rank]} px"] = [_paper(*paper_value(study, a, rank, ref))
                                                        for a in study.ablations]
    return wide


def verdict_said(verdict: str, dataset: str) -> str:
    """A verdict cell, a contradiction said plainly: the paper's figures are ImageNet ones, ours are not."""
    if verdict != "contradicted":
        return verdict
    return f"contradicted: the opposite of the paper's ImageNet result holds on {dataset}"


def _claim_directions(claims: pd.DataFrame) -> str:
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
        "verdict (95% interval)": [verdict_said(v, d) for v, d in zip(claims.verdict, claims.dataset)]})
    return table.to_markdown(index=False)


def study_markdown(study_id: str, runs: pd.DataFrame, claims: pd.DataFrame, curves: pd.DataFrame) -> str:
    """The study's Markdown: one table per setting with how far from converged its runs' ``curves`` end (as
    ``frames.load_curves`` gives them), and the paper's claims as ``claims.judge_claims`` judged them."""
    study = STUDY_BY_ID[study_id]
    table, claims = study_table(study_id, runs), claims[claims.study == study_id]
    px = " / ".join(str(p) for p in study.paper_px)
    parts = [f"# {study.title}", "",
             f"What it shows: {study.shows}. Ours: top-1 (%) as mean ± std over seeds (n runs), at the training "
             f"size followed by the 95% t-interval of the mean in brackets (none from one seed; claims.md gives "
             f"intervals at every size), "
             f"† = fine-tuned at that size, ⚠ unstable = a run whose learning curve ends clearly worse than it "
             f"once was (`cpvt_lab/curves.py`; the curve is in its row). Paper: the published figure (status in "
             f"brackets; see reference.csv). Our training size sits beside the paper's training resolution and our "
             f"k-th larger test size beside the paper's k-th ({px} px). Grid: `python -m cpvt_lab.grid {study.grid}` "
             f"(`ablations/grids/{study.grid}.yaml` lists this table's rows).", ""]
    if table.empty:
        parts += [f"_No runs of this study yet: run `python -m cpvt_lab.grid {study.grid}`._", ""]
    for _, setting in table[SETTING].drop_duplicates().iterrows():
        here = table[(table[SETTING] == setting).all(axis=1)]
        ran = runs[runs.ablation.isin(study.ablations) & (runs[SETTING] == setting).all(axis=1)]
        parts += setting_heading(setting, runs=ran)
        parts += [_wide(study, here).to_markdown(index=False), "",
                  convergence_line(curves[curves.run_id.isin(ran.run_id)], ran.run_id.nunique()), ""]
        mine = claims[(claims[SETTING] == setting).all(axis=1)]
        if len(mine):
            parts += ["Claims of the paper on our runs: the direction of our means, and the verdict of the 95% "
                      "interval of A - B (claims.md gives the intervals). The paper measured on ImageNet: a "
                      f"contradicted claim is a finding about {setting['dataset']}, not a failure of these runs.", "",
                      _claim_directions(mine), ""]
    return "\n".join(parts)


def index_markdown(results_dir: str | Path, set_aside: Sequence[dict] = ()) -> str:
    lines = ["# The paper's studies beside our runs", "", f"{regenerated_from(results_dir)}; do not edit by hand.", ""]
    if set_aside:
        ids = ", ".join(sorted({r["run_id"] for r in set_aside}))
        lines += [f"**{len(set_aside)} rows set aside, in no table:** trained compiled before compiled training was "
                  f"checked against eager (run_id {ids}); run them again to replace them.", ""]
    lines += ["| table | what it shows | grid |", "|---|---|---|"]
    lines += [f"| [{s.title}]({s.id}.md) | {s.shows} | `{s.grid}` |" for s in STUDIES]
    lines += ["", "Also: `reference.csv` (the published figures with their status and source).", "",
              "Beyond the paper: [claims.md](claims.md) and `claims.csv` (every claim with a 95% interval over seeds "
              "and a verdict), [equivariance.md](equivariance.md) and [probe.md](probe.md) (measured with "
              "`python -m cpvt_lab.analyze`), `resolution.csv` and `resolution.png` (top-1 against test resolution).",
              ""]
    figures = sorted(p.name for p in (Path(results_dir) / FIGURES_DIR).glob("*.png"))
    if figures:
        folder = (Path(results_dir) / FIGURES_DIR).as_posix()
        lines += [f"Figures drawn from the runs' weights while they existed, kept in `{folder}/` and copied here: "
                  + ", ".join(f"[{name}]({name})" for name in figures) + ". The attention figures are drawn by "
                  f"`python -m cpvt_lab.analyze attention results_dir={Path(results_dir).as_posix()} "
                  f"out_dir={folder}` (it needs the seed-0 learned, none and peg checkpoints; "
                  "`python -m cpvt_lab.study continue` draws them when they are at hand).", ""]
    return "\n".join(lines)


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


def claims_markdown(verdicts: pd.DataFrame, results_dir: str | Path, runs: Optional[pd.DataFrame] = None) -> str:
    """Every claim judged, one section per setting (with the provenance of its ``runs`` when given)."""
    parts = ["# The paper's claims, judged on our runs", "",
             f"{regenerated_from(results_dir)} (or `python -m cpvt_lab.analyze claims "
             f"results_dir={Path(results_dir).as_posix()}`); "
             "do not edit by hand. A cell is `ablation@k`: the "
             "ablation's top-1 (%) at its training size (k=0) or the k-th larger test size. Ours: mean ± std "
             "[95% t-interval of the mean] over seeds (n). A-B: difference of means with its 95% Welch interval, or, "
             "for one ablation at two sizes (the same runs twice), the mean per-seed difference with its paired "
             "t-interval (marked *); d: Cohen's d (pooled SD; paired: mean difference over the SD of the "
             "differences). Verdict: **reproduced** when the claim holds over the whole interval, **contradicted** "
             "when it fails over the whole interval (the paper measured on ImageNet: a contradiction is a finding about "
             "our data set, not a failure of the runs), **inconclusive** otherwise, and always with fewer than 3 "
             "seeds in a cell (`cpvt_lab/analysis/stats.py` states the rule).", ""]
    counts = verdicts.verdict.value_counts()
    parts += ["Totals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + ".", ""]
    for key, group in verdicts.groupby(SETTING, dropna=False, sort=False):
        # lines without runs carry NaN settings, which turns whole numbers in these columns into floats
        setting = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in zip(SETTING, key)}
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in setting.values()):
            parts += ["## Claims without any runs", ""]
        else:
            mine = runs[(runs[SETTING] == pd.Series(setting)).all(axis=1)] if runs is not None else None
            parts += setting_heading(setting, runs=mine)
        table = pd.DataFrame({
            "claim (A vs B)": [_claim(r) for r in group.itertuples()],
            "paper A vs B": [_paper_pair(r.paper_a, r.paper_b) for r in group.itertuples()],
            "ours A": [_cell(r.a_mean, r.a_std, r.a_low, r.a_high, r.a_n) for r in group.itertuples()],
            "ours B": [_cell(r.b_mean, r.b_std, r.b_low, r.b_high, r.b_n) for r in group.itertuples()],
            "A-B [95% CI]": [_difference(r) for r in group.itertuples()],
            "d": ["—" if pd.isna(d) else f"{d:+.2f}" for d in group.cohens_d],
            "verdict": [verdict_said(v, d) for v, d in zip(group.verdict, group.dataset)], "why": group.reason})
        parts += [table.to_markdown(index=False), ""]
    return "\n".join(parts)


def measured_markdown(analysis, frame: pd.DataFrame, results_dir: str | Path,
                      runs: Optional[pd.DataFrame] = None) -> str:
    """The page of a measured analysis (a ``measured.MeasuredAnalysis``): what it measures, then one section
    per setting and ``analysis.sections_by`` keys."""
    kind = analysis.name
    parts = [f"# {analysis.title}", "",
             f"{regenerated_from(results_dir, f'analysis/{kind}/')} (measure with `python -m cpvt_lab.analyze "
             f"{kind} ablations=[...] results_dir={Path(results_dir).as_posix()}`). {analysis.explains}", ""]
    if frame.empty:
        return "\n".join(parts + ["_No measurements yet._", ""])
    return "\n".join(parts + sections(frame, analysis.sections_by, analysis.render, runs))
