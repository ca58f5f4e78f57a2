"""The analyses run on smoke results from the command line, and regenerate with the paper's tables."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import torch

from cpvt_lab import analyze, compose, paper, tables
from cpvt_lab.analysis.measures import runs, store
from cpvt_lab.results import append_row
from cpvt_lab.train import run_experiment


@pytest.fixture(scope="module")
def smoke_results(module_fast_overrides):
    """Two seeds of ``peg``, trained one step, evaluated at 32 and 48 px: their results folder and rows."""
    rows = [run_experiment(compose("peg", module_fast_overrides + [f"seed={s}"])) for s in (0, 1)]
    return rows[0]["config"]["results_dir"], rows


def test_load_run_model_restores_the_trained_weights(smoke_results):
    _, rows = smoke_results
    model = runs.load_run_model(rows[1])
    saved = torch.load(rows[1]["checkpoint"], weights_only=False)["state_dict"]
    peg = "pos_encoding.generators.0.fn.weight"
    assert torch.equal(model.state_dict()[peg], saved[f"model.{peg}"]) and not model.training
    images, labels = runs.test_images(rows[1], limit=20)
    assert images.shape == (20, 3, 32, 32) and labels.bincount().tolist() == [2] * 10


def test_every_analysis_runs_on_smoke_results_and_the_tables_regenerate_them(smoke_results, tmp_path):
    results_dir, rows = smoke_results
    out = tmp_path / "paper_tables"
    common = [f"results_dir={results_dir}", f"tables_dir={out}", "images=8"]
    assert analyze.main(["equivariance", *common, "shifts=[2,4]"]) == 0
    assert analyze.main(["probe", *common, f"run_id={rows[0]['run_id']}", "blocks=[0,11]"]) == 0
    assert analyze.main(["resolution", f"results_dir={results_dir}", f"tables_dir={out}"]) == 0
    assert analyze.main(["claims", f"results_dir={results_dir}", f"tables_dir={out}"]) == 0

    equi = store.load(results_dir, "equivariance")
    assert set(equi.run_id) == {r["run_id"] for r in rows} and set(equi["shift"]) == {0, 2, 4}
    assert set(equi.dataset) == {"CIFAR-10, JPEG copy"} and equi.command.str.len().min() > 0
    probe = store.load(results_dir, "probe")
    assert set(probe.run_id) == {rows[0]["run_id"]} and set(probe.block) == {0, 11}
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims.claim) == {c.id for c in paper.CLAIMS}
    judged = claims.set_index("claim").loc["t1_peg_gains_larger"]  # peg at 48 px vs peg at 32 px
    assert (judged.a_n, judged.b_n, judged.paired) == (2, 2, True)
    assert judged.verdict in ("reproduced", "contradicted", "inconclusive")
    assert judged.diff_low <= judged["diff"] <= judged.diff_high
    assert (out / "resolution.png").stat().st_size > 0
    assert "Smoke scale" in (out / "equivariance.md").read_text()

    # the one command for every table writes the same files from the same results
    again = tmp_path / "again"
    assert tables.main([f"results={results_dir}", f"out={again}"]) == 0
    for name in ("claims.md", "claims.csv", "equivariance.md", "probe.md", "resolution.csv", "resolution.png"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.parametrize("argv, message", [
    (["nonsense"], "first argument must be one of"),
    (["probe", "colour=red"], "unknown key(s) ['colour']"),
    (["probe", "images"], "expected KEY=VALUE"),
    (["equivariance", "fill=mirror"], "fill: must be one of"),
    (["probe", "run_id=abc", "ablations=[peg]"], "not both"),
    (["probe", "images=1"], "images: must be an integer >= 2"),
    (["probe", "seed=-1"], "seed: must be an integer"),
    (["equivariance", "shifts=4"], "shifts: must be a non-empty list"),
])
def test_bad_arguments_exit_2_with_a_specific_message_and_write_nothing(argv, message, tmp_path, capsys):
    assert analyze.main([*argv, f"results_dir={tmp_path}", f"tables_dir={tmp_path / 'out'}"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_runs_and_bad_geometry_are_refused_before_any_measurement(smoke_results, tmp_path, capsys):
    results_dir, rows = smoke_results
    out = tmp_path / "out"
    assert analyze.main(["probe", "ablations=[peg,peg_circular]", f"results_dir={results_dir}", f"tables_dir={out}"]) == 2
    assert "no finished run of ['peg_circular']" in capsys.readouterr().err
    assert analyze.main(["probe", "blocks=[12]", f"results_dir={results_dir}", f"tables_dir={out}"]) == 2
    assert "blocks: must lie in 0 .. 11" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_the_module_runs_as_a_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cpvt_lab.analyze", "probe", "run_id=000000000000",
                           f"results_dir={tmp_path}", f"tables_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "run_id=000000000000 has no finished run" in done.stderr


def peg_row() -> dict:
    """A finished row as a run writes it, made without training: its config, and the run_id that config gives."""
    from omegaconf import OmegaConf

    from cpvt_lab.fingerprint import run_id

    cfg = compose("peg", ["scale=smoke", "data.train_size=24"])
    return {"run_id": run_id(cfg), "ablation": "peg", "seed": 0, "scale": "smoke", "dataset": "d", "epochs": 1,
            "train_size": 24, "model_size": "smoke", "config": OmegaConf.to_container(cfg, resolve=True)}


def test_a_measured_analysis_is_known_by_its_declaration_alone(monkeypatch, tmp_path):
    """A new measured analysis is its module's ANALYSIS and a line in kinds.py: the tables then write its page."""
    from cpvt_lab.analysis.pages import report
    from cpvt_lab.analysis.kinds import MEASURED
    from cpvt_lab.analysis.measured import MeasuredAnalysis

    fake = MeasuredAnalysis("fake", "a made-up measure", {}, lambda model, images, labels, seed=0: None,
                            "A made-up measure", "Made up.", ("size",), lambda group: ["rows: " + str(len(group)), ""])
    monkeypatch.setitem(MEASURED, "fake", fake)
    row = peg_row()
    append_row(tmp_path, {**row, "status": "ok", "top1": {"24": 50.0}})  # measurements are of finished runs
    store.save(tmp_path, "fake", store.annotate(row, pd.DataFrame({"value": [1.0, 2.0]}), size=24))
    [page, _] = report.write_measured("fake", tmp_path, tmp_path / "out")
    text = page.read_text()
    assert text.startswith("# A made-up measure") and "rows: 2" in text and "analyze fake" in text


