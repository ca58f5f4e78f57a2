"""Write the tables and figures of a results folder into a tables folder: each paper table, and every analysis.

``write_all`` is what ``python -m cpvt_lab.tables`` runs: the paper tables, every computed analysis that the
tables include (``kinds.COMPUTED``) and the page of every measured one (``kinds.MEASURED``), from the folder's
rows read once. ``python -m cpvt_lab.analyze KIND`` rewrites one analysis's files. The paper's attention figures
are drawn from the block maps stored beside the runs while their weights existed (``attention_maps``), once every
run the figures need has one; ``python -m cpvt_lab.analyze attention`` draws them from checkpoints instead.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

from ...paper import REFERENCE_CSV, TABLES, PaperTable
from ...results import Rows
from ..measures import attention, store
from . import markdown, plots
from ..verdicts.claims import judge_questions
from ..folder import ResultsFolder
from ..frames import table_cells, table_runs
from .headlines import headline_cells
from . import longer_training
from ..measures.attention import STORED_KIND
from ..kinds import COMPUTED, MEASURED


def _folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _check_headlines(table: PaperTable) -> None:
    wrong = [k for k in table.measured if k not in MEASURED or MEASURED[k].headline is None]
    if wrong:
        valid = ", ".join(k for k, a in MEASURED.items() if a.headline)
        raise ValueError(f"grid {table.grid}: measured: {', '.join(wrong)}: not a measured analysis with a "
                         f"headline; valid: {valid}")


def write_paper_tables(results: "str | Path | Rows | ResultsFolder", out_dir: str | Path,
                       figures: Sequence[str] = (), shorter: Optional[str | Path] = None) -> list[Path]:
    """The index (``figures``: the attention figures drawn beside it; ``shorter``: the folder of the shorter
    training whose verdicts ``longer_training.md`` checks), the published figures, and each paper table's
    Markdown, CSV and learning curves."""
    out, folder = _folder(out_dir), ResultsFolder(results)
    written = [out / "reference.csv", out / "README.md"]
    shutil.copyfile(REFERENCE_CSV, written[0])
    written[1].write_text(markdown.index_markdown(folder.results_dir, folder.rows.set_aside(), folder.repeated,
                                                  figures, block=MEASURED[STORED_KIND].options["block"],
                                                  shorter=shorter))
    for table in TABLES:
        headlines = questions = None
        if table.measured:  # the headline numbers of its measured analyses, beside its top-1
            _check_headlines(table)
            analyses = [MEASURED[k] for k in table.measured]
            headlines = headline_cells(folder.runs[folder.runs.ablation.isin(table.ablations)],
                                       {a.name: folder.measured(a.name) for a in analyses}, analyses)
            headlines.to_csv(out / f"{table.id}_measured.csv", index=False)
            written.append(out / f"{table.id}_measured.csv")
        if table.compare:  # its own questions, judged as the paper's claims are
            questions = judge_questions(table.compare, folder.runs, folder.predictions)
            questions.to_csv(out / f"{table.id}_questions.csv", index=False)
            written.append(out / f"{table.id}_questions.csv")
        (out / f"{table.id}.md").write_text(markdown.table_markdown(table.id, folder.runs, folder.claims,
                                                                    folder.curves, headlines, questions))
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


def write_all(results: str | Path | Rows, out_dir: str | Path, shorter: Optional[str | Path] = None) -> list[Path]:
    """Every table and figure into ``out_dir`` (``results``: a results folder, or its rows as a command read them;
    ``shorter``: for the runs of a study that trains another's ablations longer, that study's results folder, whose
    verdicts ``longer_training.md`` checks); returns the files written."""
    folder = ResultsFolder(results)
    figures = attention.write_stored(folder, _folder(out_dir), block=MEASURED[STORED_KIND].options["block"])
    written = write_paper_tables(folder, out_dir, [f.name for f in figures], shorter)
    if shorter is not None:
        written += longer_training.write(folder, out_dir, shorter=str(shorter))
    for analysis in COMPUTED.values():
        if analysis.in_tables:
            written += analysis.write(folder, out_dir)
    for kind in MEASURED:
        written += write_measured(kind, folder, out_dir)
    return written + figures
