"""Writes the notebooks of this folder and executes them: ``python notebooks/make_notebooks.py``.

The notebooks only call the library (``cpvt_lab.paper``, ``cpvt_lab.analysis``). Each says first which results
folder it reads (``cpvt_lab.analysis.notebook_results``): $CPVT_RESULTS_DIR when set, else your own runs in
``../outputs/results`` once one has finished, else the committed CPU study in ``../results/cpu``. They are
committed executed on the CPU study, so a reader sees its tables, claims and attention maps without running
anything; ``--no-execute`` writes them without outputs. The executions run in a folder that holds only
``notebooks/`` and ``results/cpu``, so that runs of your own in ``outputs/`` never reach the committed outputs.
Needs the ``notebooks`` extra: ``pip install -e '.[notebooks]'``.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
TIMEOUT = 900  # seconds a cell may take (the equivariance notebook measures runs when none are stored)

SETUP = """\
from IPython.display import Markdown, display

from cpvt_lab.analysis import frames
from cpvt_lab.analysis.pages import markdown, plots
from cpvt_lab.analysis.verdicts.claims import judge_claims
from cpvt_lab.analysis.verdicts.test_set_term import StoredPredictions
from cpvt_lab.analysis.notebook_results import results_folder
from cpvt_lab.paper import TABLE_BY_ID

RESULTS = results_folder()
runs = frames.load_runs(RESULTS)
curves = frames.load_curves(RESULTS)
claims = judge_claims(runs, stored=StoredPredictions(RESULTS, runs.run_id))
print(f"{runs.run_id.nunique()} finished runs in {RESULTS}")"""

ATTENTION_SETUP = """\
from cpvt_lab.analysis.measures import attention
from cpvt_lab.analysis.notebook_results import results_folder

RESULTS = results_folder()
maps = attention.maps_from_runs(RESULTS, ["learned", "none", "peg"], block=1)
print(maps.note())"""

MEASURE_SETUP = """\
from IPython.display import Markdown, display

from cpvt_lab.analysis.kinds import MEASURED
from cpvt_lab.analysis.measures import measure
from cpvt_lab.analysis.notebook_results import results_folder
from cpvt_lab.analysis.pages import markdown, plots

RESULTS = results_folder()
ABLATIONS = ["none", "none_gap", "learned", "peg", "peg_gap", "peg_circular", "peg_nopad"]"""


def table_cells(table_id: str, plot: str) -> list:
    return [
        new_code_cell(f'display(Markdown(markdown.table_markdown("{table_id}", runs, claims, curves)))'),
        new_code_cell(f'plots.{plot}(frames.table_runs("{table_id}", runs), TABLE_BY_ID["{table_id}"].title);'),
    ]


def notebook(title: str, intro: str, cells: list, setup: str = SETUP) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(f"# {title}\n\n{intro}"), new_code_cell(setup), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


NOTEBOOKS = {
    "table1.ipynb": notebook(
        "Position-encoding strategies (paper Table 1)",
        "No encoding, learned table, sin-cos, 2-D relative bias and PEG, at the training resolution and at "
        "larger ones without fine-tuning. Runs: `python -m cpvt_lab.grid table1`.",
        table_cells("table1_pe_strategies", "resolution_plot")),
    "table2.ipynb": notebook(
        "Direct evaluation at other resolutions (paper Table 2)",
        "The learned table interpolated (and, for `interpolated`, fine-tuned) at each test size against PEGs. "
        "Runs: `python -m cpvt_lab.grid table2`.",
        table_cells("table2_resolution", "resolution_plot")),
    "table3.ipynb": notebook(
        "Class token vs global average pooling (paper Table 3)",
        "DeiT and CPVT, each with a class token or GAP. Runs: `python -m cpvt_lab.grid table3`.",
        table_cells("table3_cls_vs_gap", "train_size_bars")),
    "ablations.ipynb": notebook(
        "PEG position, and position information or extra parameters",
        "Runs: `python -m cpvt_lab.grid peg_position` and `python -m cpvt_lab.grid extra_params`.",
        table_cells("peg_position", "train_size_bars") + table_cells("extra_params", "train_size_bars")),
    "attention_maps.ipynb": notebook(
        "Attention maps of block 1 (counted from 0: the second block): learned table, no encoding, PEG",
        "The paper's two figures from the checkpoints of finished runs: the N x N patch-to-patch attention of "
        "the second block averaged over heads (class token excluded), and each query patch's attention over "
        "the grid, tiled by query position. Runs: `python -m cpvt_lab.grid table1` (checkpoints stay in "
        "`outputs/`, which git does not keep).",
        [new_code_cell("""\