def test_a_computed_analysis_is_known_by_its_declaration_alone(monkeypatch, tmp_path, capsys):
    """A new analysis computed from the rows is its module's ANALYSIS and a line in kinds.py: the command takes its
    keys, and the tables write its files from the rows they read."""
    from cpvt_lab.analysis.kinds import COMPUTED
    from cpvt_lab.analysis.measured import ComputedAnalysis

    def write(folder, out_dir, word="hello"):
        path = tmp_path / out_dir / "count.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{word} {folder.runs.run_id.nunique()}")
        return [path]

    monkeypatch.setitem(COMPUTED, "count", ComputedAnalysis("count", "runs counted", {"word": "hello"}, write))
    monkeypatch.setitem(analyze.ANALYSES, "count", {**analyze.FOLDERS, "word": "hello"})
    append_row(tmp_path, {**peg_row(), "status": "ok", "top1": {"24": 50.0}})
    assert analyze.main(["count", f"results_dir={tmp_path}", "tables_dir=a", "word=runs"]) == 0
    assert (tmp_path / "a" / "count.txt").read_text() == "runs 1"
    assert tables.main([f"results_dir={tmp_path}", f"tables_dir={tmp_path / 'b'}"]) == 0
    assert (tmp_path / "b" / "count.txt").read_text() == "hello 1"
