#!/usr/bin/env bash
# The sweep that chooses the CPU study's recipe (scale=cpu): the peg ablation, seed 0, on CIFAR-10 (JPEG copy),
# trained on 45,000 training images and scored on the 5,000 held out (data.val_split=5000: the row's val_top1; the
# test set is read only once a run has finished, and no choice reads it); then the check of whether the learned
# table's loss under GAP is the learning rate's (learned and learned_gap at the lr the sweep passed over). Each
# setting stated in full here so that a row can be repeated whatever cpu.yaml says later. Rows go into
# results/cpu_sweep_val/runs.jsonl (resumable: a setting with a row is not trained again); docs/cpu_study.md reads
# them. (results/cpu_sweep/ keeps the first sweep, scored on the test set: superseded, kept as the record.)
# Usage: scripts/cpu_sweep.sh [NAME...]   (default: every setting, in order)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # waiting threads sleep: the same training, no spinning on shared cores
common=(scale=cpu data.val_split=5000 results_dir=results/cpu_sweep_val output_dir=outputs/cpu_sweep_val
        trainer.enable_progress_bar=false)
declare -A settings=(
  [base]="ablation=peg optim.lr=1e-3 model.drop_path=0.1 optim.warmup_epochs=0.5 trainer.max_epochs=4"
  [nodrop]="ablation=peg optim.lr=1e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4"
  [lr2e-3]="ablation=peg optim.lr=2e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4"
  [nosmooth]="ablation=peg optim.lr=1e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4 optim.label_smoothing=0"
  [lr3e-3]="ablation=peg optim.lr=3e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4"
  [lr4e-3]="ablation=peg optim.lr=4e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4"
  [lr3e-3-seed1]="ablation=peg optim.lr=3e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4 seed=1"
  [lr4e-3-seed1]="ablation=peg optim.lr=4e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4 seed=1"
  [lr3e-3-seed2]="ablation=peg optim.lr=3e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4 seed=2"
  [lr4e-3-seed2]="ablation=peg optim.lr=4e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4 seed=2"
  [learned_lr1e-3]="ablation=learned optim.lr=1e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4"
  [learned_gap_lr1e-3]="ablation=learned_gap optim.lr=1e-3 model.drop_path=0 optim.warmup_epochs=0.3 trainer.max_epochs=4"
)
# the learning rate first (the one setting that mattered in the first sweep), then regularisation; the last two check
# the GAP head. The two best learning rates on seed 0 were 1 point apart, within what a seed moves a run: seeds 1
# and 2 of both were trained before choosing (docs/cpu_study.md)
order=(lr3e-3 lr4e-3 lr2e-3 lr3e-3-seed1 lr4e-3-seed1 lr3e-3-seed2 lr4e-3-seed2 nodrop nosmooth base
       learned_lr1e-3 learned_gap_lr1e-3)
for name in "${@:-${order[@]}}"; do
  [ -n "${settings[$name]:-}" ] || { echo "error: unknown setting $name; valid: ${order[*]}" >&2; exit 2; }
  echo "== $name: ${settings[$name]}"
  # shellcheck disable=SC2086
  "$PY" -m cpvt_lab.run "${common[@]}" ${settings[$name]}
done
