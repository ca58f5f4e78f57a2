#!/usr/bin/env bash
# The recipe issue's GPU check, one GPU job of at most 10 minutes: peg_gap and then learned trained with the
# scale=cifar recipe (ViT-Ti/4, 32 px, 100 epochs, compiled and guarded, bf16), rows and learning curves into
# results/cifar_recipe/ (committed afterwards), then their tables. EPOCHS=N shortens both runs alike (the
# tables then say so). Needs data_local/cifar10-jpeg.tar.gz and wheels/ carried beside the checkout
# (make gpu-carry). GPU_CHECK_DRY=1 runs it at smoke size on any machine, writing only under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_recipe_check && source scripts/gpu_preamble.sh
RESULTS=${RESULTS_DIR:-results/cifar_recipe}
settings=(scale=cifar compile=true)
[ -n "${EPOCHS:-}" ] && settings+=("trainer.max_epochs=$EPOCHS")
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    RESULTS=$OUT/results
    settings=(scale=cifar model.size=smoke data.subset=200 data.test_subset=100 data.batch_size=50
              trainer.max_epochs=2 optim.warmup_epochs=1)
fi
started=$(date +%s)
for ablation in peg_gap learned; do
    "$PYTHON" -m cpvt_lab.run ablation=$ablation "${settings[@]}" "${data[@]}" results_dir="$RESULTS" \
        output_dir=outputs/recipe_check || echo "$ablation FAILED"
done
cp "$RESULTS/runs.jsonl" "$OUT/" 2>/dev/null
echo "== done in $(( $(date +%s) - started )) s; rows in $RESULTS/runs.jsonl"
