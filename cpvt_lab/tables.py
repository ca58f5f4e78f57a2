"""The paper's tables beside our runs: ``python -m cpvt_lab.tables [--results DIR] [--out DIR]``.

Everything here is regenerated from ``<results>/runs.jsonl`` and the published figures
(``reference_numbers.csv`` beside this file). Rows of one ablation are pooled over seeds
only within one setting (scale, dataset, epochs, training size, model size), so smoke
runs never mix with real ones. The studies and the paper's claims are DATA (``STUDIES``,
``CLAIMS``) so that other analyses (confidence intervals, verdicts) reuse them.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from .analysis.plots import curves_plot
from .curves import RISING_EPOCHS
from .results import DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR, RESULTS_FILE, finished_rows, results_path, set_aside_rows

REFERENCE_CSV = Path(__file__).with_name("reference_numbers.csv")
SETTING = ["scale", "dataset", "epochs", "train_size", "model_size"]  # never pooled across
RUN_COLUMNS = ["run_id", "ablation", "seed", *SETTING, "size_px", "size_rank", "top1", "finetuned", "unstable",
               "device", "command"]
CURVE_COLUMNS = ["run_id", "ablation", "seed", *SETTING, "epoch", "train_loss", "top1", "lr"]
SMOKE_NOTE = "**Smoke scale: these runs check the pipeline and measure nothing.**"


def regenerated_from(results_dir: str | Path, source: str = RESULTS_FILE) -> str:
    """The opening of every generated table: the folder it was read from (several are committed), and the command."""
    folder = Path(results_dir).as_posix()
    return f"Regenerated from `{folder}/{source}` by `python -m cpvt_lab.tables --results {folder}`"


@dataclass(frozen=True)
class PaperRow:
    """A row of reference_numbers.csv (its figures are looked up by metric ``top1@<px>``)."""
    study: str
    model: str
    variant: str


@dataclass(frozen=True)
class Study:
    """One of the paper's studies: our ablations, each beside the paper's row it reproduces.

    ``paper_px`` are the paper's test resolutions, the first being its training one. Our
    test sizes are matched by rank: our training size to the paper's, the k-th size above
    it to the paper's k-th (CIFAR 24 / 32 / 40 / 48 px beside 224 / 384 / 448 / 512 px).
    """
    id: str
    grid: str
    title: str
    shows: str
    rows: tuple[tuple[str, Optional[PaperRow]], ...]
    paper_px: tuple[int, ...] = (224,)

    @property
    def ablations(self) -> list[str]:
        return [ablation for ablation, _ in self.rows]

    def paper_row(self, ablation: str) -> Optional[PaperRow]:
        return dict(self.rows).get(ablation)


T1, T2, T3 = "table1_pe_strategies", "table2_resolution", "table3_cls_vs_gap"
POS, EXTRA = "peg_position", "extra_params"

STUDIES: tuple[Study, ...] = (
    Study(T1, "table1", "Position-encoding strategies (paper Table 1)",
          "top-1 at the training resolution and at larger test resolutions without fine-tuning",
          (("none", PaperRow(T1, "DeiT-tiny", "none")), ("learned", PaperRow(T1, "DeiT-tiny", "learnable")),
           ("sincos", PaperRow(T1, "DeiT-tiny", "sin-cos")), ("relative", PaperRow(T1, "DeiT-tiny", "2d-rpe")),
           ("peg", PaperRow(T1, "CPVT-Ti", "peg@0"))), (224, 384)),
    Study(T2, "table2", "Direct evaluation at other resolutions (paper Table 2)",
          "top-1 at each test resolution of a model trained at one: the learned table interpolated "
          "(learned) or interpolated and fine-tuned at each size (interpolated) against PEGs",
          (("learned", PaperRow(T2, "DeiT-tiny", "learnable-interpolated")), ("interpolated", None),
           ("peg", PaperRow(T2, "CPVT-Ti", "peg@0")), ("peg_0to5", PaperRow(T2, "CPVT-Ti", "peg@0-5"))),
          (224, 384, 448, 512)),
    Study(T3, "table3", "Class token vs global average pooling (paper Table 3)",
          "top-1 of DeiT (learned table) and CPVT (PEG at 0, PEGs at 0-5), each with a class token or GAP",
          (("learned", PaperRow(T3, "DeiT-tiny", "learnable+cls")), ("learned_gap", None),
           ("peg", PaperRow(T1, "CPVT-Ti", "peg@0")), ("peg_gap", None),
           ("peg_0to5", PaperRow(T3, "CPVT-Ti", "peg@0-5+cls")),
           ("peg_0to5_gap", PaperRow(T3, "CPVT-Ti", "peg@0-5+gap")))),
    Study(POS, "peg_position", "Where the PEG goes, and its receptive field at -1",
          "top-1 with one 3x3 PEG at position -1, 0, 3, 6 or 10, and a 27x27 PEG at -1",
          (("peg_at_m1", PaperRow(POS, "CPVT-Ti", "peg@-1 (3x3)")), ("peg", PaperRow(POS, "CPVT-Ti", "peg@0 (3x3)")),
           ("peg_at_3", PaperRow(POS, "CPVT-Ti", "peg@3 (3x3)")), ("peg_at_6", PaperRow(POS, "CPVT-Ti", "peg@6 (3x3)")),
           ("peg_at_10", PaperRow(POS, "CPVT-Ti", "peg@10 (3x3)")),
           ("peg27_at_m1", PaperRow(POS, "CPVT-Ti", "peg@-1 (27x27)")))),
    Study(EXTRA, "extra_params", "Position information or extra parameters? (and zero padding)",
          "top-1 without encoding, with a PEG frozen at random init, a learned PEG, 12 stacked 1x1 convs "
          "at the PEG slot, and a PEG without padding",
          (("none", PaperRow(T1, "DeiT-tiny", "none")),
           ("frozen_peg", PaperRow(EXTRA, "CPVT-Ti", "peg@0 frozen random init")),
           ("peg", PaperRow(EXTRA, "CPVT-Ti", "peg@0 learned")),
           ("conv1x1_stack", PaperRow(EXTRA, "CPVT-Ti", "12 x 1x1 conv at the PEG slot")),
           ("peg_nopad", PaperRow("padding", "CPVT-Ti", "peg@0 no padding")))),
)
STUDY_BY_ID = {s.id: s for s in STUDIES}


@dataclass(frozen=True)
class Cell:
    """An ablation's top-1 at a test size given by rank: 0 the training size, k the k-th above it."""
    ablation: str
    rank: int = 0


