#!/usr/bin/env bash
# The compile issue's GPU check, one stage per GPU job of at most 10 minutes (STAGE=...):
#   bisect  (about 8 min) the fast-path tests, then peg_0to5 trained 150 steps eager and under every compile
#           variant of `python -m cpvt_lab.compiled` (torch defaults, mix-order reductions off,
#           eager RNG, static shapes, unfused AdamW, fp32, aot_eager, blocks only, the project's compile)
#   runs    (about 8 min) peg_0to5, peg_0to5_gap and conv1x1_stack trained in full at the settings that
#           collapsed (ViT-Ti/4, 24 px, batch 1024, 12 epochs, 1 warm-up, bf16), compiled and eager,
#           and their top-1 side by side
#   agree   (as long as it is given) every ablation, 200 steps, the project's compile beside eager
#   bench   (about 4 min) the bench of learned, peg, peg_gap with each compile check beside its speed
# Everything lands in results/bench/compile_agreement/ (agreement.jsonl, resumable across jobs: commit it
# between jobs) and the job's output folder $OUT. Needs, carried beside the checkout:
# data_local/cifar10-jpeg.tar.gz and wheels/ (make gpu-carry). GPU_CHECK_DRY=1 runs a stage at smoke size on any machine (aot_eager for the compile
# variants, a CPU's inductor being slow), writing only under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_compile_check && source scripts/gpu_preamble.sh
STAGE=${STAGE:-bisect}
AGREE=${AGREE_DIR:-results/bench/compile_agreement}
RUNS=${RUNS_DIR:-results/compile_check}
# the settings under which compiled multi-PEG models collapsed
settings=(scale=cifar data.train_size=24 data.eval_sizes=[24] data.batch_size=1024 trainer.max_epochs=12
          optim.warmup_epochs=1)
steps=150 agree_steps=200 variants=all bench=(ablations=[learned,peg,peg_gap])
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    AGREE=$OUT/agreement RUNS=$OUT/runs
    settings=(scale=smoke data.subset=200 data.test_subset=100 data.batch_size=50 trainer.max_epochs=1
              data.eval_sizes=[32])
    steps=2 agree_steps=2 variants=aot_eager bench=(ablations=[peg] data.batch_size=2 steps=1 warmup=1 end_to_end=false)
fi
started=$(date +%s)

case "$STAGE" in
bisect)
    if [ -z "${GPU_CHECK_DRY:-}" ]; then
        timeout 90 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu_path.py tests/test_compile_guard.py \
            || echo "fast-path tests FAILED or timed out"
    fi
    "$PYTHON" -m cpvt_lab.compiled ablations=[peg_0to5] variants=$variants steps=$steps results_dir="$AGREE" \
        "${settings[@]}" "${data[@]}"
    ;;
runs)
    for ablation in peg_0to5 peg_0to5_gap conv1x1_stack; do
        for compile in true false; do
            "$PYTHON" -m cpvt_lab.run ablation=$ablation compile=$compile "${settings[@]}" "${data[@]}" \
                results_dir="$RUNS/compile_$compile" output_dir="outputs/compile_check_$compile"
        done
    done
    "$PYTHON" - "$RUNS" <<'EOF'
import sys
from cpvt_lab.results import finished_rows
folder = sys.argv[1]
rows = {c: {r["ablation"]: r for r in finished_rows(f"{folder}/compile_{c}")} for c in ("true", "false")}
print(f"{'ablation':<16}{'compiled':>10}{'eager':>8}{'diff':>7}  compiled run trained compiled? check")
for ablation, eager in sorted(rows["false"].items()):
    comp = rows["true"].get(ablation)
    if comp is None:
        continue
    size = str(eager["train_size"])
    a, b = comp["top1"][size], eager["top1"][size]
    check = comp.get("compile_check") or {}
    print(f"{ablation:<16}{a:>10.2f}{b:>8.2f}{a - b:>+7.2f}  {comp['compiled']}  {check.get('reason', '-')}")
EOF
    ;;
agree)
    ablations=all; [ -n "${GPU_CHECK_DRY:-}" ] && ablations=[peg,none]
    "$PYTHON" -m cpvt_lab.compiled ablations=$ablations steps=$agree_steps results_dir="$AGREE" "${settings[@]}" "${data[@]}"
    ;;
bench)
    "$PYTHON" -m cpvt_lab.bench "${bench[@]}" "${data[@]}" "json=$OUT/bench.json"
    ;;
*)
    echo "error: STAGE=$STAGE; valid: bisect, runs, agree, bench" >&2
    exit 2
    ;;
esac
cp "$AGREE"/agreement.jsonl "$AGREE"/agreement.md "$OUT/" 2>/dev/null
for c in true false; do [ -f "$RUNS/compile_$c/runs.jsonl" ] && cp "$RUNS/compile_$c/runs.jsonl" "$OUT/runs_compile_$c.jsonl"; done
echo "== stage $STAGE done in $(( $(date +%s) - started )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
