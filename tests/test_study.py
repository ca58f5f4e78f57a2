"""The study command: its plan is the paper's grid in the order of priority, it refuses to change which runs
they are, and one call trains whole runs, measures them, draws the attention figures and writes the tables."""
from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cpvt_lab.ablations import load_grid, load_study, names
from cpvt_lab.paper import attention_ablations
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.results import Rows, append_row, finished_rows, read_rows
from cpvt_lab.study.command import main
from cpvt_lab.study.exchange import merge, pack
from cpvt_lab.study.plan import plan_study
from cpvt_lab.study.standing import standing


@functools.lru_cache(maxsize=None)
def planned_study(name):
    """A study and its plan, composed once per test session (69 runs take seconds to compose)."""
    study = load_study(name)
    return study, plan_study(study)


@pytest.fixture(scope="module")
def cifar():
    return planned_study("cifar")


def test_the_cifar_study_is_the_paper_grid_with_three_seeds(cifar):
    study, planned = cifar
    paper = {(a, seed) for grid in load_grid("paper") for a in grid.ablations for seed in (0, 1, 2)}
    assert study.seeds == (0, 1, 2) and {(r.ablation, r.seed) for r in planned} == paper
    # the grids share their sizes, so a run_id is the same whichever of them planned it (test_grid holds that)
    assert len(planned) == len({r.run_id for r in planned}) == len(paper)


def test_the_cifar_study_trains_the_attention_runs_then_table3_and_extra_params_first(cifar):
    _, planned = cifar
    figures = attention_ablations()
    assert [(r.ablation, r.seed) for r in planned[:len(figures)]] == [(a, 0) for a in figures]
    first = [i for i, r in enumerate(planned) if {"table3", "extra_params"} & set(r.grids)]
    assert first == list(range(len(first)))  # every run of the two first studies before any other run


@pytest.mark.parametrize("name, label", [("cpu", "The CPU study"), ("cpu16", "At four times the epochs (study `cpu16`)"),
                                         ("cifar", "The CIFAR-10 study, its scale-up")])
def test_the_readme_says_how_many_runs_of_each_study_are_in(name, label):
    study, planned = planned_study(name)
    counted = re.search(rf"\*\*{re.escape(label)}: (\d+) of (\d+) runs\*\*", (REPO_ROOT / "README.md").read_text())
    assert counted, f"README: 'Where the study stands' gives '**{label}: N of M runs**'"
    # the runs in, not the planned total: a new encoding in a paper grid adds runs without a README edit
    assert int(counted[1]) == len(standing(study, planned, Rows(study.results_dir)).rows)


def test_the_readme_gives_the_cpu_studys_verdicts_as_its_claims_page_does():
    page = (REPO_ROOT / load_study("cpu").tables_dir / "claims.md").read_text()
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    holm = re.search(r"Totals under Holm [^:]*: (\d+) reproduced, (\d+) contradicted, (\d+) inconclusive", page)
    raw = re.search(r"Totals with each claim judged alone at 95%: (\d+) reproduced, (\d+) contradicted, "
                    r"(\d+) inconclusive", page)
    said = re.search(r"\*\*(\d+) reproduced, (\d+) contradicted, (\d+) inconclusive\*\*; each judged alone at 95%, "
                     r"(\d+), (\d+) and (\d+)", readme)
    assert holm and raw and said and said.groups() == holm.groups() + raw.groups()


def test_the_readme_names_the_cpu_studys_decided_claims_as_its_claims_page_does():
    decided = ("- **reproduced:**", "- **contradicted:**", "- decided at 95% alone")
    page = (REPO_ROOT / load_study("cpu").tables_dir / "claims.md").read_text().splitlines()
    readme = (REPO_ROOT / "README.md").read_text().splitlines()
    assert [line for line in readme if line.startswith(decided)] == [line for line in page if line.startswith(decided)]


def write_study(tmp_path, overrides, grids=("attention",)):
    path = tmp_path / "tiny_study.yaml"
    path.write_text(yaml.safe_dump({
        "grids": list(grids), "seeds": [0], "overrides": [o for o in overrides if not o.startswith("results_dir")],
        "runtime": [], "results_dir": str(tmp_path / "study"), "tables_dir": str(tmp_path / "tables"),
        "analysis_images": 20}))
    return path


