"""Write the tables and figures of ``<results_dir>`` into a tables folder: each study, claim and analysis.

``write_all`` is what ``python -m cpvt_lab.tables`` runs; ``python -m cpvt_lab.analyze KIND``
rewrites one analysis's files with ``write_claims``, ``write_resolution`` or ``write_measured``, and
draws the attention figures from trained checkpoints with ``write_attention`` (which needs them,
so ``write_all`` leaves those figures as they are). Figures drawn into ``<results_dir>/figures/``
while the weights existed are results like the rows: ``write_all`` copies them beside the tables.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt

from ..results import FIGURES_DIR, set_aside_rows
from ..studies import REFERENCE_CSV, STUDIES
from . import attention, markdown, plots, store
from .claims import judge_claims
from .frames import load_curves, load_runs, pool_seeds, repeated_seeds, study_runs, study_table
from .kinds import MEASURED
from .resolution import curve


def _folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save(figure, path: Path, dpi: int) -> Path:
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure.figure if hasattr(figure, "figure") else figure)
    return path


def write_studies(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """The index, the published figures, and each study's Markdown, CSV and learning curves."""
    out, runs, curves = _folder(out_dir), load_runs(results_dir), load_curves(results_dir)
    claims = judge_claims(runs)
    written = [out / "reference.csv", out / "README.md"]
    shutil.copyfile(REFERENCE_CSV, written[0])
    index = markdown.index_markdown(results_dir, set_aside_rows(results_dir), repeated_seeds(results_dir))
    written[1].write_text(index)
    for study in STUDIES:
        (out / f"{study.id}.md").write_text(markdown.study_markdown(study.id, runs, claims, curves))
        study_table(study.id, runs).to_csv(out / f"{study.id}.csv", index=False)
        written += [out / f"{study.id}.md", out / f"{study.id}.csv"]
        mine = study_runs(study.id, curves)
        if len(mine):  # runs recorded before learning curves existed have none to draw
            grid = plots.curves_plot(mine, f"{study.title}: learning curves")
            written.append(_save(grid, out / f"curves_{study.id}.png", dpi=80))
    return written


def write_claims(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """``claims.md`` and ``claims.csv``: every claim of the paper, judged."""
    out = _folder(out_dir)
    runs = load_runs(results_dir)
    verdicts = judge_claims(runs)
    verdicts.to_csv(out / "claims.csv", index=False)
    (out / "claims.md").write_text(markdown.claims_markdown(verdicts, results_dir, runs))
    return [out / "claims.md", out / "claims.csv"]


def write_resolution(results_dir: str | Path, out_dir: str | Path,
                     ablations: Optional[Sequence[str]] = None) -> list[Path]:
    """``resolution.csv`` (mean, std, 95% interval, n per size) and, when there are runs, ``resolution.png``."""
    out = _folder(out_dir)
    points = curve(load_runs(results_dir), ablations)
    pool_seeds(points).to_csv(out / "resolution.csv", index=False)
    if points.empty:
        (out / "resolution.png").unlink(missing_ok=True)  # a figure of runs that are gone would mislead
        return [out / "resolution.csv"]
    figure = plots.resolution_plot(points, "Top-1 against test resolution (mean ± std over seeds)")
    return [out / "resolution.csv", _save(figure, out / "resolution.png", dpi=120)]


def write_measured(kind: str, results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """``<kind>.md`` and ``<kind>.csv`` (every stored measurement) for a measured analysis."""
    out = _folder(out_dir)
    frame = store.load(results_dir, kind)
    frame.to_csv(out / f"{kind}.csv", index=False)
    page = markdown.measured_markdown(MEASURED[kind], frame, results_dir, load_runs(results_dir))
    (out / f"{kind}.md").write_text(page)
    return [out / f"{kind}.md", out / f"{kind}.csv"]


def write_all(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Every table and figure into ``out_dir``; returns the files written."""
    written = write_studies(results_dir, out_dir) + write_claims(results_dir, out_dir)
    written += write_resolution(results_dir, out_dir)
    for kind in MEASURED:
        written += write_measured(kind, results_dir, out_dir)
    return written + copy_figures(results_dir, out_dir)


def copy_figures(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """The figures kept with the results (``<results_dir>/figures/*.png``), copied into the tables folder."""
    out = _folder(out_dir)
    return [Path(shutil.copyfile(f, out / f.name)) for f in sorted((Path(results_dir) / FIGURES_DIR).glob("*.png"))]


def write_attention(results_dir: str | Path, out_dir: str | Path, ablations: Sequence[str] = ("learned", "none", "peg"),
                    block: int = 1, images: int = 32) -> list[Path]:
    """The paper's attention figures (``block``'s patch-to-patch attention averaged over heads, and each
    query's row tiled over the grid) of one finished run per ablation: its stored attention, else its checkpoint."""
    maps = attention.maps_from_runs(results_dir, ablations, block=block, images=images)
    print(maps.note())
    if not maps.matrices:
        raise FileNotFoundError(f"no attention to draw: {'; '.join(maps.missing)}")
    counts = " or ".join(str(n) for n in sorted(maps.images))
    out, title = _folder(out_dir), f"block {block}, {counts} test images: {maps.setting}"
    return [_save(attention.plot_matrices(maps.matrices, title), out / "attention_matrices.png", 80),
            _save(attention.plot_query_tiles(maps.matrices, maps.grid, title), out / "attention_query_tiles.png", 80)]
