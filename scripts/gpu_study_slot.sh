#!/usr/bin/env bash
# One time-limited or preemptible GPU job (a cluster queue's wall-time limit, a spot instance), nothing assumed kept
# between jobs, within TOTAL_SECONDS (520 by default, for a job of at most 9 minutes; set it a minute under your
# job's limit, e.g. sbatch --time=00:15:00 with TOTAL_SECONDS=840). STAGES (default tests,stacked,guard,sweep,study)
# chooses among, run in this order:
#   tests:   the fast-path tests (the GPU-only ones run here);
#   stacked: stacked seeds against their separate runs on this GPU: the study stacks each ablation's seeds only if
#            they pass (without this stage it trains its runs one by one);
#   bench:   not by default: `python -m cpvt_lab.bench` on peg and learned, compiled, with the stacked step, peg's
#            step again with peg_lowering=taps, one epoch of the stacked seeds against the single run end to end,
#            and each step profiled kernel by kernel, into $OUT/bench.json (at most 240 s);
#   guard:   the compile guard at the settings under which compiled multi-PEG models once collapsed (peg_0to5,
#            ViT-Ti/4, 24 px, batch 1024, bf16): `python -m cpvt_lab.compiled` trains eager and compiled side by side;
#   sweep:   the recipe sweep's next settings in the time left (study cifar_recipe, docs/recipe.md: peg_gap at 30
#            epochs, scored on 5,000 training images held out), settings that can share a stack trained as one;
#            packed into $OUT/recipe_sweep.tar.gz after every run. The study's 30-epoch recipe is chosen by it: in
#            a job with both stages the study trains nothing until every setting has its row (then set the study's
#            overrides to the setting chosen); with every row in, the sweep trains nothing. Merged at home with
#            python -m cpvt_lab.study merge study=cifar_recipe from=recipe_sweep.tar.gz
#   study:   the CIFAR-10 study's next whole runs in the time left (`python -m cpvt_lab.study continue`): stacked, the
#            seeds of an ablation train as one compiled stack, checked against the eager stack before its first step
#            (eager if the check fails); one by one, eager (no compile time in a short job). Each run is measured
#            while its weights exist and packed into $OUT/study.tar.gz after every run (OUT: the job's output
#            folder, outputs/gpu_study_slot by default), so a job killed at its limit keeps every run it finished.
# A job that only trains (after one that ran every stage on the same kind of GPU): STAGES=stacked,sweep,study; one that
# measures first: STAGES=tests,stacked,bench,study; one that chooses the recipe: STAGES=stacked,sweep. WORKERS=N
# (default 1) runs the sweep and study stages each as N processes on the
# one GPU, sharing the results folder (each run, or stack, is claimed by the worker that trains it, and measured by
# one), so one worker's evaluation, data and Python time is another's GPU time; each packs into
# $OUT/study.workerI.tar.gz (recipe_sweep.workerI.tar.gz) after every run, and $OUT/study.tar.gz
# (recipe_sweep.tar.gz) holds all of them at the end.
# Back on your workstation (docs/study.md): python -m cpvt_lab.study merge from=study.tar.gz
# adds the rows and measurements to results/cifar/ (replacing nothing) and rewrites paper_tables/cifar/.
# Needs data_local/cifar10-jpeg.tar.gz and wheels/ beside the checkout (make gpu-carry). GPU_CHECK_DRY=1 runs the
# same stages at smoke size on any machine (aot_eager for the guard, the smoke study), writing only under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=gpu_study_slot && source scripts/gpu_preamble.sh
TOTAL=${TOTAL_SECONDS:-520}
started=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - started) )); }
# a stage's time limit: at most CAP seconds, and RESERVE seconds kept for the stages after it
limit() { local t=$(( $(left) - $2 )); echo $(( t < $1 ? (t > 0 ? t : 1) : $1 )); }
STAGES=${STAGES:-tests,stacked,guard,sweep,study}
stage() { [[ ",$STAGES," == *",$1,"* ]]; }
study=(study=cifar output_dir=outputs/study_slot) tests_timeout=120 guard=(ablations=[peg_0to5] steps=150)
results_dir=results/cifar tables=outputs/study_slot/tables WORKERS=${WORKERS:-1}
sweep=(study=cifar_recipe output_dir=outputs/recipe_sweep) sweep_results=results/cifar_sweep_val
sweep_tables=outputs/recipe_sweep/tables
bench=(ablations=[peg,learned] grid_epochs=1)
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    study=(study=smoke "results_dir=$OUT/results" "output_dir=$OUT/weights")
    results_dir=$OUT/results tables=$OUT/tables
    # four of the recipe sweep's settings (not the batch of 256: more than a smoke run's images) on the smoke model
    cat > "$OUT/recipe_smoke_grid.yaml" <<EOF
