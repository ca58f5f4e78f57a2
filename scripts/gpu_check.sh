#!/usr/bin/env bash
# One GPU job (a cluster queue's short partition, a spot instance): the fast-path tests, then the bench, within 10
# minutes. What it leaves lies in its output folder $OUT (default outputs/gpu_check): gpu_check.log (everything
# printed) and bench.json (python -m cpvt_lab.bench json=FILE). Study runs in the same kind of time-limited job:
# scripts/gpu_study_slot.sh (docs/study.md).
# Needs, carried beside the checkout: data_local/cifar10-jpeg.tar.gz and wheels/ (make gpu-carry).
# GPU_CHECK_DRY=1 checks the plumbing on any machine in seconds: a one-step bench.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_check && source scripts/gpu_preamble.sh
started=$(date +%s)

if [ -n "${GPU_CHECK_DRY:-}" ]; then
    # the smoke scale's data.subset may exceed a small test archive; no end-to-end run reads the data here
    bench_args=(ablations=[peg] data.batch_size=2 data.subset=null data.test_subset=null steps=1 warmup=1
                end_to_end=false)
else
    bench_args=(ablations=[peg,learned,peg_gap])
    echo "== fast-path tests (the GPU-only ones run here)"
    timeout 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu_path.py tests/test_compile_guard.py \
        tests/test_stacked.py \
        || echo "fast-path tests FAILED or timed out"
fi

echo "== bench"
# rewritten after every measurement, so a bench cut short by the timeout keeps what it measured
timeout 400 "$PYTHON" -m cpvt_lab.bench "${bench_args[@]}" "${data[@]}" "json=$OUT/bench.json" \
    || echo "bench FAILED or timed out"
echo "== done in $(( $(date +%s) - started )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
