"""Write the tables and figures of a results folder into a tables folder: each paper table, and every analysis.

``write_all`` is what ``python -m cpvt_lab.tables`` runs: the paper tables, every computed analysis that the
tables include (``kinds.COMPUTED``) and the page of every measured one (``kinds.MEASURED``), from the folder's
rows read once. ``python -m cpvt_lab.analyze KIND`` rewrites one analysis's files. The attention figures need
the runs' weights or their stored maps, so ``write_all`` leaves those figures as they are; figures drawn into
``<results_dir>/figures/`` while the weights existed are results like the rows: ``write_all`` copies them
beside the tables.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..paper import REFERENCE_CSV, TABLES
from ..results import FIGURES_DIR, Rows
from . import markdown, plots, store
from .folder import ResultsFolder
from .frames import table_cells, table_runs
from .kinds import COMPUTED, MEASURED


def _folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_paper_tables(results: "str | Path | Rows | ResultsFolder", out_dir: str | Path) -> list[Path]:
    """The index, the published figures, and each paper table's Markdown, CSV and learning curves."""
    out, folder = _folder(out_dir), ResultsFolder(results)
    written = [out / "reference.csv", out / "README.md"]
    shutil.copyfile(REFERENCE_CSV, written[0])
    written[1].write_text(markdown.index_markdown(folder.results_dir, folder.rows.set_aside(), folder.repeated))
    for table in TABLES:
        (out / f"{table.id}.md").write_text(markdown.table_markdown(table.id, folder.runs, folder.claims,
                                                                    folder.curves))
        table_cells(table.id, folder.runs).to_csv(out / f"{table.id}.csv", index=False)
        written += [out / f"{table.id}.md", out / f"{table.id}.csv"]
        mine = table_runs(table.id, folder.curves)
        if len(mine):  # runs recorded before learning curves existed have none to draw
            grid = plots.curves_plot(mine, f"{table.title}: learning curves")
            written.append(plots.save(grid, out / f"curves_{table.id}.png", dpi=80))
    return written


def write_measured(kind: str, results: "str | Path | Rows | ResultsFolder", out_dir: str | Path) -> list[Path]:
    """``<kind>.md`` and ``<kind>.csv`` (every stored measurement) for a measured analysis."""
    out, folder = _folder(out_dir), ResultsFolder(results)
    frame = store.load(folder.results_dir, kind)
    frame.to_csv(out / f"{kind}.csv", index=False)
    page = markdown.measured_markdown(MEASURED[kind], frame, folder.results_dir, folder.runs)
    (out / f"{kind}.md").write_text(page)
    return [out / f"{kind}.md", out / f"{kind}.csv"]


def write_all(results: str | Path | Rows, out_dir: str | Path) -> list[Path]:
    """Every table and figure into ``out_dir`` (``results``: a results folder, or its rows as a command read them);
    returns the files written."""
    folder = ResultsFolder(results)
    written = write_paper_tables(folder, out_dir)
    for analysis in COMPUTED.values():
        if analysis.in_tables:
            written += analysis.write(folder, out_dir)
    for kind in MEASURED:
        written += write_measured(kind, folder, out_dir)
    return written + copy_figures(folder.results_dir, out_dir)


def copy_figures(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """The figures kept with the results (``<results_dir>/figures/*.png``), copied into the tables folder."""
    out = _folder(out_dir)
    return [Path(shutil.copyfile(f, out / f.name)) for f in sorted((Path(results_dir) / FIGURES_DIR).glob("*.png"))]
