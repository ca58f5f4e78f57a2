"""The GPU job scripts' plumbing, run in their dry mode (GPU_CHECK_DRY=1: smoke size, on any machine)."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.study.exchange import merge


def run_script(name, tiny_archive, tmp_path, *args, workers=1, stages=None, seconds=None):
    env = {**os.environ, "ARCHIVE": str(tiny_archive), "CPVT_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "OUT"), "GPU_CHECK_DRY": "1", "WORKERS": str(workers),
           **({"STAGES": stages} if stages else {}), **({"TOTAL_SECONDS": str(seconds)} if seconds else {})}
    return subprocess.run(["bash", str(REPO_ROOT / "scripts" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # four of the sweep's settings at smoke size, in a subprocess: 30 s
@pytest.mark.parametrize("workers", [1, 2])
def test_the_recipe_sweep_scores_on_the_validation_split_and_packs_rows_that_merge(tiny_archive, tmp_path, workers):
    done = run_script("gpu_study_slot.sh", tiny_archive, tmp_path, workers=workers, stages="sweep")
    assert done.returncode == 0, done.stdout[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "OUT/sweep_results/runs.jsonl").read_text().splitlines()]
    # four of the sweep's settings: nomix, recipe, light_mix, crop_flip
    assert sorted(r["config"]["optim"]["mixup"] for r in rows) == [0.0, 0.0, 0.2, 0.8]
    assert all(r["curve_split"] == "validation" and r["val_top1"] is not None for r in rows)
    assert "peg_gap (light_mix) seed=0" in done.stdout and "== study stage" not in done.stdout  # only the sweep stage
    merged = merge(tmp_path / "OUT/recipe_sweep.tar.gz", tmp_path / "home")
    assert (merged.rows, merged.already) == (4, 0)
    # every setting has its row: a job with both stages lets the study train (here it has no time left to)
    after = run_script("gpu_study_slot.sh", tiny_archive, tmp_path, stages="sweep,study", seconds=60)
    assert "== study stage skipped: " in after.stdout and "without a row" not in after.stdout, after.stdout[-2000:]


def test_the_study_waits_for_the_recipe_sweep_and_a_stage_without_time_trains_nothing(tiny_archive, tmp_path):
    done = run_script("gpu_study_slot.sh", tiny_archive, tmp_path, stages="sweep,study", seconds=60)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "== recipe_sweep stage skipped: " in done.stdout  # 60 s leave no minute for a run
    assert "== study stage skipped: the recipe sweep has 4 setting(s) without a row" in done.stdout
    assert not (tmp_path / "OUT/sweep_results").exists() and not (tmp_path / "OUT/results").exists()


def preamble(tmp_path, script, cache=None):
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env.update(OUT=str(tmp_path / "OUT"), **({"TORCHINDUCTOR_CACHE_DIR": str(cache)} if cache else {}))
    return subprocess.run(["bash", "-c", f"NAME=t; source scripts/gpu_preamble.sh; {script}"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # two job preambles, each loading torch to print its version
def test_a_job_compiles_into_the_cache_beside_the_checkout_and_packs_it_on_exit(tmp_path):
    said = preamble(tmp_path, 'echo "cache=$TORCHINDUCTOR_CACHE_DIR"')
    assert f"cache={REPO_ROOT / 'compile_cache'}" in said.stdout
    assert not (tmp_path / "OUT/compile_cache.tar.gz").exists()  # nothing compiled, nothing packed
    cache = tmp_path / "scratch_cache"
    compiled = 'mkdir -p "$TORCHINDUCTOR_CACHE_DIR/fxgraph" && echo k > "$TORCHINDUCTOR_CACHE_DIR/fxgraph/a"'
    done = preamble(tmp_path, compiled, cache=cache)
    assert done.returncode == 0 and "compile cache packed" in done.stdout
    with tarfile.open(tmp_path / "OUT/compile_cache.tar.gz") as tar:
        assert "./fxgraph/a" in tar.getnames()


@pytest.mark.slow  # three jobs, two of them running the stacked tests: 40 s
def test_a_stacked_pass_is_stamped_and_a_later_job_with_the_same_stamp_does_not_run_it_again(tiny_archive, tmp_path):
    env = {**os.environ, "ARCHIVE": str(tiny_archive), "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "OUT"),
           "GPU_CHECK_DRY": "1", "STAGES": "stacked", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}

    def job():
        done = subprocess.run(["bash", str(REPO_ROOT / "scripts/gpu_study_slot.sh")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:]
        return done.stdout

    assert "against their separate runs" in job()
    stamp = (tmp_path / "cache/stacked_verified.txt").read_text()
    assert stamp.startswith("no GPU; torch ") and "; code " in stamp
    assert "passed by an earlier job" in job()
    (tmp_path / "cache/stacked_verified.txt").write_text(stamp.replace("; code ", "; code 0"))  # other code
    assert "against their separate runs" in job()