@dataclass(frozen=True)
class Claim:
    """A direction the paper reports: ``a - b > margin`` ("greater") or ``a - b <= margin`` ("not_greater")."""
    id: str
    study: str
    text: str
    a: Cell
    b: Cell
    direction: str = "greater"
    margin: float = 0.0

    def holds(self, a: float, b: float) -> bool:
        return a - b > self.margin if self.direction == "greater" else a - b <= self.margin


CLAIMS: tuple[Claim, ...] = (
    Claim("t1_learned_beats_none", T1, "a learned table beats no encoding", Cell("learned"), Cell("none")),
    Claim("t1_learned_beats_relative", T1, "a learned table beats the 2-D relative bias",
          Cell("learned"), Cell("relative")),
    Claim("t1_relative_beats_none", T1, "the 2-D relative bias beats no encoding", Cell("relative"), Cell("none")),
    Claim("t1_peg_beats_learned_larger", T1, "PEG beats the learned table at the first larger resolution",
          Cell("peg", 1), Cell("learned", 1)),
    Claim("t1_peg_gains_larger", T1, "PEG gains at the first larger resolution (no fine-tuning)",
          Cell("peg", 1), Cell("peg", 0)),
    Claim("t1_learned_loses_larger", T1, "the learned table loses at the first larger resolution",
          Cell("learned", 0), Cell("learned", 1)),
    Claim("t2_peg_beats_learned_largest", T2, "PEG beats the interpolated learned table at the largest resolution",
          Cell("peg", 3), Cell("learned", 3)),
    Claim("t2_peg0to5_beats_peg", T2, "PEGs after blocks 0-5 beat one PEG at the training resolution",
          Cell("peg_0to5"), Cell("peg")),
    Claim("t3_gap_adds_1pt_peg0to5", T3, "GAP adds more than 1 point to CPVT (PEGs at 0-5)",
          Cell("peg_0to5_gap"), Cell("peg_0to5"), margin=1.0),
    Claim("t3_gap_helps_peg", T3, "GAP helps CPVT with one PEG", Cell("peg_gap"), Cell("peg")),
    Claim("pos_0_beats_m1", POS, "a PEG at position 0 beats one at -1", Cell("peg"), Cell("peg_at_m1")),
    Claim("pos_0_beats_10", POS, "a PEG at position 0 beats one at 10", Cell("peg"), Cell("peg_at_10")),
    Claim("pos_27x27_recovers_m1", POS, "a 27x27 PEG at -1 beats a 3x3 PEG at -1",
          Cell("peg27_at_m1"), Cell("peg_at_m1")),
    Claim("extra_frozen_beats_none", EXTRA, "a PEG frozen at random init beats no encoding",
          Cell("frozen_peg"), Cell("none")),
    Claim("extra_frozen_beats_conv1x1", EXTRA, "a frozen random PEG beats 12 stacked 1x1 convs",
          Cell("frozen_peg"), Cell("conv1x1_stack")),
    Claim("extra_conv1x1_no_better", EXTRA, "12 stacked 1x1 convs are no better than no encoding (within 1 point)",
          Cell("conv1x1_stack"), Cell("none"), direction="not_greater", margin=1.0),
    Claim("extra_learned_beats_frozen", EXTRA, "a learned PEG beats a frozen random one",
          Cell("peg"), Cell("frozen_peg")),
    Claim("extra_padding_beats_nopad", EXTRA, "zero padding beats no padding (padding carries position)",
          Cell("peg"), Cell("peg_nopad")),
)


