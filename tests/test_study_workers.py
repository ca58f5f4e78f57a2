"""Workers of one study on one machine (a GPU job's WORKERS=N): every run trained once, by one of them, and each
run's row what a lone worker makes of it."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from cpvt_lab.results import finished_rows, read_rows

SEEDS = [0, 1]


def write_study(folder, fast_overrides, results):
    path = folder / "workers_study.yaml"
    path.write_text(yaml.safe_dump({
        "grids": ["attention"], "seeds": SEEDS, "runtime": [], "analysis_images": 20,
        "overrides": [o for o in fast_overrides if not o.startswith(("results_dir", "output_dir"))],
        "results_dir": str(results), "tables_dir": str(folder / "tables")}))
    return path


def measured_ids(results, kind):
    return sorted(p.stem for p in (results / "analysis" / kind).glob("*.csv"))


def continue_study(study, *words):
    return subprocess.Popen([sys.executable, "-m", "cpvt_lab.study", "continue", f"study={study}", *words],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(processes):
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), "\n".join(log[-2000:] for log in logs)
    return logs


@pytest.mark.slow  # three processes of six runs each: half a minute a case
@pytest.mark.parametrize("stack", ["off", "on"])
def test_two_workers_train_every_run_once_and_as_a_lone_worker_does(fast_overrides, tmp_path, stack):
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    study = write_study(tmp_path, fast_overrides, alone)
    finish([continue_study(study, f"stack={stack}", f"output_dir={tmp_path / 'out_alone'}")])
    logs = finish([continue_study(study, f"stack={stack}", f"results_dir={shared}", f"tables_dir={tmp_path / f't{i}'}",
                                  f"output_dir={tmp_path / 'out'}") for i in (1, 2)])  # started together
    rows, reference = read_rows(shared), {r["run_id"]: r for r in finished_rows(alone)}
    assert len(reference) == 3 * len(SEEDS)
    assert sorted(r["run_id"] for r in rows) == sorted(reference)  # one row a run: none twice, none failed
    assert sum(int(re.search(r"; trained (\d+),", log).group(1)) for log in logs) == len(reference)
    for row in rows:
        assert row["status"] == "ok" and row["top1"] == reference[row["run_id"]]["top1"]
        assert row["curve"] == reference[row["run_id"]]["curve"]
    for kind in ("probe", "attention_maps"):  # each run measured, by one worker
        assert measured_ids(shared, kind) == measured_ids(alone, kind) == sorted(reference)
