"""Run a grid of ablations x seeds: ``python -m cpvt_lab.grid NAME [seeds=[0,1]] [budget_seconds=S] [KEY=VALUE...]``.

A grid is a YAML file in ``ablations/grids/`` naming ablations, seeds and the training
and evaluation sizes; ``include:`` unions other grids. NAME is a grid's name or the path
of a grid YAML file. ``seeds=[...]`` replaces the grid's seeds; every other KEY=VALUE is a
run-config override of ``cpvt_lab.run`` for every run. Runs are identified by their run_id, so a run
shared by two grids is trained once, and the runner is resumable: a run with a success
row is skipped, an interrupted one resumes from its last checkpoint, a failed one is
recorded and the grid goes on, and a run another process is training is waited for.
``budget_seconds=S`` starts no run that would not end within S seconds of the grid's start (judged by
the longest run so far; the first always starts), so a short GPU slot ends with whole runs only.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from . import results
from .cli import name_first, parse_words, run_command
from .config import ABLATIONS_DIR, ConfigError, ablation_names, compose
from .data import DataError
from .fingerprint import run_id
from .validation import validate

GRIDS_DIR = ABLATIONS_DIR / "grids"
GRID_KEYS = {"ablations", "seeds", "train_size", "eval_sizes", "overrides", "include", "study", "title", "shows", "paper_px", "paper"}
WAIT_SECONDS = 5.0  # between looks at a run that another process is training
OPTIONS = {"seeds": None, "budget_seconds": 0.0}  # the grid's own words (0: no budget); the rest are overrides


class GridError(ValueError):
    """A grid name, grid file or grid override that cannot work."""


def grid_names() -> list[str]:
    return sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Grid:
    """One grid file: ablations x seeds, each run composed with ``overrides``."""
    name: str
    ablations: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]


def grid_file(name: str) -> Path:
    """A grid's YAML file: a name in ``ablations/grids/``, or the path of a YAML file."""
    if name in grid_names():
        return GRIDS_DIR / f"{name}.yaml"
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return Path(name)
    raise GridError(f"unknown grid {name!r}; valid: {', '.join(grid_names())} (or the path of a grid YAML file)")


def load_grid(name: str, _seen: tuple[str, ...] = ()) -> list[Grid]:
    """The grid ``name`` as a list of plain grids (one, or several for a grid that includes others)."""
    path = grid_file(name)
    name = path.stem
    if name in _seen:
        raise GridError(f"grid {name!r} includes itself (via {' -> '.join(_seen)})")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise GridError(f"grid {name!r}: {path} is not valid YAML ({err})") from None
    if not isinstance(spec, dict):
        raise GridError(f"grid {name!r}: {path} must hold a mapping of {sorted(GRID_KEYS)}")
    unknown = set(spec) - GRID_KEYS
    if unknown:
        raise GridError(f"grid {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(GRID_KEYS)}")
    grids = [g for child in spec.get("include", []) for g in load_grid(child, (*_seen, name))]
    if "ablations" in spec:
        bad = [a for a in spec["ablations"] if a not in ablation_names()]
        if bad:
            raise GridError(f"grid {name!r}: unknown ablations {bad}; valid: {', '.join(ablation_names())}")
        overrides = list(spec.get("overrides", []))
        if "train_size" in spec:
            overrides.insert(0, f"data.train_size={spec['train_size']}")
        if "eval_sizes" in spec:
            overrides.insert(1, f"data.eval_sizes=[{','.join(str(s) for s in spec['eval_sizes'])}]")
        seeds = check_seeds(spec.get("seeds", [0]), f"grid {name!r}: seeds")
        grids.append(Grid(name, tuple(spec["ablations"]), seeds, tuple(overrides)))
    if not grids:
        raise GridError(f"grid {name!r} names no ablations and includes no grid")
    return grids


@dataclass
class PlannedRun:
    ablation: str
    seed: int
    cfg: DictConfig
    run_id: str
    grids: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.ablation} seed={self.seed} [{self.run_id}]"