# ---------------------------------------------------------------- published figures
def reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_CSV)


def paper_value(study: Study, ablation: str, rank: int, ref: pd.DataFrame) -> tuple[Optional[float], str]:
    """The paper's figure (and its status) for an ablation at the test size of this rank."""
    row = study.paper_row(ablation)
    if row is None or not 0 <= rank < len(study.paper_px):
        return None, ""
    hit = ref[(ref.study == row.study) & (ref.model == row.model) & (ref.variant == row.variant)
              & (ref.metric == f"top1@{study.paper_px[rank]}")]
    return (float(hit.value.iloc[0]), str(hit.status.iloc[0])) if len(hit) else (None, "")


# ---------------------------------------------------------------- our runs
def size_rank(size: int, train_size: int, sizes: Sequence[int]) -> int:
    """0 for the training size, k for the k-th size above it, -k for the k-th below."""
    if size >= train_size:
        return sum(train_size < s <= size for s in set(sizes))
    return -sum(size <= s < train_size for s in set(sizes))


def load_runs(results_dir: str | Path) -> pd.DataFrame:
    """One line per finished run and test size (a run_id recorded twice counts once, the later row)."""
    rows = finished_rows(results_dir)
    records = []
    for r in rows:
        sizes = [int(s) for s in r["top1"]]
        for size, acc in r["top1"].items():
            records.append({
                "run_id": r["run_id"], "ablation": r["ablation"], "seed": r["seed"],
                **{k: r.get(k) for k in SETTING}, "size_px": int(size),
                "size_rank": size_rank(int(size), r["train_size"], sizes), "top1": float(acc),
                "finetuned": size in r.get("finetuned_sizes", []), "unstable": bool(r.get("unstable")),
                "device": r.get("device"),
                "command": r.get("command")})
    runs = pd.DataFrame.from_records(records, columns=RUN_COLUMNS)
    return runs.sort_values(["ablation", *SETTING, "seed", "size_px"], ignore_index=True)


def load_curves(results_dir: str | Path) -> pd.DataFrame:
    """One line per finished run and epoch of its learning curve (runs recorded before curves have none)."""
    records = []
    for r in finished_rows(results_dir):
        curve = r.get("curve") or {}
        for i, epoch in enumerate(curve.get("epoch", [])):
            records.append({"run_id": r["run_id"], "ablation": r["ablation"], "seed": r["seed"],
                            **{k: r.get(k) for k in SETTING}, "epoch": epoch,
                            **{c: curve[c][i] for c in ("train_loss", "top1", "lr")}})
    return pd.DataFrame.from_records(records, columns=CURVE_COLUMNS)


