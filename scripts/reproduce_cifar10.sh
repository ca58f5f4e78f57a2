#!/usr/bin/env bash
# Train the table1, table3 and extra_params grids on full CIFAR-10 (one seed, scale=cifar) on one GPU
# within a wall-time budget, then regenerate the tables. Works offline (see scripts/offline_env.sh).
#
#   scripts/reproduce_cifar10.sh [dry_run=true] [any KEY=VALUE of python -m cpvt_lab.reproduce --help]
#
# Environment: BUDGET_SECONDS (540), PARALLEL (1: runs back to back in one worker), BENCH_JSON (a bench report to
# plan the epochs from), RESULTS_DIR (results/cifar_gpu), ARCHIVE (data_local/cifar10-jpeg.tar.gz when
# present, else the usual lookup), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/offline_env.sh

args=("budget_seconds=${BUDGET_SECONDS:-540}" "parallel=${PARALLEL:-1}"
      "results_dir=${RESULTS_DIR:-results/cifar_gpu}")
if [ -n "${BENCH_JSON:-}" ] && [ -f "$BENCH_JSON" ]; then args+=("bench=$BENCH_JSON"); fi
archive=${ARCHIVE:-data_local/cifar10-jpeg.tar.gz}
if [ -f "$archive" ]; then args+=("data.archive=$archive"); fi
exec "$PYTHON" -m cpvt_lab.reproduce "${args[@]}" "$@"
