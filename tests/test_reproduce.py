"""The CIFAR-10 reproduction: its epoch plan, its use of a bench report, and its scripts' CPU dry path."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cpvt_lab import compose
from cpvt_lab.config import ConfigError
from cpvt_lab.reproduce.budget import epochs_that_fit, make_plan, rates_from_bench
from cpvt_lab.reproduce.command import main

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[1]


def test_epochs_fill_the_budget_share_after_the_overheads_of_each_wave():
    # 540 s x 0.9 = 486 s; 12 runs 2 at a time = 6 waves x 20 s = 120 s; an epoch is 50,000 / 30,000 s
    # plus 0.5 s / 2 at its end: 366 s / (12 x 1.917 s) = 15.9
    assert epochs_that_fit(12, 2, 540, 30_000, 20) == 15
    assert epochs_that_fit(12, 4, 540, 30_000, 20) == 19  # 3 waves: 426 s / (12 x 1.792 s) = 19.8
    assert epochs_that_fit(12, 1, 540, 30_000, 60) == 0  # the overheads alone exceed the budget


def test_the_plan_takes_the_compile_mode_that_buys_more_epochs():
    slow_start_fast_steps = {True: (60_000.0, 60.0, 0.5), False: (30_000.0, 20.0, 0.5)}
    assert make_plan(12, 2, 540, "auto", slow_start_fast_steps, "bench").compile is False  # 6 waves x 60 s
    assert make_plan(12, 12, 540, "auto", slow_start_fast_steps, "bench").compile is True  # one wave
    assert make_plan(12, 2, 540, "true", slow_start_fast_steps, "bench").epochs == epochs_that_fit(12, 2, 540, 6e4, 60)
    assumed = make_plan(12, 2, 540, "auto", None, "")
    assert (assumed.compile, assumed.epochs, assumed.source) == (False, 15, "assumed (no bench report)")
    with pytest.raises(ConfigError, match="compiled"):
        make_plan(12, 2, 540, "true", None, "")


def bench_report(train_size):
    def m(name, ips, warmup, compiled, ablation="peg"):
        return {"name": name, "images_per_second": ips, "warmup_seconds": warmup, "compiled": compiled,
                "ablation": ablation, "checkpoint_seconds": 0.2 if name.startswith("end_to_end") else None}
    return {"settings": {"train_size": train_size},
            "measurements": [m("timm_compiled", 70_000, 50, True, None), m("ours_eager[peg]", 30_000, 2, False),
                             m("ours_step[peg]", 60_000, 42, True), m("end_to_end[peg]", 54_000, 45, True)]}


def test_rates_come_from_the_end_to_end_figure_and_the_eager_step():
    cfg = compose("peg", ["scale=cifar", "data.train_size=32", "data.eval_sizes=[32]"])
    options = rates_from_bench(bench_report(32), cfg)
    rate, overhead, epoch_end = options[True]
    assert rate == 54_000 and epoch_end == 0.2
    assert overhead == pytest.approx(15 + 45 + 10_000 / 3 / 54_000)
    eager_rate, eager_overhead, _ = options[False]
    assert eager_rate == 27_000  # half the compiled rate, as the eager step is half the compiled one
    assert eager_overhead == pytest.approx(15 + 45 - 40 + 10_000 / 3 / 27_000)
    smaller = rates_from_bench(bench_report(32), compose("peg", ["scale=cifar", "data.train_size=24"]))
    assert smaller[True][0] > rate  # fewer tokens per image: more images per second


def test_a_bench_report_without_end_to_end_timing_is_refused():
    report = bench_report(32)
    report["measurements"] = report["measurements"][:3]
    with pytest.raises(ConfigError, match="end-to-end"):
        rates_from_bench(report, compose("peg", ["scale=cifar"]))


@pytest.mark.parametrize("args, message", [
    (["grids=[no_such_grid]"], "table1"),
    (["parallel=0"], "parallel:"),
    (["budget_seconds=30", "grids=extra_params"], "buys no epoch"),
    (["bench=/no/such/bench.json"], "bench:"),
    (["budget_seconds=soon"], "budget_seconds:"),
    (["compile_mode=maybe"], "compile_mode:"),
    (["compile=true"], "compile_mode="),
    (["epochs=0"], "epochs:"),
    (["--dry-run"], "--dry-run:"),
])
def test_bad_input_exits_2_before_anything_runs(args, message, tmp_path, capsys):
    assert main([*args, "dry_run=true", f"output_dir={tmp_path / 'out'}", f"results_dir={tmp_path / 'r'}"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "out" / "plan.json").exists()


def script(name, tmp_path, tiny_archive, *args, **env):
    env = {**os.environ, "ARCHIVE": str(tiny_archive), "RESULTS_DIR": str(tmp_path / "results"),
           "CPVT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", str(REPO / "scripts" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_reproduction_script_dry_run_plans_the_three_grids(tiny_archive, tmp_path):
    out = script("reproduce_cifar10.sh", tmp_path, tiny_archive, "dry_run=true", f"output_dir={tmp_path / 'o'}",
                 BUDGET_SECONDS="600", PARALLEL="3")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "plan: 12 runs x" in out.stdout and "compile=False, 3 at a time" in out.stdout
    record = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert record["plan"]["runs"] == 12 and record["plan"]["epochs"] >= 1
    assert f"data.archive={tiny_archive}" in record["command"]
    assert f"trainer.max_epochs={record['plan']['epochs']}" in record["command"]
    assert {"peg seed=0", "learned_gap seed=0", "conv1x1_stack seed=0"} <= {r.split(" [")[0] for r in record["runs"]}
    assert not (tmp_path / "results").exists()  # nothing trained


@pytest.mark.slow
def test_the_gpu_check_dry_run_leaves_its_files_in_out(tiny_archive, tmp_path):
    out = script("gpu_check.sh", tmp_path, tiny_archive, OUT=str(tmp_path / "OUT"), GPU_CHECK_DRY="1",
                 REPRO_DIR=str(tmp_path / "repro"))
    assert out.returncode == 0, out.stdout[-3000:]
    assert {"gpu_check.log", "bench.json", "plan.json"} <= {p.name for p in (tmp_path / "OUT").iterdir()}
    assert "ours_step[peg]/timm_eager" in (tmp_path / "OUT" / "gpu_check.log").read_text()


@pytest.mark.slow
def test_two_workers_share_a_tiny_grid_and_the_tables_are_written(tiny_archive, tmp_path):
    grid = tmp_path / "tiny.yaml"
    grid.write_text("ablations: [none, peg]\nseeds: [0]\ntrain_size: 24\neval_sizes: [24, 32]\n")
    code = main([f"grids=[{grid}]", "epochs=1", "parallel=2", "batch_size=20",
                 f"results_dir={tmp_path / 'results'}", f"output_dir={tmp_path / 'out'}",
                 f"data.archive={tiny_archive}", f"data.cache_dir={tmp_path / 'cache'}", "data.eval_batch_size=30",
                 "+trainer.limit_train_batches=2"])
    assert code == 0
    record = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert sorted(r["ablation"] for r in record["finished"]) == ["none", "peg"]
    assert record["worker_exit_codes"] == [0, 0]
    assert any((tmp_path / "results" / "tables").iterdir())