ablations: [peg_gap]
settings:
$(grep -E '^  (nomix|recipe|light_mix|crop_flip):' ablations/grids/recipe30.yaml)
EOF
    cat > "$OUT/recipe_smoke.yaml" <<EOF
grids: [$OUT/recipe_smoke_grid.yaml]
seeds: [0]
overrides: [scale=smoke, trainer.max_epochs=1, optim.warmup_epochs=0.5, data.val_split=20, data.subset=100,
            data.test_subset=50, data.batch_size=20, optim.mixup=0.8, optim.cutmix=1.0]
runtime: [trainer.enable_progress_bar=false, stack_max=3]
results_dir: $OUT/sweep_results
tables_dir: $OUT/sweep_tables
analysis_images: 0
EOF
    sweep=("study=$OUT/recipe_smoke.yaml" "output_dir=$OUT/sweep_weights") sweep_results=$OUT/sweep_results
    sweep_tables=$OUT/sweep_tables
    tests_timeout=0 guard=(ablations=[peg_0to5] steps=2 variants=aot_eager scale=smoke data.subset=200
                           data.test_subset=100 data.batch_size=50 data.eval_sizes=[32])
    bench=(ablations=[peg] data.batch_size=2 data.subset=null data.test_subset=null steps=1 warmup=1 end_to_end=false
           profile=1 other_lowering=true)
fi

if [ "$tests_timeout" -gt 0 ] && stage tests; then
    echo "== fast-path tests ($(left) s left)"
    timeout "$(limit $tests_timeout 240)" "$PYTHON" -m pytest -v --tb=short -p no:cacheprovider -m "slow or not slow" tests/test_gpu_path.py tests/test_compile_guard.py \
        || echo "== fast-path tests FAILED or timed out"
fi

