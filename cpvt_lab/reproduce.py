"""Train the paper's CIFAR-10 tables within a wall-time budget, then regenerate them.

``python -m cpvt_lab.reproduce [--grids table1 table3 extra_params] [--budget-seconds 540] [--bench FILE]
[--parallel P] [--compile auto|true|false] [--dry-run] [OVERRIDES...]``

Every run of the grids (one seed, ``scale=cifar``) gets the same number of epochs: as
many as fit the budget by the plan below. The runs go through the grid runner
(``python -m cpvt_lab.grid``), ``--parallel`` copies of it at once on the same
results folder: each claims the next run nobody holds, so they share the work.

The plan, stated: ``budget x 0.9 >= waves x overhead + runs x epochs x (50,000 / rate
+ epoch_end / parallel)``, where ``waves = ceil(runs / parallel)``, ``rate`` is the
end-to-end training rate (images/s), ``overhead`` the per-run cost outside the
epochs (start-up, data to the device, compilation, final evaluation at every size)
and ``epoch_end`` the host's work at each epoch's end (the checkpoint's rewrite).
All three come from a bench JSON when given (``python -m cpvt_lab.bench --json``),
else from DEFAULT_RATE, DEFAULT_OVERHEAD and DEFAULT_EPOCH_END. Concurrent runs are assumed to add no throughput, only to overlap
their overheads; whether they do is measured by running the same grid at
``--parallel 1`` and ``--parallel 3`` with ``--epochs`` fixed and comparing the
``wall_seconds`` in ``plan.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import yaml

from .config import ConfigError, build_model

TRAIN_IMAGES = 50_000
TEST_IMAGES = 10_000
BUDGET_SHARE = 0.9  # of the budget planned for training; the rest is slack and the tables
DEFAULT_RATE = 30_000.0  # images/s, eager ViT-Ti/4 at 24 px and batch 1024 on one H100 (an assumption)
DEFAULT_OVERHEAD = 20.0  # seconds per run outside its epochs, eager (an assumption)
STARTUP_SECONDS = 15.0  # a run process: imports, config checks, the cached arrays to the device
# host work at each epoch's end, mostly rewriting last.ckpt (ViT-Ti/4 with AdamW state: about 66 MB),
# when no bench report measured it; other workers keep the GPU busy meanwhile, so it is shared among them
DEFAULT_EPOCH_END = 0.5
GRID_OVERRIDES = ("scale=cifar", "seeds=[0]", "trainer.enable_progress_bar=false")


@dataclass
class Plan:
    """What the budget buys: the numbers the epochs were derived from, and the result."""
    runs: int
    parallel: int
    budget_seconds: float
    rate: float  # end-to-end images/s at the grid's training size
    overhead_seconds: float
    epoch_end_seconds: float
    compile: bool
    epochs: int
    source: str  # where rate and overhead came from

    @property
    def waves(self) -> int:
        return math.ceil(self.runs / self.parallel)

    def predicted_seconds(self) -> float:
        return (self.waves * self.overhead_seconds
                + self.runs * self.epochs * epoch_seconds(self.rate, self.epoch_end_seconds, self.parallel))


def epoch_seconds(rate: float, epoch_end_seconds: float, parallel: int) -> float:
    """One epoch of one run: its images at ``rate``, plus its host-side end (shared among the workers)."""
    return TRAIN_IMAGES / rate + epoch_end_seconds / parallel


def epochs_that_fit(runs: int, parallel: int, budget_seconds: float, rate: float, overhead_seconds: float,
                    epoch_end_seconds: float = DEFAULT_EPOCH_END) -> int:
    """The most epochs per run with ``waves x overhead + runs x epochs x epoch_seconds`` within the budget share."""
    waves = math.ceil(runs / parallel)
    training_seconds = budget_seconds * BUDGET_SHARE - waves * overhead_seconds
    return max(0, math.floor(training_seconds / (runs * epoch_seconds(rate, epoch_end_seconds, parallel))))


# ---------------------------------------------------------------- rates from a bench report
def flops_per_image(cfg, train_size: int) -> float:
    from .bench import train_flops_per_image

    images = torch.zeros(2, 3, train_size, train_size)
    return train_flops_per_image(build_model(cfg, img_size=train_size), images, torch.tensor([0, 1]))


def rates_from_bench(report: dict, cfg) -> dict[bool, tuple[float, float, float]]:
    """{compiled?: (images/s, overhead s, epoch-end s)} at ``cfg``'s training size, from a bench report.

    The bench times one ablation end to end at its own training size; a different
    size is scaled by the FLOPs per image, discounted by 0.8 (shorter sequences use
    the GPU less well). Eager figures follow from the step timings: the eager step's
    speed relative to the compiled one, and the compile time it saves.
    """
    by_name = {m["name"]: m for m in report["measurements"]}
    e2e = next((m for m in report["measurements"] if m["name"].startswith("end_to_end[")), None)
    if e2e is None:
        raise ConfigError("--bench", "the bench report has no end-to-end measurement")
    bench_size, size = report["settings"]["train_size"], cfg.data.train_size
    scale = 1.0 if bench_size == size else 0.8 * flops_per_image(cfg, bench_size) / flops_per_image(cfg, size)
    eval_equivalent = sum((s / size) ** 2 for s in cfg.data.eval_sizes) * TEST_IMAGES / 3  # forward ~ 1/3 step
    rate = e2e["images_per_second"] * scale
    overhead = STARTUP_SECONDS + e2e["warmup_seconds"] + eval_equivalent / rate
    epoch_end = e2e.get("checkpoint_seconds") or DEFAULT_EPOCH_END
    options = {bool(e2e["compiled"]): (rate, overhead, epoch_end)}
    ablation = e2e["ablation"]
    eager, compiled = by_name.get(f"ours_eager[{ablation}]"), by_name.get(f"ours_step[{ablation}]")
    if e2e["compiled"] and eager is not None and compiled is not None:
        eager_rate = rate * eager["images_per_second"] / compiled["images_per_second"]
        saved = max(0.0, compiled["warmup_seconds"] - eager["warmup_seconds"])
        options[False] = (eager_rate, STARTUP_SECONDS + max(0.0, e2e["warmup_seconds"] - saved)
                          + eval_equivalent / eager_rate, epoch_end)
    return options


def make_plan(runs: int, parallel: int, budget_seconds: float, compile_mode: str,
              options: Optional[dict[bool, tuple[float, float, float]]], source: str) -> Plan:
    """The plan with the most epochs among the allowed compile modes."""
    if options is None:
        options = {False: (DEFAULT_RATE, DEFAULT_OVERHEAD, DEFAULT_EPOCH_END)}
        source = "assumed (no bench report)"
    allowed = {"auto": list(options), "true": [True], "false": [False]}[compile_mode]
    missing = [c for c in allowed if c not in options]
    if missing:
        raise ConfigError("--compile", f"compile={compile_mode} but {source} has no "
                          f"{'compiled' if missing[0] else 'eager'} figures; use --compile auto")
    plans = [Plan(runs, parallel, budget_seconds, *options[c], compile=c,
                  epochs=epochs_that_fit(runs, parallel, budget_seconds, *options[c]), source=source)
             for c in allowed]
    return max(plans, key=lambda p: (p.epochs, not p.compile))


# ---------------------------------------------------------------- running
def combined_grid(grids: Sequence[str], folder: Path) -> Path:
    """One grid file including the named grids, so that the workers share one queue of runs."""
    from .grid import grid_file

    for name in grids:
        grid_file(name)  # an unknown grid fails here, with the valid names
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reproduce-grid.yaml"
    path.write_text(yaml.safe_dump({"include": [str(Path(g).resolve()) if g.endswith((".yaml", ".yml")) else g
                                                for g in grids]}))
    return path


def worker_command(grid: Path, overrides: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "cpvt_lab.grid", str(grid), *overrides]


def run_workers(command: list[str], parallel: int, deadline: float, log_dir: Path) -> list[int]:
    """Start ``parallel`` grid workers; stop any still running at ``deadline``; their exit codes."""
    procs = []
    # a SIGTERM to this process (a timeout, say) must stop the workers too: exit through the finally below
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        for i in range(parallel):
            with open(log_dir / f"worker{i}.log", "w") as log:
                procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            time.sleep(1.0)  # staggered: each claims a different first run
        for proc in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                break
    finally:
        for proc in procs:
            stop(proc)
        signal.signal(signal.SIGTERM, previous)
    return [proc.returncode for proc in procs]


def stop(proc: subprocess.Popen) -> None:
    """End a worker that is still running, and whatever it started (its own session), by its id."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cpvt_lab.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="run-config overrides for every run, e.g. data.archive=PATH")
    parser.add_argument("--grids", nargs="+", default=["table1", "table3", "extra_params"],
                        help="grid names (ablations/grids/) or grid YAML files")
    parser.add_argument("--budget-seconds", type=float, default=540.0, help="wall time for the whole grid")
    parser.add_argument("--bench", type=Path, help="a bench JSON to plan from (python -m cpvt_lab.bench --json)")
    parser.add_argument("--parallel", type=int, default=2, help="grid workers sharing the GPU at once")
    parser.add_argument("--compile", choices=["auto", "true", "false"], default="auto",
                        help="auto: whichever gives more epochs by the plan")
    parser.add_argument("--epochs", type=int, help="epochs per run, instead of the planned number")
    parser.add_argument("--batch-size", type=int, default=1024, help="per-run batch (lr scales linearly)")
    parser.add_argument("--results-dir", default="results/cifar_gpu", help="where runs.jsonl is appended")
    parser.add_argument("--output-dir", default="outputs/cifar_gpu", help="checkpoints, worker logs, plan.json")
    parser.add_argument("--tables-dir", help="where the tables go (default: RESULTS_DIR/tables)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the command, train nothing")
    return parser.parse_intermixed_args(argv)