def test_one_call_trains_whole_runs_in_order_and_the_next_goes_on(fast_overrides, tmp_path, monkeypatch, capsys):
    """Calls on machines that keep nothing: each packs its folder after every run, the weights are gone by the
    next call, and the attention figures come from the maps stored beside each run when it finished."""
    study, packed = write_study(tmp_path, fast_overrides), tmp_path / "slot1.tar.gz"
    first, *rest = figures = attention_ablations()
    assert main(["continue", f"study={study}", "budget_seconds=0.001", f"pack={packed}"]) == 0  # the first starts
    out = capsys.readouterr().out
    assert [r["ablation"] for r in finished_rows(tmp_path / "study")] == [first]
    assert f"1 of {len(figures)} runs in" in out
    assert f"next, in order ({len(rest)} left): " + ", ".join(f"{a} seed 0" for a in rest) in out
    assert (tmp_path / "study/analysis/probe").is_dir()
    assert not (tmp_path / "tables/attention_matrices.png").exists()  # drawn once every run they need is measured
    with tarfile.open(packed) as tar:
        names = tar.getnames()
    assert "runs.jsonl" in names and any(n.startswith("analysis/attention_maps/") for n in names)
    shutil.rmtree(tmp_path / "outputs")  # the next call runs where the first run's weights are not

    assert main(["continue", f"study={study}"]) == 0
    out = capsys.readouterr().out
    rows = finished_rows(tmp_path / "study")
    assert [r["ablation"] for r in rows] == list(figures)
    for kind in ("equivariance", "probe", "attention_maps"):  # every run measured once, while its weights were here
        assert sorted(p.stem for p in (tmp_path / "study/analysis" / kind).glob("*.csv")) == sorted(
            r["run_id"] for r in rows)
    for name in ("attention_matrices.png", "attention_query_tiles.png"):  # beside the tables, from the stored maps
        assert (tmp_path / "tables" / name).is_file() and f"[{name}]({name})" in (tmp_path / "tables/README.md"
                                                                                   ).read_text()
    assert not (tmp_path / "study/figures").exists()  # nothing drawn twice
    assert any("## scale=smoke" in page.read_text() for page in (tmp_path / "tables").glob("table*.md"))
    assert f"{len(figures)} of {len(figures)} runs in" in out and "every planned run is in" in out

    import cpvt_lab.results as results
    reads, read_checked = [], results.read_checked
    monkeypatch.setattr(results, "read_checked", lambda *a, **k: (reads.append(a), read_checked(*a, **k))[1])
    assert main(["continue", f"study={study}"]) == 0
    assert f"trained 0, already done {len(figures)}" in capsys.readouterr().out
    assert len(reads) == 1  # the rows read once by the command and passed down: plan, measure, tables, status
    assert len(finished_rows(tmp_path / "study")) == len(figures)