def check_seeds(seeds: Any, where: str) -> tuple[int, ...]:
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                      for s in seeds)):
        raise GridError(f"{where}: must be a non-empty list of non-negative integers, e.g. [0, 1], got {seeds!r}")
    return tuple(dict.fromkeys(seeds))


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """The run-config overrides, less those the grid sets itself (``seed``, ``ablation``)."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in ("seed", "ablation"):
            raise GridError(f"{key}: set by the grid; use seeds=[...] to choose seeds (got {item!r})")
        if key == "seeds":  # a library caller's slip: the command line takes it out (OPTIONS)
            raise GridError(f"seeds: the grid's own option, not a run-config override; pass seeds= (got {item!r})")
    return list(overrides)


def plan(name: str, overrides: Sequence[str] = (), seeds: Any = None, check: bool = True) -> list[PlannedRun]:
    """Every run of the grid, composed and (with ``check``) checked, once per run_id; ``seeds`` (if given) replace
    the grid's. ``check=False`` plans without looking at the data (what a run is needs no archive).

    Seed by seed (in grid order within a seed), so that a first seed of every cell is
    done before any second: stopped early, a grid still covers every table.
    """
    seeds_override = None if seeds is None else check_seeds(seeds, "seeds")
    overrides = check_overrides(overrides)
    runs: dict[str, PlannedRun] = {}
    for grid in load_grid(name):
        for ablation in grid.ablations:
            for i, seed in enumerate(seeds_override or grid.seeds):
                try:
                    cfg = compose(ablation, [*grid.overrides, *overrides, f"seed={seed}"])
                    if check and i == 0:  # seeds change nothing else that validate() checks
                        validate(cfg)
                except (HydraException, OmegaConfBaseException) as err:
                    raise GridError(f"grid {grid.name}, ablation {ablation}: {err}") from None
                rid = run_id(cfg)
                run = runs.setdefault(rid, PlannedRun(ablation, seed, cfg, rid))
                if grid.name not in run.grids:
                    run.grids.append(grid.name)
    return sorted(runs.values(), key=lambda run: run.seed)


def progress_callbacks(cfg: DictConfig) -> list[Any]:
    """Lightning's rich progress bar for the run, unless the config turns bars off."""
    if not cfg.trainer.get("enable_progress_bar", True):
        return []
    from pytorch_lightning.callbacks import RichProgressBar
    return [RichProgressBar()]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class GridReport:
    trained: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    elsewhere: list[PlannedRun] = field(default_factory=list)  # finished by another process meanwhile
    not_started: list[PlannedRun] = field(default_factory=list)  # left for later: the time budget was spent

    def summary(self, name: str, results_dir: str) -> str:
        total = len(self.trained) + len(self.skipped) + len(self.failed) + len(self.elsewhere)
        lines = [f"grid {name}: {total} runs; trained {len(self.trained)}, already done {len(self.skipped)}, "
                 f"finished by another process {len(self.elsewhere)}, failed {len(self.failed)} "
                 f"(rows in {results.results_path(results_dir)})"]
        if not self.trained and not self.failed:
            lines.append("  nothing new to train: every run already has a success row")
        lines += [f"  trained: {r.label()}" for r in self.trained]
        lines += [f"  skipped (already done): {r.label()}" for r in self.skipped]
        lines += [f"  finished by another process: {r.label()}" for r in self.elsewhere]
        lines += [f"  FAILED: {r.label()}: {reason}" for r, reason in self.failed]
        if self.not_started:
            lines.append(f"  not started, for the time budget ({len(self.not_started)}; run the same command "
                         "again to go on): " + ", ".join(r.label() for r in self.not_started))
        return "\n".join(lines)


def run_grid(name: str, overrides: Sequence[str] = (), seeds: Any = None, out=sys.stdout,
             budget_seconds: float = 0) -> GridReport:
    """Run every run of grid ``name`` not yet done (within ``budget_seconds``, when > 0); return what was
    trained, skipped, failed and left for later."""
    runs = plan(name, overrides, seeds)  # composes and validates every run (data included) first
    return run_planned(name, runs, out, budget_seconds)