def prepare(args: argparse.Namespace):
    """Check everything and plan, before anything is trained: (plan, worker command, planned runs)."""
    from .grid import GridError, plan as plan_grid

    if args.parallel < 1:
        raise ConfigError("--parallel", f"must be >= 1, got {args.parallel}")
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError("--epochs", f"must be >= 1, got {args.epochs}")
    if args.bench is not None and not args.bench.is_file():
        raise ConfigError("--bench", f"{args.bench} is not a file")
    try:
        grid = combined_grid(args.grids, Path(args.output_dir))
        base = [*GRID_OVERRIDES, f"data.batch_size={args.batch_size}", f"results_dir={args.results_dir}",
                f"output_dir={args.output_dir}", *args.overrides]
        runs = plan_grid(str(grid), base)  # every run composed and checked
    except GridError as err:
        raise ConfigError("--grids", str(err)) from None
    options, source = None, ""
    if args.bench is not None:
        options, source = rates_from_bench(json.loads(args.bench.read_text()), runs[0].cfg), str(args.bench)
    plan = make_plan(len(runs), args.parallel, args.budget_seconds, args.compile, options, source)
    if args.epochs is not None:
        plan.epochs = args.epochs
    if plan.epochs < 1:
        raise ConfigError("--budget-seconds", f"{args.budget_seconds:.0f} s buys no epoch for {plan.runs} runs "
                          f"({plan.overhead_seconds:.0f} s overhead each at {plan.rate:,.0f} images/s); "
                          "raise the budget or --parallel, or name fewer grids")
    warmup = min(5, max(1, plan.epochs // 10))  # the cifar scale's 5 warm-up epochs, shortened for short runs
    overrides = [*base, f"trainer.max_epochs={plan.epochs}", f"optim.warmup_epochs={warmup}",
                 f"compile={str(plan.compile).lower()}",
                 f"trainer.check_val_every_n_epoch={plan.epochs + 1}"]  # evaluated once, at the end
    return plan, worker_command(grid, overrides), runs


def finished_rows(results_dir: str, started: float) -> list[dict]:
    """This reproduction's success rows, oldest first."""
    from datetime import datetime

    from .results import finished_rows

    return [r for r in finished_rows(results_dir)
            if datetime.fromisoformat(r["finished_at"]).timestamp() >= started - 1]


def format_rows(rows: Sequence[dict]) -> str:
    lines = [f"{'ablation':<16}{'epochs':>7}{'top1 (train size)':>19}{'images/s':>11}{'train s':>9}{'wall s':>8}"]
    for r in rows:
        first = str(r["train_size"])
        lines.append(f"{r['ablation']:<16}{r['epochs']:>7}{r['top1'].get(first, float('nan')):>19.2f}"
                     f"{r['images_per_second'] or 0:>11,.0f}{r['train_seconds']:>9.0f}{r['wall_seconds']:>8.0f}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from .data import DataError
    try:
        plan, command, runs = prepare(args)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"plan: {plan.runs} runs x {plan.epochs} epochs, compile={plan.compile}, {plan.parallel} at a time; "
          f"{plan.rate:,.0f} images/s and {plan.overhead_seconds:.0f} s overhead per run ({plan.source}); "
          f"predicted {plan.predicted_seconds():.0f} s of a {plan.budget_seconds:.0f} s budget", flush=True)
    print("worker: python " + " ".join(command[1:]), flush=True)
    record = {"plan": {**asdict(plan), "waves": plan.waves, "predicted_seconds": round(plan.predicted_seconds(), 1)},
              "command": ["python", *command[1:]], "grids": args.grids, "runs": [r.label() for r in runs]}
    output_dir = Path(args.output_dir)
    if args.dry_run:
        (output_dir / "plan.json").write_text(json.dumps(record, indent=2) + "\n")
        return 0
    from hydra.utils import instantiate
    instantiate(runs[0].cfg.data).prepare_data()  # decode the archive into the cache once, not in every worker
    started = time.time()
    codes = run_workers(command, plan.parallel, started + args.budget_seconds, output_dir)
    rows = finished_rows(args.results_dir, started)
    record.update(wall_seconds=round(time.time() - started, 1), worker_exit_codes=codes,
                  finished=[{k: r[k] for k in ("run_id", "ablation", "epochs", "top1", "images_per_second",
                                               "train_seconds", "wall_seconds")} for r in rows])
    (output_dir / "plan.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"grid: {len(rows)} of {plan.runs} runs finished in {record['wall_seconds']:.0f} s "
          f"(workers exited {codes}; logs in {output_dir}/worker*.log)\n{format_rows(rows)}", flush=True)
    tables_dir = args.tables_dir or str(Path(args.results_dir) / "tables")
    tables = subprocess.run([sys.executable, "-m", "cpvt_lab.tables", f"results={args.results_dir}",
                             f"out={tables_dir}"])
    return 0 if all(c == 0 for c in codes) and tables.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