def setting_label(setting: dict | pd.Series) -> str:
    return (f"scale={setting['scale']} · {setting['dataset']} · {setting['epochs']} epochs · "
            f"trained at {setting['train_size']} px · model {setting['model_size']}")


def study_runs(study_id: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of one study's ablations, ordered as the study lists them, with a ``setting`` label."""
    study = STUDY_BY_ID[study_id]
    runs = runs[runs.ablation.isin(study.ablations)].copy()
    runs["setting"] = [setting_label(r) for _, r in runs.iterrows()] if len(runs) else []
    runs["ablation"] = pd.Categorical(runs.ablation, categories=study.ablations, ordered=True)
    order = [c for c in ("setting", "ablation", "seed", "size_px", "epoch") if c in runs.columns]
    return runs.sort_values(order, ignore_index=True)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and n over seeds per setting, ablation and test size."""
    keys = [*SETTING, "ablation", "size_px", "size_rank"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "n", "mean", "std", "finetuned", "unstable"])
    grouped = runs.groupby(keys, observed=True, dropna=False)
    return grouped.agg(n=("run_id", "nunique"), mean=("top1", "mean"), std=("top1", "std"),
                       finetuned=("finetuned", "any"), unstable=("unstable", "any")).reset_index()


def study_table(study_id: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: our mean +- std (n) per setting, ablation and size, and the paper's figure beside it."""
    study, ref = STUDY_BY_ID[study_id], reference()
    table = summarize(runs[runs.ablation.isin(study.ablations)])
    paper = [paper_value(study, r.ablation, r.size_rank, ref) for r in table.itertuples()]
    table["paper_px"] = [study.paper_px[r] if 0 <= r < len(study.paper_px) else None for r in table.size_rank]
    table["paper_value"] = [v for v, _ in paper]
    table["paper_status"] = [s for _, s in paper]
    table.insert(0, "study", study.id)
    order = {a: i for i, a in enumerate(study.ablations)}
    table = table.sort_values([*SETTING, "ablation", "size_px"], key=lambda c: c.map(order) if c.name == "ablation"
                              else c, ignore_index=True)
    return table.round({"mean": 2, "std": 2})


def evaluate_claims(runs: pd.DataFrame, study_id: Optional[str] = None) -> pd.DataFrame:
    """Per claim and setting: the paper's two figures, our two means (n), and whether the direction holds."""
    ref, summary, records = reference(), summarize(runs), []
    for claim in CLAIMS:
        if study_id is not None and claim.study != study_id:
            continue
        study = STUDY_BY_ID[claim.study]
        paper = [paper_value(study, c.ablation, c.rank, ref)[0] for c in (claim.a, claim.b)]
        settings = summary[summary.ablation.isin(study.ablations)][SETTING].drop_duplicates()
        for _, setting in settings.iterrows():
            here = summary[(summary[SETTING] == setting).all(axis=1)]
            cells = [here[(here.ablation == c.ablation) & (here.size_rank == c.rank)] for c in (claim.a, claim.b)]
            ours = [(round(float(c["mean"].iloc[0]), 2), int(c.n.iloc[0])) if len(c) else (None, 0) for c in cells]
            both = all(m is not None for m, _ in ours)
            records.append({
                "claim": claim.id, "study": claim.study, "text": claim.text, **setting.to_dict(),
                "a": f"{claim.a.ablation}@{claim.a.rank}", "b": f"{claim.b.ablation}@{claim.b.rank}",
                "direction": claim.direction, "margin": claim.margin,
                "paper_a": paper[0], "paper_b": paper[1],
                "paper_holds": claim.holds(*paper) if None not in paper else None,
                "ours_a": ours[0][0], "n_a": ours[0][1], "ours_b": ours[1][0], "n_b": ours[1][1],
                "ours_holds": claim.holds(ours[0][0], ours[1][0]) if both else None})
    return pd.DataFrame.from_records(records, columns=[
        "claim", "study", "text", *SETTING, "a", "b", "direction", "margin", "paper_a", "paper_b", "paper_holds",
        "ours_a", "n_a", "ours_b", "n_b", "ours_holds"])


# ---------------------------------------------------------------- Markdown
def _ours(mean, std, n, finetuned, unstable=False) -> str:
    if pd.isna(mean):
        return "—"
    text = f"{mean:.2f}" if n < 2 or pd.isna(std) else f"{mean:.2f} ± {std:.2f}"
    return text + (" †" if finetuned else "") + (" ⚠ unstable" if unstable else "")


def _paper(value, status) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1f} ({status})"


