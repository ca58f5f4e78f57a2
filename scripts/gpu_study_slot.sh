#!/usr/bin/env bash
# One slot of the CIFAR-10 study (ablations/studies/cifar.yaml), for a GPU lent about ten minutes at a time with
# nothing kept between calls: `python -m cpvt_lab.study continue` trains the next whole runs within BUDGET
# seconds, in the study's order of priority, measures equivariance and the position probe of each while its
# weights exist, draws the attention figures once the seed-0 learned, none and peg runs are here, and prints
# where the study stands. This script then packs results/cifar/ (rows, measurements, figures) into
# $OUT/study.tar.gz. Back on the development machine:
#   tar xzf study.tar.gz && python -m cpvt_lab.tables results=results/cifar out=paper_tables/cifar
# then commit both folders (the tables are written there, not on the GPU machine, so that the committed
# tables are exactly what the committed rows give with the repository's own versions).
#   BUDGET (360): seconds of training per slot; the analyses (about 20 s a run) and the tables come after
# Needs data_local/cifar10-jpeg.tar.gz and wheels/ beside the checkout (make gpu-carry). GPU_CHECK_DRY=1 runs the
# smoke study (ablations/studies/smoke.yaml) on any machine instead, writing only under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_study_slot && source scripts/gpu_preamble.sh
study=(study=cifar output_dir=outputs/study_slot) RESULTS=results/cifar BUDGET=${BUDGET:-360}
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    RESULTS=$OUT/results BUDGET=${DRY_BUDGET:-20}
    study=(study=smoke "results_dir=$RESULTS" "tables_dir=$OUT/tables" "output_dir=$OUT/weights")
fi
"$PYTHON" -m cpvt_lab.study continue "${study[@]}" "budget_seconds=$BUDGET" "${data[@]}"
status=$?
tar czf "$OUT/study.tar.gz" --exclude='*.lock' "$RESULTS"
echo "== slot done (exit $status): $OUT/study.tar.gz holds $RESULTS"
exit $status
