"""Train the paper's CIFAR-10 tables within a wall-time budget, then regenerate them.

``python -m cpvt_lab.reproduce [grids=[table1,table3,extra_params]] [budget_seconds=540] [bench=FILE]
[parallel=1] [compile_mode=auto|true|false] [epochs=N] [batch_size=1024] [results_dir=results/cifar_gpu]
[output_dir=outputs/cifar_gpu] [tables_dir=DIR] [dry_run=true] [KEY=VALUE...]``

Every run of the grids (one seed, ``scale=cifar``) gets the same number of epochs: as
many as fit ``budget_seconds`` by the plan in ``cpvt_lab/reproduce/budget.py``, planned
from the bench report ``bench=FILE`` (``python -m cpvt_lab.bench json=FILE``) when given;
``epochs=N`` fixes the number instead. ``compile_mode=auto`` compiles or not, whichever buys
more epochs. The runs go through the grid runner (``python -m cpvt_lab.grid``), ``parallel``
copies of it at once on the same results folder: each claims the next run nobody holds, so
they share the work. One worker is the default: it runs the runs back to back with its imports,
its data on the device and its compiled graphs kept (on one H100, 4 workers sharing the GPU
trained at about half the rate of one: a one-off measurement outside this repository).
``results_dir`` and ``output_dir`` are the run-config keys themselves,
with this command's defaults: the rows go to RESULTS_DIR/runs.jsonl, the checkpoints, the
worker logs and ``plan.json`` to OUTPUT_DIR, the tables to ``tables_dir`` (default
RESULTS_DIR/tables). ``dry_run=true`` writes the plan and trains nothing. Every other
KEY=VALUE is a run-config override for every run (``data.archive=PATH``, say).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

from hydra.utils import instantiate

from ..cli import UsageError, parse_words, run_command
from ..config import ConfigError
from ..data import DataError
from ..grid import OPTIONS as GRID_OPTIONS
from ..grid import GridError
from ..grid import plan as plan_grid
from .budget import Plan, make_plan, rates_from_bench
from .report import format_rows, rows_since
from .workers import combined_grid, run_workers, worker_command

GRID_OVERRIDES = ("scale=cifar", "seeds=[0]", "trainer.enable_progress_bar=false")
OPTIONS = {"grids": ["table1", "table3", "extra_params"], "budget_seconds": 540.0, "bench": "", "parallel": 1,
           "compile_mode": "auto", "epochs": None, "batch_size": 1024, "results_dir": "results/cifar_gpu",
           "output_dir": "outputs/cifar_gpu", "tables_dir": "", "dry_run": False}


def prepare(args: dict, overrides: Sequence[str]) -> tuple[Plan, list[str], list]:
    """Check everything and plan, before anything is trained: (plan, worker command, planned runs)."""
    grids = [args["grids"]] if isinstance(args["grids"], str) else args["grids"]
    if not (isinstance(grids, list) and grids):
        raise UsageError("grids", f"a grid name or a list of them, e.g. grids=[table1,table3], got {grids!r}")
    args["grids"] = [str(g) for g in grids]
    if args["parallel"] < 1:
        raise UsageError("parallel", f"must be >= 1, got {args['parallel']}")
    epochs = args["epochs"]
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        raise UsageError("epochs", f"must be an integer >= 1, got {epochs!r}")
    if args["compile_mode"] not in ("auto", "true", "false"):
        raise UsageError("compile_mode", f"auto, true or false, got {args['compile_mode']!r}")
    if any(o.split("=", 1)[0].lstrip("+~") == "compile" for o in overrides):
        raise UsageError("compile", "set by the plan; use compile_mode=auto|true|false")
    bench = Path(args["bench"]) if args["bench"] else None
    if bench is not None and not bench.is_file():
        raise UsageError("bench", f"{bench} is not a file")
    try:
        grid = combined_grid(args["grids"], Path(args["output_dir"]))
        base = [*GRID_OVERRIDES, f"data.batch_size={args['batch_size']}", f"results_dir={args['results_dir']}",
                f"output_dir={args['output_dir']}", *overrides]
        grid_args, run_overrides = parse_words(base, GRID_OPTIONS)
        runs = plan_grid(str(grid), run_overrides, grid_args["seeds"])  # every run composed and checked
    except GridError as err:
        raise ConfigError("grids", str(err)) from None
    options, source = None, ""
    if bench is not None:
        options, source = rates_from_bench(json.loads(bench.read_text()), runs[0].cfg), str(bench)
    plan = make_plan(len(runs), args["parallel"], args["budget_seconds"], args["compile_mode"], options, source)
    if epochs is not None:
        plan.epochs = epochs
    if plan.epochs < 1:
        raise ConfigError("budget_seconds", f"{args['budget_seconds']:.0f} s buys no epoch for {plan.runs} runs "
                          f"({plan.overhead_seconds:.0f} s overhead each at {plan.rate:,.0f} images/s); "
                          "raise budget_seconds or parallel, or name fewer grids")
    warmup = min(5, max(1, plan.epochs // 10))  # the cifar scale's 5 warm-up epochs, shortened for short runs
    overrides = [*base, f"trainer.max_epochs={plan.epochs}", f"optim.warmup_epochs={warmup}",
                 f"compile={str(plan.compile).lower()}",
                 f"trainer.check_val_every_n_epoch={plan.epochs + 1}"]  # evaluated once, at the end
    return plan, worker_command(grid, overrides), runs


def reproduce(argv: list[str]) -> int:
    args, overrides = parse_words(argv, OPTIONS)
    plan, command, runs = prepare(args, overrides)
    print(f"plan: {plan.runs} runs x {plan.epochs} epochs, compile={plan.compile}, {plan.parallel} at a time; "
          f"{plan.rate:,.0f} images/s and {plan.overhead_seconds:.0f} s overhead per run ({plan.source}); "
          f"predicted {plan.predicted_seconds():.0f} s of a {plan.budget_seconds:.0f} s budget", flush=True)
    print("worker: python " + " ".join(command[1:]), flush=True)
    record = {"plan": {**asdict(plan), "waves": plan.waves, "predicted_seconds": round(plan.predicted_seconds(), 1)},
              "command": ["python", *command[1:]], "grids": args["grids"], "runs": [r.label() for r in runs]}
    output_dir, results_dir = Path(args["output_dir"]), args["results_dir"]
    if args["dry_run"]:
        (output_dir / "plan.json").write_text(json.dumps(record, indent=2) + "\n")
        return 0
    instantiate(runs[0].cfg.data).prepare_data()  # decode the archive into the cache once, not in every worker
    started = time.time()
    codes = run_workers(command, plan.parallel, started + args["budget_seconds"], output_dir)
    rows = rows_since(results_dir, started)
    record.update(wall_seconds=round(time.time() - started, 1), worker_exit_codes=codes,
                  finished=[{k: r[k] for k in ("run_id", "ablation", "epochs", "top1", "images_per_second",
                                               "train_seconds", "wall_seconds")} for r in rows])
    (output_dir / "plan.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"grid: {len(rows)} of {plan.runs} runs finished in {record['wall_seconds']:.0f} s "
          f"(workers exited {codes}; logs in {output_dir}/worker*.log)\n{format_rows(rows)}", flush=True)
    tables_dir = args["tables_dir"] or str(Path(results_dir) / "tables")
    tables = subprocess.run([sys.executable, "-m", "cpvt_lab.tables", f"results={results_dir}", f"out={tables_dir}"])
    return 0 if all(c == 0 for c in codes) and tables.returncode == 0 else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command(reproduce, __doc__, argv, errors=(ConfigError, DataError))


if __name__ == "__main__":
    sys.exit(main())