def test_a_call_killed_after_one_run_has_packed_that_run(fast_overrides, tmp_path, monkeypatch, capsys):
    import cpvt_lab.train as train

    calls, real = [], train.run_experiment

    def killed_on_the_second(cfg, **kwargs):
        calls.append(cfg.ablation_name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the slot's time limit
        return real(cfg, **kwargs)

    monkeypatch.setattr(train, "run_experiment", killed_on_the_second)
    study, packed = write_study(tmp_path, fast_overrides), tmp_path / "slot.tar.gz"
    with pytest.raises(KeyboardInterrupt):
        main(["continue", f"study={study}", f"pack={packed}"])
    home = tmp_path / "home"
    merged = merge(packed, home)
    assert merged.rows == 1 and [r["ablation"] for r in finished_rows(home)] == list(attention_ablations()[:1])
    assert {"analysis/attention_maps", "analysis/probe", "analysis/equivariance"} <= {
        str(Path(f).parent) for f in merged.files}


def test_a_call_killed_while_measuring_has_packed_the_run(fast_overrides, tmp_path, monkeypatch):
    import cpvt_lab.study.advance as advance

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the slot's time limit, while the first run is measured

    monkeypatch.setattr(advance, "measure_run", killed)
    study, packed = write_study(tmp_path, fast_overrides), tmp_path / "slot.tar.gz"
    with pytest.raises(KeyboardInterrupt):
        main(["continue", f"study={study}", f"pack={packed}"])
    assert merge(packed, tmp_path / "home").rows == 1


def test_merge_adds_rows_and_files_and_replaces_nothing(tmp_path):
    """Rows made as runs make them (planned configs, so their run_ids check); test_merge_faults tries the faults."""
    from omegaconf import OmegaConf

    from cpvt_lab.study.plan import plan_grid

    runs = {r.ablation: r for r in plan_grid("attention", ["scale=smoke"], seeds=[0], check=False)}

    def row(ablation, status="ok", finished_at="2026-01-01T00:00:00+00:00", top1=20.0):
        run = runs[ablation]
        return {"run_id": run.run_id, "status": status, "finished_at": finished_at, "ablation": ablation, "seed": 0,
                "train_size": 24, "top1": {"24": top1}, "config": OmegaConf.to_container(run.cfg, resolve=True)}

    home, slot = tmp_path / "home", tmp_path / "slot"
    append_row(home, row("learned"))
    (home / "analysis/probe").mkdir(parents=True)
    (home / "analysis/probe/a.csv").write_text("home")
    for each in (row("learned"), row("none"), row("peg", status="failed")):
        append_row(slot, each)
    (slot / "analysis/probe").mkdir(parents=True)
    (slot / "analysis/probe/a.csv").write_text("slot")
    (slot / "analysis/probe/b.csv").write_text("slot")
    packed = pack(slot, tmp_path / "slot.tar.gz")

    merged = merge(packed, home)
    assert (merged.rows, merged.already) == (2, 1)
    assert [(r["ablation"], r["status"]) for r in read_rows(home, status=None)] == [
        ("learned", "ok"), ("none", "ok"), ("peg", "failed")]
    assert (home / "analysis/probe/a.csv").read_text() == "home" and merged.kept == ["analysis/probe/a.csv"]
    assert (home / "analysis/probe/b.csv").is_file()
    again = merge(packed, home)
    assert (again.rows, again.files) == (0, []) and len(read_rows(home, status=None)) == 3


def test_an_override_that_changes_the_runs_is_refused_and_a_runtime_one_is_not(fast_overrides, tmp_path, capsys):
    study = write_study(tmp_path, fast_overrides)
    assert main(["status", f"study={study}", "optim.lr=0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: optim.lr=0.1: changes which runs these are") and err.count("\n") == 1
    assert main(["status", f"study={study}", "+trainer.max_steps=3"]) == 2
    assert "error: +trainer.max_steps=3: changes which runs these are" in capsys.readouterr().err
    assert main(["status", f"study={study}", "compile=false"]) == 0
    assert f"0 of {len(attention_ablations())} runs in" in capsys.readouterr().out and not (tmp_path / "study").exists()


@pytest.mark.parametrize("args, message", [
    (["status", "study=no_such"], f"error: study: unknown study 'no_such'; valid: {', '.join(names('study'))}"),
    (["rerun"], "error: rerun: unknown action; valid: status, continue, merge"),
    (["continue", "budget_seconds=-1"], "error: budget_seconds: must be >= 0"),
    (["merge"], "error: from: merge needs from=FILE"),
    (["merge", "from=no/such.tar.gz"], "error: from: merge needs from=FILE"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_a_broken_study_file_is_refused(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("grids: [table3]\nseeds: [0]\n")
    assert main([f"study={path}"]) == 2
    assert "must hold the keys" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_where_the_study_stands_needs_no_data_on_a_fresh_checkout(cifar, tmp_path):
    """A plan is composition and run_ids: the status reads the committed rows and plans every run without the
    archive ($CPVT_CIFAR10_JPEG pointing nowhere, and no ../shared beside the checkout)."""
    checkout = tmp_path / "checkout"
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO_ROOT, capture_output=True)
    if archive.returncode != 0:
        pytest.skip("not a git checkout")
    checkout.mkdir()
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(checkout, filter="data")
    env = {**os.environ, "CPVT_CIFAR10_JPEG": str(tmp_path / "nowhere.tar.gz"), "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-m", "cpvt_lab.study"], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:-1]}  # every study, one line each
    assert sorted(lines) == sorted(names("study"))
    assert f" of {len(cifar[1])} " in lines["cifar"] and "runs in results/cifar/" in lines["cifar"]
    assert "continue one: python -m cpvt_lab.study continue study=NAME" in done.stdout


def test_continue_without_the_data_is_refused_before_any_run(fast_overrides, tmp_path, capsys):
    study = write_study(tmp_path, fast_overrides)
    assert main(["continue", f"study={study}", f"data.archive={tmp_path / 'nowhere.tar.gz'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.archive: CIFAR-10 JPEG archive not found") and err.count("\n") == 1
    assert not (tmp_path / "study").exists() and not (tmp_path / "outputs").exists()


def test_the_readme_quotes_the_rope_tables_questions_as_that_table_answers_them():
    """Every A-B [interval] on the README's RoPE line is one of the questions of the committed RoPE table."""
    line = next(x for x in (REPO_ROOT / "README.md").read_text().splitlines()
                if x.startswith("- **beyond the paper, RoPE**"))
    questions = pd.read_csv(REPO_ROOT / load_study("cpu").tables_dir / "beyond_rope_questions.csv")
    answered = {f"{r.diff:+.2f} [{r.diff_low:+.2f}, {r.diff_high:+.2f}]" for r in questions.itertuples()}
    quoted = re.findall(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", line)
    assert quoted and set(quoted) <= answered, set(quoted) - answered
