#!/usr/bin/env bash
# One slot of the CIFAR-10 study: the paper's grids with seeds 0, 1, 2 at scale=cifar, for a GPU lent about ten
# minutes at a time with nothing kept between calls. It trains whole runs only, in the study's order of priority
# (the seed-0 learned, none and peg runs the attention figures need, then table3, extra_params, table1,
# peg_position, table2), within BUDGET seconds; then, while the weights exist,
# measures every run it trained (equivariance, position probe) and draws the attention figures once the seed-0
# learned, none and peg runs are at hand; and leaves the small files as $OUT/study.tar.gz, to unpack at the
# repository's root and commit: results/cifar/ holds the rows, their analyses and figures, and the next slot
# goes on from there (runs with a row are not trained again).
#   EPOCHS (30): one budget for every run of the study, the same in every slot (the tables say how many)
#   BUDGET (360): seconds of training per slot; the analyses (about 20 s a run) and the packing come after
# Needs data_local/cifar10-jpeg.tar.gz and wheels/ beside the checkout (make gpu-carry). GPU_CHECK_DRY=1 runs it
# at smoke size on any machine, writing only under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_study_slot && source scripts/gpu_preamble.sh
RESULTS=${RESULTS_DIR:-results/cifar}
WEIGHTS=outputs/study_slot   # this slot's checkpoints: gone with the machine
EPOCHS=${EPOCHS:-30} BUDGET=${BUDGET:-360} IMAGES=256
settings=(scale=cifar compile=true "trainer.max_epochs=$EPOCHS" checkpoint_every=1000 trainer.enable_progress_bar=false)
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    RESULTS=$OUT/results WEIGHTS=$OUT/weights EPOCHS=1 BUDGET=${DRY_BUDGET:-20} IMAGES=20
    settings=(scale=cifar model.size=smoke data.subset=100 data.test_subset=50 data.batch_size=50
              trainer.max_epochs=1 optim.warmup_epochs=0.5 checkpoint_every=1000 trainer.enable_progress_bar=false)
fi
started=$(date +%s)
for grid in attention table3 extra_params table1 peg_position table2; do
    left=$(( BUDGET - ($(date +%s) - started) ))
    [ "$left" -le 0 ] && break
    seeds=(seeds=[0,1,2]); [ $grid = attention ] && seeds=()
    "$PYTHON" -m cpvt_lab.grid $grid "${seeds[@]}" budget_seconds=$left "${settings[@]}" "${data[@]}" \
        results_dir="$RESULTS" output_dir="$WEIGHTS"
done

# what needs the weights, while they exist: every run trained in this slot, and the attention figures
mapfile -t here < <("$PYTHON" - "$RESULTS" <<'EOF'
import sys
from pathlib import Path
from cpvt_lab.results import finished_rows
for row in finished_rows(sys.argv[1]):
    if Path(row["checkpoint"]).is_file():
        print(row["run_id"], row["ablation"], row["seed"])
EOF
)
for line in "${here[@]}"; do
    read -r run_id ablation seed <<< "$line"
    for analysis in equivariance probe; do
        "$PYTHON" -m cpvt_lab.analyze $analysis run_id=$run_id images=$IMAGES results_dir="$RESULTS" \
            out_dir="$OUT/tables" || echo "$analysis of $ablation seed $seed FAILED"
    done
done
seed0=$(printf '%s\n' "${here[@]}" | awk '$3 == 0 {print $2}' | sort -u | tr '\n' ' ')
if [ -f "$RESULTS/figures/attention_matrices.png" ]; then
    echo "attention figures: already drawn"
elif [[ " $seed0 " == *" learned "* && " $seed0 " == *" none "* && " $seed0 " == *" peg "* ]]; then
    "$PYTHON" -m cpvt_lab.analyze attention results_dir="$RESULTS" out_dir="$RESULTS/figures" images=64
else
    echo "attention figures: waiting for seed-0 learned, none and peg trained in one slot (this one had: ${seed0:-none})"
fi
tar czf "$OUT/study.tar.gz" --exclude='*.lock' --exclude=claims "$RESULTS" 2>/dev/null
echo "== slot done in $(( $(date +%s) - started )) s: ${#here[@]} runs trained; $OUT/study.tar.gz holds $RESULTS"
