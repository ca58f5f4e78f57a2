#!/usr/bin/env bash
# One 10-minute call on a GPU machine: the fast-path tests, the bench, then the CIFAR-10 reproduction in
# the time left, all within TOTAL_SECONDS (default 540, for a 600 s call). What comes back lies in $OUT:
#   gpu_check.log  everything printed        bench.json   python -m cpvt_lab.bench json=FILE
#   runs.jsonl     the reproduction's rows   plan.json    its plan, wall time and finished runs
#   workers.log    the grid workers' logs    tables.tar.gz  the regenerated tables
# Needs, carried beside the checkout: data_local/cifar10-jpeg.tar.gz and wheels/ (make gpu-carry).
# GPU_CHECK_DRY=1 checks the plumbing on any machine in seconds: a one-step bench, the plan only.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
source scripts/offline_env.sh
TOTAL=${TOTAL_SECONDS:-540}
# one worker: on one H100, 4 processes trained at half the rate of one (37,000 vs ~71,000 images/s:
# a one-off measurement outside this repository, not committed)
PARALLEL=${PARALLEL:-1}
RESULTS_DIR=${RESULTS_DIR:-results/cifar_gpu}
ARCHIVE=${ARCHIVE:-data_local/cifar10-jpeg.tar.gz}
REPRO_DIR=${REPRO_DIR:-outputs/cifar_gpu}
started=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - started) )); }

nvidia-smi -L || true
"$PYTHON" -c "import torch, timm, pytorch_lightning as pl; print('torch', torch.__version__, 'timm', timm.__version__, 'lightning', pl.__version__)"

if [ -n "${GPU_CHECK_DRY:-}" ]; then
    # the smoke scale's data.subset may exceed a small test archive; no end-to-end run reads the data here
    bench_args=(ablation=peg data.batch_size=2 data.subset=null data.test_subset=null steps=1 warmup=1 end_to_end=false)
    reproduce_args=(dry_run=true)
    bench_json=""  # a one-step bench without end-to-end timing is nothing to plan from
else
    bench_args=(ablation=peg,learned,peg_gap)
    reproduce_args=()
    bench_json="$OUT/bench.json"
    echo "== fast-path tests (the GPU-only ones run here)"
    timeout 90 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu_path.py tests/test_compile_guard.py || echo "fast-path tests FAILED or timed out"
fi

if [ -f "$ARCHIVE" ]; then bench_args+=("data.archive=$ARCHIVE"); fi
echo "== bench ($(left) s left)"
# rewritten after every measurement, so a bench cut short by the timeout keeps what it measured
timeout 200 "$PYTHON" -m cpvt_lab.bench "${bench_args[@]}" "json=$OUT/bench.json" \
    || echo "bench FAILED or timed out"
if ! grep -q '"end_to_end\[' "$OUT/bench.json" 2>/dev/null; then bench_json=""; fi  # nothing to plan from

budget=$(( $(left) - 75 ))  # the reproduction's own planning, decoding and tables take about a minute
echo "== reproduction, budget ${budget} s"
if [ "$budget" -ge 120 ]; then
    BENCH_JSON=$bench_json BUDGET_SECONDS=$budget PARALLEL=$PARALLEL RESULTS_DIR=$RESULTS_DIR ARCHIVE=$ARCHIVE \
        timeout $(( budget + 70 )) scripts/reproduce_cifar10.sh "output_dir=$REPRO_DIR" "${reproduce_args[@]}" \
        || echo "reproduction FAILED, timed out or incomplete"
else
    echo "skipped: too little time left"
fi

cp "$RESULTS_DIR/runs.jsonl" "$OUT/" 2>/dev/null
cp "$REPRO_DIR/plan.json" "$OUT/" 2>/dev/null
if ls "$REPRO_DIR"/worker*.log >/dev/null 2>&1; then cat "$REPRO_DIR"/worker*.log > "$OUT/workers.log"; fi
[ -d "$RESULTS_DIR/tables" ] && tar czf "$OUT/tables.tar.gz" -C "$RESULTS_DIR" tables
echo "== done in $(( $(date +%s) - started )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