def run_planned(name: str, runs: Sequence[PlannedRun], out=sys.stdout, budget_seconds: float = 0,
                after_run: Optional[Callable[[PlannedRun, dict[str, Any]], None]] = None) -> GridReport:
    """Run, in their order, the planned ``runs`` (one results folder) that have no success row yet;
    ``after_run(run, row)`` follows each run this call trained (a study measures and packs it there)."""
    from .train import (
        run_experiment,  # Lightning loads only once the grid is known to be valid
    )

    results_dir = runs[0].cfg.results_dir
    done = {r["run_id"] for r in results.finished_rows(results_dir)}
    report = GridReport(skipped=[r for r in runs if r.run_id in done])
    pending = [r for r in runs if r.run_id not in done]
    print(f"grid {name}: {len(runs)} runs, {len(report.skipped)} already done, {len(pending)} to train",
          file=out, flush=True)
    started, count, longest = time.time(), len(pending), 0.0
    while pending:
        busy = []
        for i, run in enumerate(pending):
            if budget_seconds and longest and time.time() - started + longest > budget_seconds:
                report.not_started = [*busy, *pending[i:]]
                busy = []
                break
            _print_progress(run, report, count, started, out)
            run_started = time.time()
            try:
                row = run_experiment(run.cfg, callbacks=progress_callbacks(run.cfg))
            except Exception as err:  # noqa: BLE001 - run_experiment wrote the failed row; the grid goes on
                report.failed.append((run, f"{type(err).__name__}: {err}"))
                # a failed run took time too: without it, a call of only failures would ignore its budget
                longest = max(longest, time.time() - run_started)
                print(f"  failed: {report.failed[-1][1]}", file=out, flush=True)
                continue
            if row.get("in_progress"):
                busy.append(run)
                print("  another process is training it; coming back to it", file=out, flush=True)
            elif row.get("skipped"):
                report.elsewhere.append(run)
            else:
                report.trained.append(run)
                print(f"  done in {_duration(row['wall_seconds'])}: {_top1(row)}", file=out, flush=True)
                if after_run is not None:
                    after_run(run, row)
                longest = max(longest, time.time() - run_started)  # what follows a run counts as its time
        if busy:
            time.sleep(WAIT_SECONDS)
        pending = busy
    print(report.summary(name, results_dir), file=out, flush=True)
    return report


def _top1(row: dict[str, Any]) -> str:
    return "  ".join(f"top1@{s}={v:.2f}%" for s, v in sorted(row["top1"].items(), key=lambda kv: int(kv[0])))


def _print_progress(run: PlannedRun, report: GridReport, count: int, started: float, out) -> None:
    """A grid-level count, and an ETA from the mean time of the runs trained so far."""
    finished = len(report.trained) + len(report.failed) + len(report.elsewhere)
    eta = ""
    if report.trained:
        elapsed = time.time() - started
        eta = f"; {_duration(elapsed)} elapsed, about {_duration(elapsed / finished * (count - finished))} left"
    print(f"[{min(finished + 1, count)}/{count}{eta}] {run.label()} (grid: {', '.join(run.grids)})",
          file=out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    def grid(argv: list[str]) -> int:
        name, words = name_first(argv, "grid", [*grid_names(), "or the path of a grid YAML file"])
        options, overrides = parse_words(words, OPTIONS)
        if options["budget_seconds"] < 0:
            raise GridError(f"budget_seconds: must be >= 0 (0: no budget), got {options['budget_seconds']}")
        return 1 if run_grid(name, overrides, options["seeds"], budget_seconds=options["budget_seconds"]).failed else 0

    return run_command(grid, f"{__doc__}\ngrids: {', '.join(grid_names())}", argv,
                       errors=(GridError, ConfigError, DataError))


if __name__ == "__main__":
    sys.exit(main())