# the study stacks each ablation's seeds (stack=auto) only once this kind of GPU has shown that stacked seeds train
# as their separate runs (fp32 and bf16; tests/test_stacked.py); otherwise it trains them one by one, eager. A pass
# is stamped (the GPU, torch, the package's code) into the compile cache, so a job that finds the stamp of an
# earlier one (its compile_cache/ carried along) does not spend the minutes again
stack=off
verified="$TORCHINDUCTOR_CACHE_DIR/stacked_verified.txt"
stamp=$("$PYTHON" -c "import hashlib, pathlib, torch
code = hashlib.sha256(b''.join(p.read_bytes() for p in sorted(pathlib.Path('cpvt_lab').rglob('*.py'))))
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'
print(f'{gpu}; torch {torch.__version__}; code {code.hexdigest()[:16]}')")
if stage stacked; then
    if [ -f "$verified" ] && [ "$(cat "$verified")" = "$stamp" ]; then
        echo "== stacked seeds: passed by an earlier job ($stamp), not run again"
        stack=auto
    else
        echo "== stacked seeds against their separate runs on this GPU ($(left) s left)"
        if timeout "$(limit 150 240)" "$PYTHON" -m pytest -q --tb=short -p no:cacheprovider tests/test_stacked.py \
                -k "gpu or bf16"; then
            stack=auto && mkdir -p "$TORCHINDUCTOR_CACHE_DIR" && echo "$stamp" > "$verified"
        else
            echo "== stacked tests FAILED or timed out: the study trains its runs one by one"
        fi
    fi
    [ "$stack" = auto ] && [ -z "${GPU_CHECK_DRY:-}" ] && study+=(compile=true)
fi

[ "$stack" = off ] && [ -z "${GPU_CHECK_DRY:-}" ] && study+=(compile=false)
if stage bench; then
    echo "== bench ($(left) s left)"
    timeout "$(limit 240 120)" "$PYTHON" -m cpvt_lab.bench "${bench[@]}" "${data[@]}" "json=$OUT/bench.json" \
        || echo "== bench FAILED or timed out (bench.json keeps what it measured)"
fi
if stage guard; then
    echo "== compile guard at the settings that collapsed ($(left) s left)"
    timeout "$(limit 120 200)" "$PYTHON" -m cpvt_lab.compiled "${guard[@]}" "results_dir=$OUT/agreement" "${data[@]}" \
        || echo "== compile agreement FAILED or timed out"
fi
# continue_study PACK RESULTS TABLES WORDS...: a study's next whole runs in the time left, as $WORKERS processes,
# packed into $OUT/PACK.tar.gz after every run
continue_study() {
    local pack=$1 results=$2 tables=$3 budget i workers=()
    shift 3
    budget=$(( $(left) - 60 ))  # measuring, drawing and tabling after the last run take about a minute
    if [ "$budget" -le 0 ]; then  # a stage before it took the time: no run would finish
        echo "== $pack stage skipped: $(left) s left"
        return
    fi
    echo "== $pack stage ($1), budget ${budget} s, $WORKERS worker(s)"
    if [ "$WORKERS" -le 1 ]; then
        timeout "$(limit $(( TOTAL )) 5)" "$PYTHON" -m cpvt_lab.study continue "$@" "stack=$stack" \
            "budget_seconds=$budget" "pack=$OUT/$pack.tar.gz" "tables_dir=$tables" "${data[@]}" \
            || echo "== $pack stage FAILED, timed out or a run failed"
        return
    fi
    for i in $(seq 1 "$WORKERS"); do  # each writes its own tables (merging at home rewrites them from the rows)
        ( timeout "$(limit $(( TOTAL )) 15)" "$PYTHON" -m cpvt_lab.study continue "$@" "stack=$stack" \
            "budget_seconds=$budget" "pack=$OUT/$pack.worker$i.tar.gz" "tables_dir=$tables/worker$i" "${data[@]}" \
            || echo "== $pack stage FAILED, timed out or a run failed" ) 2>&1 | sed -u "s/^/[worker $i] /" &
        workers+=($!)
        sleep 3  # the first claims its first runs before the next one looks
    done
    wait "${workers[@]}"  # the workers only: a bare wait would wait for the log's tee too, for ever
    "$PYTHON" -c "import sys; from cpvt_lab.study.exchange import pack; pack(sys.argv[1], sys.argv[2])" \
        "$results" "$OUT/$pack.tar.gz" && echo "== every worker's runs packed into $OUT/$pack.tar.gz"
}
# the settings of the recipe sweep that have no row yet
sweep_left() {
    "$PYTHON" -c "import sys
from cpvt_lab.ablations import load_study
from cpvt_lab.results import Rows
from cpvt_lab.study.plan import plan_study
from cpvt_lab.study.standing import standing
study = load_study(sys.argv[1])
print(len(standing(study, plan_study(study, []), Rows(study.results_dir)).remaining))" "${sweep[0]#study=}"
}
stage sweep && continue_study recipe_sweep "$sweep_results" "$sweep_tables" "${sweep[@]}"
if stage study; then
    unswept=0
    stage sweep && unswept=$(sweep_left)  # a sweep that cannot be read leaves the study waiting too
    if [ "$unswept" != 0 ]; then
        echo "== study stage skipped: the recipe sweep has $unswept setting(s) without a row, and the study" \
             "trains with the recipe it chooses (docs/recipe.md)"
    else
        continue_study study "$results_dir" "$tables" "${study[@]}"
    fi
fi
echo "== slot done in $(( $(date +%s) - started )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
