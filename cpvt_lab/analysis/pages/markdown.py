"""The Markdown of the paper tables, the measured analyses and the index (``claims_page`` writes the claims).

Every page opens with the folder it was read from and the command that regenerates it
(``page_parts``); a paper table's page gives one section per setting (``settings``): its provenance,
its table of cells pooled over seeds (unstable runs left out and counted), how far from
converged its runs ended, and the paper's claims on them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from ...ablations import load_study
from ...ablations import names as study_names
from ...curves import LOSS_RISE, LOSS_RISE_FRACTION, TOP1_DROP
from ...paper import TABLE_BY_ID, TABLES, PaperTable, attention_ablations, paper_value, reference
# claims_markdown: every page from here
from ..measures.attention import block_name
from .claims_page import claim_directions, claims_markdown, comparison_lines  # noqa: F401
from ..convergence import convergence_line
from ..frames import load_runs, measured_runs, table_cells
from .headlines import headline_markdown
from .page_parts import (SCALE_NOTES, in_section, largest_size_sentence, mean_std, plural,  # noqa: F401
                         regenerated_from, sections, setting_heading, with_interval)
from ..settings import SECTION
from ..verdicts.stats import MIN_SEEDS

UNSTABLE = (f"a run is unstable when its training loss ends more than max({LOSS_RISE:g}, "
            f"{LOSS_RISE_FRACTION:.0%} of it) above its minimum or, where its curve was measured on a validation "
            f"split, its top-1 at the training size more than {TOP1_DROP:g} points below its peak (a curve measured "
            "on the test set is not read: those images judge the run), judged from the curve in its row (a run "
            "without one is not judged)")


def _ours(mean, std, n, low, high, rank, finetuned, unstable) -> str:
    # the interval at the training size only: claims.md gives it at every size, the table stays readable
    cell = with_interval(mean, std, n, low, high) if rank == 0 else mean_std(mean, std, n)
    left_out = f" ⚠ {plural(int(unstable), 'unstable run')} left out" if unstable else ""
    return cell + (" †" if finetuned else "") + left_out


def _paper(value, status) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1f} ({status})"


def _lines(study: PaperTable, table: pd.DataFrame) -> list[tuple[str, str]]:
    """(ablation, label) of each line of a section (``table`` of it): one per ablation, and per setting of it where
    the section holds several."""
    labels = table.drop_duplicates("ablation_label").groupby("ablation", sort=False).ablation_label.agg(sorted)
    return [(a, label) for a in study.ablations for label in (labels.get(a) or [a])]


def _wide(study: PaperTable, table: pd.DataFrame) -> pd.DataFrame:
    """One line per ablation (and per setting of it, where a section holds several), our cell and the paper's
    beside it for each size (``table`` of one section)."""
    ref, lines = reference(), _lines(study, table)
    sizes = table[["size_px", "size_rank"]].drop_duplicates().sort_values("size_px")
    columns = ["mean", "std", "n", "low", "high", "size_rank", "finetuned", "unstable"]
    cells = table.assign(cell=[_ours(*r) for r in table[columns].itertuples(index=False)])
    ours = cells.pivot(index="ablation_label", columns="size_px", values="cell").reindex([lb for _, lb in lines])
    n = table.groupby("ablation_label").n.max()
    wide = pd.DataFrame({
        "ablation": [label for _, label in lines],
        "paper row": [f"{row.model}, {row.variant}" if (row := study.paper_row(a)) else "—" for a, _ in lines],
        "n": [int(n.get(label, 0)) for _, label in lines]})
    for size, rank in sizes.itertuples(index=False):
        wide[f"{size} px" + (" (train)" if rank == 0 else "")] = ours[size].fillna("no runs").to_list()
        if 0 <= rank < len(study.paper_px):
            wide[f"paper {study.paper_px[rank]} px"] = [_paper(*paper_value(study, a, rank, ref)) for a, _ in lines]
    return wide


def table_markdown(table_id: str, runs: pd.DataFrame, claims: pd.DataFrame, curves: pd.DataFrame,
                   headlines: Optional[pd.DataFrame] = None, questions: Optional[pd.DataFrame] = None) -> str:
    """A paper table's Markdown: one table per section with how far from converged its runs' ``curves`` end (as
    ``frames.load_curves`` gives them), its own ``questions`` (``claims.judge_questions``), the headline
    numbers of its measured analyses (``headlines``, as ``headlines.headline_cells`` gives them) and the paper's claims as
    ``claims.judge_claims`` judged them."""
    study = TABLE_BY_ID[table_id]
    table, claims = table_cells(table_id, runs), claims[claims.study == table_id]
    px = " / ".join(str(p) for p in study.paper_px)
    parts = [f"# {study.title}", "",
             f"What it shows: {study.shows}. Ours: top-1 (%) as mean ± std over seeds (n: distinct seeds), at the "
             f"training size followed by the 95% interval of the mean in brackets, from the seeds' spread and the "
             f"test set's sampling (none from one seed; claims.md gives intervals at every size), "
             f"† = fine-tuned at that size, ⚠ = unstable runs left out of the cell ({UNSTABLE}). Paper: the "
             f"published figure (status in brackets; see reference.csv). Our training size sits beside the paper's "
             f"training resolution and our k-th larger test size beside the paper's k-th ({px} px). Grid: "
             f"`python -m cpvt_lab.grid {study.grid}` (`ablations/grids/{study.grid}.yaml` lists this table's rows).",
             ""]
    if table.empty:
        parts += [f"_No runs of this study yet: run `python -m cpvt_lab.grid {study.grid}`._", ""]
    for _, setting in table.drop_duplicates(SECTION).iterrows():
        ran = in_section(runs[runs.ablation.isin(study.ablations)], setting)
        parts += setting_heading({**setting, "setting": ran.setting.iloc[0]}, runs=ran)
        cells, mine = in_section(table, setting), in_section(claims, setting)
        # where no claim of the paper judges the rows (RoPE), the CSV's intervals are all there is to read
        sentence = largest_size_sentence(cells) if len(mine) else largest_size_sentence(
            cells, f"`{table_id}.csv` gives every cell's 95% interval")
        parts += [_wide(study, cells).to_markdown(index=False), "", *([sentence, ""] if sentence else []),
                  convergence_line(curves[curves.run_id.isin(ran.run_id)], ran.run_id.nunique()), ""]
        if questions is not None:
            parts += comparison_lines(in_section(questions, setting))
        if headlines is not None:  # a run tested at other sizes only has a training size but no cell there
            parts += headline_markdown(in_section(headlines, setting), [label for _, label in _lines(study, cells)],
                                       int(setting["train_size"]), study.measured)
        if len(mine):
            parts += ["Claims of the paper on our runs: the direction of our means, and the verdict of the 95% "
                      "interval of A - B, alone and under Holm with all the paper's claims on these runs as one "
                      "family (claims.md gives the intervals and p-values; fewer than "
                      f"{MIN_SEEDS} seeds in a cell is `inconclusive (n < {MIN_SEEDS})` whatever the interval). The "
                      "paper measured on ImageNet: a contradicted claim is a finding about "
                      f"{setting['dataset']}, not a failure of these runs.", "", claim_directions(mine), ""]
    return "\n".join(parts)


def _listed(names: Sequence[str]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else list(names))


def _continue_command(results_dir: str | Path) -> str:
    """The study command that stores the maps of this results folder: its study's, when a study file writes here."""
    folder = Path(results_dir).as_posix()
    for name in study_names("study"):
        study = load_study(name)
        if Path(study.results_dir).as_posix() == folder:
            return study.command()
    return f"python -m cpvt_lab.analyze attention results_dir={folder}"


