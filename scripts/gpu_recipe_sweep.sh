#!/usr/bin/env bash
# The sweep that chooses the CIFAR-10 study's 30-epoch recipe, in time-limited GPU jobs: peg_gap, seed 0, ViT-Ti/4 at
# 32 px, 30 epochs, compiled and guarded, bf16, each setting trained on 45,000 training images and scored on the
# 5,000 held out (data.val_split=5000, stratified, the same for every run): the choice never reads the test set.
# The settings run in order while a whole run still fits in the job (RUN_SECONDS, 300 by default, against
# TOTAL_SECONDS, 520 by default for a job of at most 9 minutes); a setting with a row in results/cifar_sweep_val/ is
# not trained again, so the next job goes on where this one stopped. The folder is packed into
# $OUT/recipe_sweep.tar.gz after every run; back on your workstation its rows are checked and added (nothing
# replaced) with python -m cpvt_lab.study merge study=cifar results_dir=results/cifar_sweep_val
# tables_dir=outputs/cifar_sweep_tables from=recipe_sweep.tar.gz. docs/recipe.md reads them. WORKERS=N (default 1)
# trains up to N settings at once on the one GPU, each its own process (a small model leaves most of a large GPU
# idle); the runs are the same either way, each its own process with its own seed.
# Usage: scripts/gpu_recipe_sweep.sh [NAME...]   (default: every setting, in order)
# Needs data_local/cifar10-jpeg.tar.gz and wheels/ carried beside the checkout (make gpu-carry). GPU_CHECK_DRY=1
# runs two settings at smoke size on any machine, writing only under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_recipe_sweep && source scripts/gpu_preamble.sh
TOTAL=${TOTAL_SECONDS:-520}
RUN_SECONDS=${RUN_SECONDS:-300}
WORKERS=${WORKERS:-1}
started=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - started) )); }
RESULTS=results/cifar_sweep_val
common=(ablation=peg_gap seed=0 scale=cifar trainer.max_epochs=30 optim.warmup_epochs=3 data.val_split=5000
        compile=true output_dir=outputs/recipe_sweep trainer.enable_progress_bar=false)
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    RESULTS=$OUT/results RUN_SECONDS=0
    common=(ablation=peg_gap seed=0 scale=cifar model.size=smoke trainer.max_epochs=1 optim.warmup_epochs=0.5
            data.val_split=20 data.subset=80 data.test_subset=50 data.batch_size=20 "output_dir=$OUT/weights"
            trainer.enable_progress_bar=false)
fi
# What underfits at 30 epochs is the 100-epoch recipe's regularisation (Mixup 0.8, CutMix 1.0, TrivialAugment,
# erasing 0.25, drop-path 0.1: learned ended at 58.8%): the mixing first, then the rest, then the learning rate
# and the batch (more, smaller steps), each beside the recipe as it is.
declare -A settings=(
  [nomix]="optim.mixup=0 optim.cutmix=0"
  [recipe]=""
  [nomix_lr2e-3]="optim.mixup=0 optim.cutmix=0 optim.lr=2e-3"
  [nomix_noreg]="optim.mixup=0 optim.cutmix=0 data.random_erasing=0 model.drop_path=0"
  [nomix_b256]="optim.mixup=0 optim.cutmix=0 data.batch_size=256"
  [light_mix]="optim.mixup=0.2 optim.cutmix=0"
  [crop_flip]="optim.mixup=0 optim.cutmix=0 data.augment=null data.random_erasing=0 model.drop_path=0"
)
order=(nomix recipe nomix_lr2e-3 nomix_noreg nomix_b256 light_mix crop_flip)
names=("${@:-${order[@]}}")
[ -n "${GPU_CHECK_DRY:-}" ] && [ $# -eq 0 ] && names=(nomix recipe)
for name in "${names[@]}"; do  # every name checked before any run
  [ -n "${settings[$name]+set}" ] || { echo "error: unknown setting $name; valid: ${order[*]}" >&2; exit 2; }
done
pack_rows() {
  "$PYTHON" -c "import sys; from cpvt_lab.study.exchange import pack; pack(sys.argv[1], sys.argv[2])" \
    "$RESULTS" "$OUT/recipe_sweep.tar.gz" || echo "== packing $RESULTS FAILED"
}
train() {  # one setting, then the folder packed, so that a job killed at its limit keeps every run it finished
  # shellcheck disable=SC2086
  timeout "$(left)" "$PYTHON" -m cpvt_lab.run "${common[@]}" ${settings[$1]} "${data[@]}" results_dir="$RESULTS" \
    || echo "== $1 FAILED or timed out"
  pack_rows
}
running=()
free_worker() {  # whether fewer than WORKERS settings are training now
  local alive=() pid
  for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  running=("${alive[@]}")
  [ "${#running[@]}" -lt "$WORKERS" ]
}
for name in "${names[@]}"; do
  until free_worker; do sleep 2; done
  if [ "$(left)" -lt "$RUN_SECONDS" ]; then
    echo "== $(left) s left, under a run's $RUN_SECONDS s: $name and the settings after it wait for the next job"
    break
  fi
  echo "== $name: ${settings[$name]:-(the recipe as it is)} ($(left) s left)"
  if [ "$WORKERS" -le 1 ]; then
    train "$name"
  else
    train "$name" 2>&1 | sed -u "s/^/[$name] /" &
    running+=($!)
    sleep 3  # the first compiles before the next one starts
  fi
done
if [ "${#running[@]}" -gt 0 ]; then
  wait "${running[@]}"  # these only: a bare wait would wait for the log's tee too
  pack_rows  # two workers' packs may have crossed: one more, with every row
fi
echo "== done in $(( $(date +%s) - started )) s; rows in $RESULTS/runs.jsonl"