def _wide(study: Study, table: pd.DataFrame) -> pd.DataFrame:
    """One line per ablation, our cell and the paper's beside it for each size."""
    sizes = table[["size_px", "size_rank"]].drop_duplicates().sort_values("size_px")
    lines = []
    for ablation in study.ablations:
        mine = table[table.ablation == ablation]
        row = study.paper_row(ablation)
        line = {"ablation": ablation, "paper row": f"{row.model}, {row.variant}" if row else "—",
                "n": int(mine.n.max()) if len(mine) else 0}
        for size, rank in sizes.itertuples(index=False):
            cell = mine[mine.size_px == size]
            label = f"{size} px" + (" (train)" if rank == 0 else "")
            line[label] = (_ours(*cell[["mean", "std", "n", "finetuned", "unstable"]].iloc[0]) if len(cell)
                           else "no runs")
            if 0 <= rank < len(study.paper_px):
                ref_row = table[(table.size_rank == rank) & (table.ablation == ablation)]
                line[f"paper {study.paper_px[rank]} px"] = (
                    _paper(*ref_row[["paper_value", "paper_status"]].iloc[0]) if len(ref_row)
                    else _paper(*paper_value(study, ablation, rank, reference())))
        lines.append(line)
    return pd.DataFrame(lines)


def _claims_markdown(claims: pd.DataFrame) -> str:
    def verdict(holds, n_a, n_b):
        if holds is None or pd.isna(holds):
            return "no runs"
        return ("yes" if holds else "no") + (" (one seed)" if min(n_a, n_b) < 2 else "")

    table = pd.DataFrame({
        "claim of the paper": claims.text,
        "paper": [f"{a:.1f} vs {b:.1f}" if not (pd.isna(a) or pd.isna(b)) else "—"
                  for a, b in zip(claims.paper_a, claims.paper_b)],
        "ours (mean)": [f"{a:.2f} vs {b:.2f}" if not (pd.isna(a) or pd.isna(b)) else "—"
                        for a, b in zip(claims.ours_a, claims.ours_b)],
        "same direction as the paper?": [verdict(*v) for v in zip(claims.ours_holds, claims.n_a, claims.n_b)]})
    return table.to_markdown(index=False)


def provenance(runs: pd.DataFrame) -> str:
    """Where a table's numbers come from: seeds, devices and the commands that made them."""
    seeds = ", ".join(str(s) for s in sorted(runs.seed.unique()))
    devices = "; ".join(sorted(runs.device.dropna().unique())) or "not recorded"
    commands = ", ".join(f"`{c}`" for c in sorted(runs.command.dropna().unique())) or "not recorded"
    return f"{runs.run_id.nunique()} runs, seeds {seeds}, on {devices}; made by {commands}."


def study_markdown(study_id: str, runs: pd.DataFrame) -> str:
    """The study's Markdown: one table per setting, and the paper's claims checked on our means."""
    study = STUDY_BY_ID[study_id]
    table, claims = study_table(study_id, runs), evaluate_claims(runs, study_id)
    px = " / ".join(str(p) for p in study.paper_px)
    parts = [f"# {study.title}", "",
             f"What it shows: {study.shows}. Ours: top-1 (%) as mean ± std over seeds (n runs), "
             f"† = fine-tuned at that size, ⚠ unstable = a run's training loss rose {RISING_EPOCHS} epochs in a "
             f"row under a decaying lr (its learning curve is in its row). Paper: the published figure (status in brackets; see reference.csv). "
             f"Our training size sits beside the paper's training resolution and our k-th larger test size beside "
             f"the paper's k-th ({px} px). Grid: `python -m cpvt_lab.grid {study.grid}`.", ""]
    if table.empty:
        parts += [f"_No runs of this study yet: run `python -m cpvt_lab.grid {study.grid}`._", ""]
    for _, setting in table[SETTING].drop_duplicates().iterrows():
        here = table[(table[SETTING] == setting).all(axis=1)]
        parts += [f"## {setting_label(setting)}", ""]
        if setting["scale"] == "smoke":
            parts += [SMOKE_NOTE, ""]
        parts += [provenance(runs[runs.ablation.isin(study.ablations) & (runs[SETTING] == setting).all(axis=1)]), ""]
        parts += [_wide(study, here).to_markdown(index=False), ""]
        mine = claims[(claims[SETTING] == setting).all(axis=1)]
        if len(mine):
            parts += ["Claims of the paper, checked on our means (direction only; no test of significance):", "",
                      _claims_markdown(mine), ""]
    return "\n".join(parts)