def index_markdown(results_dir: str | Path, set_aside: Sequence[dict] = (),
                   repeated: Sequence[tuple[dict, dict]] = (), figures: Sequence[str] = (), block: int = 1,
                   shorter: Optional[str | Path] = None) -> str:
    """The tables folder's README: what each file is, and the rows that are in no table and why (``set_aside``:
    compiled unchecked; ``repeated``: (row, the later row of the same seed and setting that counts instead);
    ``figures``: the attention figures drawn beside it from the maps of ``block``)."""
    lines = ["# The paper's studies beside our runs", "", f"{regenerated_from(results_dir)}; do not edit by hand.", ""]
    if set_aside:
        ids = ", ".join(sorted({r["run_id"] for r in set_aside}))
        lines += [f"**{len(set_aside)} rows set aside, in no table:** trained compiled before compiled training was "
                  f"checked against eager (run_id {ids}); run them again to replace them.", ""]
    if repeated:
        pairs = "; ".join(f"run_id {old['run_id']} ({old['ablation']} seed {old['seed']}), counted as {new['run_id']}"
                          for old, new in repeated)
        lines += [f"**{plural(len(repeated), 'row')} left out, a seed recorded twice in one setting:** one seed is "
                  f"one sample, so the later row counts ({pairs}).", ""]
    lines += ["| table | what it shows | grid |", "|---|---|---|"]
    lines += [f"| [{s.title}]({s.id}.md) | {s.shows} | `{s.grid}` |" for s in TABLES]
    lines += ["", "Also: `reference.csv` (the published figures with their status and source).", "",
              "Beyond the paper: [claims.md](claims.md) and `claims.csv` (every claim with a 95% interval over seeds "
              "and a verdict), [equivariance.md](equivariance.md) and [probe.md](probe.md) (measured with "
              "`python -m cpvt_lab.analyze`), `resolution.csv` and `resolution.png` (top-1 against test resolution).",
              ""]
    if shorter is not None:
        lines += [f"These runs train the ablations of a shorter study (`{Path(shorter).as_posix()}`) longer: "
                  "[longer_training.md](longer_training.md) says which of its verdicts hold here.", ""]
    if figures:
        lines += ["The paper's attention figures, from trained models: " + ", ".join(f"[{name}]({name})" for name in
                  figures) + f". The attention of {block_name(block)}, averaged over heads, drawn from the maps "
                  f"stored in `{Path(results_dir).as_posix()}/analysis/attention_maps/` for the lowest-seed "
                  f"{_listed(attention_ablations())} runs (`{_continue_command(results_dir)}` stores each map while "
                  "the run's weights exist; `python -m cpvt_lab.analyze attention` draws the figures from "
                  "checkpoints instead).", ""]
    return "\n".join(lines)


def measured_markdown(analysis, frame: pd.DataFrame, results_dir: str | Path,
                      runs: Optional[pd.DataFrame] = None) -> str:
    """The page of a measured analysis (a ``measured.MeasuredAnalysis``): what it measures, then one section
    per setting and ``analysis.sections_by`` keys (``runs``: the folder's, as ``frames.load_runs`` gives them)."""
    kind = analysis.name
    parts = [f"# {analysis.title}", "",
             f"{regenerated_from(results_dir, f'analysis/{kind}/')} (measure with `python -m cpvt_lab.analyze "
             f"{kind} ablations=[...] results_dir={Path(results_dir).as_posix()}`). {analysis.explains}", ""]
    if frame.empty:
        return "\n".join(parts + ["_No measurements yet._", ""])
    runs = load_runs(results_dir) if runs is None else runs
    frame, notes = measured_runs(frame, runs)
    parts += [" ".join(notes), ""] if notes else []
    return "\n".join(parts + sections(frame, analysis.sections_by, analysis.render, runs))
