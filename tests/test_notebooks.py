"""Every notebook runs top to bottom, headless, on smoke results made here; they are committed executed on the CPU
study, and their committed outputs are what a fresh execution gives."""
from __future__ import annotations

import importlib.util
import io

import nbformat
import pytest
from nbclient import NotebookClient

from cpvt_lab.grid import run_grid
from cpvt_lab.provenance import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
NAMES = ["table1.ipynb", "table2.ipynb", "table3.ipynb", "ablations.ipynb", "attention_maps.ipynb",
         "equivariance.ipynb", "claims.ipynb"]
# claims.ipynb in the default suite; the others (about 9 s each, most of it a kernel starting) are slow
RUNS = [name if name == "claims.ipynb" else pytest.param(name, marks=pytest.mark.slow) for name in NAMES]


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory, tiny_archive):
    """Three one-step runs (learned, none, peg) trained at 24 px, tested at 24 and 32 px."""
    root = tmp_path_factory.mktemp("notebook_runs")
    grid = root / "grid.yaml"
    grid.write_text("ablations: [learned, none, peg]\nseeds: [0]\ntrain_size: 24\neval_sizes: [24, 32]\n")
    overrides = [f"data.archive={tiny_archive}", f"data.cache_dir={root / 'cache'}", "data.subset=null",
                 "data.test_subset=null", "data.batch_size=20", "trainer.max_epochs=1",
                 "+trainer.limit_train_batches=1", "trainer.enable_progress_bar=false",
                 f"results_dir={root / 'results'}", f"output_dir={root / 'outputs'}"]
    report = run_grid(str(grid), overrides, out=io.StringIO())
    assert len(report.trained) == 3
    return root / "results"


def outputs_of(nb) -> str:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") + str(out.get("data", {}).get("text/markdown", "")))
    return "\n".join(texts)


@pytest.mark.parametrize("name", RUNS)
def test_the_notebook_runs_top_to_bottom_on_smoke_results(name, smoke_results, monkeypatch):
    monkeypatch.setenv("CPVT_RESULTS_DIR", str(smoke_results))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # the kernel imports this checkout, whatever is installed
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = outputs_of(nb)
    warned = [o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not warned, warned  # no warning from tqdm, Lightning or the library: each silenced at its cause
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    if name == "attention_maps.ipynb":
        assert "drawn: learned, none, peg" in text and len(images) == 2
    elif name == "equivariance.ipynb":  # nothing stored: the three runs are measured in the notebook
        assert text.count("measured now 3 runs") == 2 and "Smoke scale" in text and len(images) == 2
    elif name == "claims.ipynb":  # one seed per cell: every verdict inconclusive, no interval to draw
        assert "0 reproduced, 0 contradicted" in text and "inconclusive (n < 3)" in text and len(images) == 1
        assert "nothing to plot" in text
    else:
        assert "Smoke scale" in text and "no runs" in text and images


def make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def sources(nb) -> list[tuple[str, str, str]]:
    return [(cell.id, cell.cell_type, cell.source) for cell in nb.cells]


def test_the_committed_notebooks_are_the_scripts_cells(tmp_path):
    script = make_notebooks()
    script.write(tmp_path)
    assert sorted(script.NOTEBOOKS) == sorted(NAMES)
    for name in NAMES:
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert sources(committed) == sources(nbformat.read(tmp_path / name, as_version=4)), f"regenerate {name}"


def shown(nb) -> list[list[str]]:
    """What a reader sees of each cell's outputs: its text and Markdown as they are, an image only as an image
    (a PNG's bytes change with the matplotlib build), an error or warning as itself."""
    cells = []
    for cell in nb.cells:
        outs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if out.get("output_type") == "stream":
                outs.append(f"{out['name']}: {out['text']}")
            elif out.get("output_type") == "error":
                outs.append(f"error: {out['ename']}: {out['evalue']}")
            elif "image/png" in data:
                outs.append("an image")
            else:
                outs.append(str(data.get("text/markdown", data.get("text/plain", ""))))
        cells.append(outs)
    return cells


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_notebooks_are_executed_without_errors_or_warnings(name):
    cells = shown(nbformat.read(NOTEBOOKS / name, as_version=4))
    outputs = [out for outs in cells for out in outs]
    assert outputs and outputs[0].startswith("stdout: reading ../results/cpu, the committed CPU study")
    assert not [out for out in outputs if out.startswith(("stderr", "error"))]
    if name == "attention_maps.ipynb":
        assert outputs.count("an image") == 2 and "drawn: learned, none, peg" in "".join(outputs)


# the claims notebook in the default suite; the others (seconds to a minute each on 2 cores) are slow
EXECUTED = [name if name == "claims.ipynb" else pytest.param(name, marks=pytest.mark.slow) for name in NAMES]


@pytest.mark.parametrize("name", EXECUTED)
def test_the_committed_outputs_are_what_a_fresh_execution_gives(name):
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    fresh = make_notebooks().execute(NOTEBOOKS / name)
    assert shown(fresh) == shown(committed), f"run python notebooks/make_notebooks.py and commit {name}"