if maps.matrices:
    attention.plot_matrices(maps.matrices, f"{attention.block_name(1)}, patch-to-patch attention\\n{maps.setting}")
else:
    print("no checkpoints to draw from; see above for the runs to make")"""),
         new_code_cell("""\
if maps.matrices:
    attention.plot_query_tiles(maps.matrices, maps.grid, f"{attention.block_name(1)}, each query's attention over "
                               "the grid, tiled by query")"""),
         ], setup=ATTENTION_SETUP),
    "equivariance.ipynb": notebook(
        "Beyond the paper: translation equivariance and absolute position, measured",
        "What CPVT argues, measured on trained checkpoints: (1) shift the test images by s px and count unchanged "
        "predictions, and the relative error between the features of the shifted image and the shifted "
        "features after each block; (2) a linear probe for each token's absolute position. Stored measurements "
        "come from `python -m cpvt_lab.analyze equivariance` and `python -m cpvt_lab.analyze probe`; without "
        "them, the finished runs are measured here on a few images.",
        [new_code_cell('shifts = measure.stored_or_measured("equivariance", RESULTS, ABLATIONS)\n'
                       'display(Markdown(markdown.measured_markdown(MEASURED[\"equivariance\"], shifts, RESULTS)))'),
         new_code_cell("plots.equivariance_plot(shifts, ABLATIONS);"),
         new_code_cell('positions = measure.stored_or_measured("probe", RESULTS, ABLATIONS)\n'
                       'display(Markdown(markdown.measured_markdown(MEASURED[\"probe\"], positions, RESULTS)))'),
         new_code_cell("plots.probe_plot(positions, ABLATIONS);")], setup=MEASURE_SETUP),
    "claims.ipynb": notebook(
        "Beyond the paper: every claim with an interval and a verdict",
        "Each claim of the paper, judged on our seeds: A - B with its 95% interval (paired by seed where the cells "
        "share seeds), p raw and under Holm, and reproduced / contradicted / inconclusive, each claim alone and "
        "under Holm (rules in `cpvt_lab/analysis/verdicts/stats.py`, `docs/analyses.md`). Then top-1 "
        "against test resolution for each encoding. `python -m cpvt_lab.tables` writes the same table to "
        "`claims.md` (`paper_tables/cpu/claims.md` for the committed CPU study).",
        [new_code_cell("display(Markdown(markdown.claims_markdown(claims, RESULTS)))"),
         new_code_cell("plots.claims_plot(claims);"),
         new_code_cell('plots.resolution_plot(resolution.curve(runs), "Top-1 against test resolution");')],
        setup=SETUP.replace("analysis import frames", "analysis import frames, resolution")),
}


def write(folder: Path) -> list[Path]:
    """The notebooks, without outputs, into ``folder``."""
    paths = []
    for name, nb in NOTEBOOKS.items():
        for i, cell in enumerate(nb.cells):  # stable ids, so regenerating changes nothing
            cell.id = f"{Path(name).stem}-{i}"
        nbformat.write(nb, folder / name)
        paths.append(folder / name)
    return paths


def execute(path: Path, results: Path = HERE.parent / "results" / "cpu") -> nbformat.NotebookNode:
    """The notebook at ``path`` executed as a fresh clone would run it on the committed ``results`` (the CPU study),
    in a folder holding only ``notebooks/`` and ``results/cpu``; its kernel imports this checkout's package."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "results").mkdir()
        os.symlink(results.resolve(), Path(tmp) / "results" / "cpu")
        (Path(tmp) / "notebooks").mkdir()
        env = {k: v for k, v in os.environ.items() if k != "CPVT_RESULTS_DIR"}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), *filter(None, [env.get("PYTHONPATH")])])
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)  # the kernel inherits this process's environment
        try:
            NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": str(Path(tmp) / "notebooks")}}).execute()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return nb


def main(argv: list[str]) -> None:
    for path in write(HERE):
        if "--no-execute" not in argv:
            nbformat.write(execute(path), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