def index_markdown(results_dir: str | Path, set_aside: Sequence[dict] = ()) -> str:
    lines = ["# The paper's studies beside our runs", "", f"{regenerated_from(results_dir)}; do not edit by hand.", ""]
    if set_aside:
        ids = ", ".join(sorted({r["run_id"] for r in set_aside}))
        lines += [f"**{len(set_aside)} rows set aside, in no table:** trained compiled before compiled training was "
                  f"checked against eager (run_id {ids}); run them again to replace them.", ""]
    lines += ["| table | what it shows | grid |", "|---|---|---|"]
    lines += [f"| [{s.title}]({s.id}.md) | {s.shows} | `{s.grid}` |" for s in STUDIES]
    lines += ["", "Also: `reference.csv` (the published figures with their status and source) and "
                  "`claim_directions.csv` (each claim of the paper, per setting, checked on our means).", "",
              "Beyond the paper: [claims.md](claims.md) (every claim with a 95% interval over seeds and a verdict), "
              "[equivariance.md](equivariance.md) and [probe.md](probe.md) (measured with "
              "`python -m cpvt_lab.analyze`), `resolution.csv` and `resolution.png` (top-1 against test resolution).",
              ""]
    return "\n".join(lines)


def write_curves_plot(curves: pd.DataFrame, study: Study, path: Path) -> Path:
    grid = curves_plot(curves, f"{study.title}: learning curves")
    grid.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(grid.figure)
    return path


def write_tables(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every table (Markdown and CSV) into ``out_dir``; return the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(results_dir)
    written = [out / "reference.csv", out / "README.md", out / "claim_directions.csv"]
    shutil.copyfile(REFERENCE_CSV, written[0])
    written[1].write_text(index_markdown(results_dir, set_aside_rows(results_dir)))
    evaluate_claims(runs).to_csv(written[2], index=False)
    curves = load_curves(results_dir)
    for study in STUDIES:
        (out / f"{study.id}.md").write_text(study_markdown(study.id, runs))
        study_table(study.id, runs).to_csv(out / f"{study.id}.csv", index=False)
        written += [out / f"{study.id}.md", out / f"{study.id}.csv"]
        mine = study_runs(study.id, curves)
        if len(mine):  # runs recorded before learning curves existed have none to draw
            written.append(write_curves_plot(mine, study, out / f"curves_{study.id}.png"))
    from .analysis.report import write_reports  # claims' verdicts, equivariance, probe, resolution curve
    return written + write_reports(results_dir, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpvt_lab.tables", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=DEFAULT_RESULTS_DIR,
                        help=f"folder holding runs.jsonl (default: {DEFAULT_RESULTS_DIR}, where runs append; "
                             "the committed smoke rows: results/smoke)")
    parser.add_argument("--out", default=DEFAULT_TABLES_DIR,
                        help=f"folder to write the tables to (default: {DEFAULT_TABLES_DIR}; "
                             "the committed ones: paper_tables)")
    args = parser.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"error: --results: {args.results!r} is not a folder (it should hold runs.jsonl)", file=sys.stderr)
        return 2
    written = write_tables(args.results, args.out)
    print(f"{len(written)} files written to {args.out}/ from {results_path(args.results)} "
          f"({len(load_runs(args.results).run_id.unique())} finished runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
