"""Run a grid of ablations x seeds: ``python -m cpvt_lab.grid NAME [overrides...]``.

A grid is a YAML file in ``ablations/grids/`` naming ablations, seeds and the training
and evaluation sizes; ``include:`` unions other grids. Overrides are those of
``cpvt_lab.run`` plus ``seeds=[...]``. Runs are identified by their run_id, so a run
shared by two grids is trained once, and the runner is resumable: a run with a success
row is skipped, an interrupted one resumes from its last checkpoint, a failed one is
recorded and the grid goes on, and a run another process is training is waited for.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from . import results
from .config import ABLATIONS_DIR, ConfigError, ablation_names, compose, run_id, validate
from .data import DataError

GRIDS_DIR = ABLATIONS_DIR / "grids"
GRID_KEYS = {"ablations", "seeds", "train_size", "eval_sizes", "overrides", "include", "study", "title", "shows", "paper_px", "paper"}
WAIT_SECONDS = 5.0  # between looks at a run that another process is training


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


def split_overrides(overrides: Sequence[str]) -> tuple[tuple[int, ...] | None, list[str]]:
    """Pull ``seeds=[...]`` out of the overrides; the rest go to every run's config."""
    seeds, rest = None, []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key == "seeds":
            try:
                seeds = check_seeds(yaml.safe_load(item.split("=", 1)[1]), "seeds")
            except yaml.YAMLError:
                raise GridError(f"seeds: not a list, e.g. seeds=[0,1]: {item!r}") from None
        elif key in ("seed", "ablation"):
            raise GridError(f"{key}: set by the grid; use seeds=[...] to choose seeds (got {item!r})")
        else:
            rest.append(item)
    return seeds, rest


def plan(name: str, overrides: Sequence[str] = ()) -> list[PlannedRun]:
    """Every run of the grid, composed and checked, once per run_id.

    Seed by seed (in grid order within a seed), so that a first seed of every cell is
    done before any second: stopped early, a grid still covers every table.
    """
    seeds_override, overrides = split_overrides(overrides)
    runs: dict[str, PlannedRun] = {}
    for grid in load_grid(name):
        for ablation in grid.ablations:
            for i, seed in enumerate(seeds_override or grid.seeds):
                try:
                    cfg = compose(ablation, [*grid.overrides, *overrides, f"seed={seed}"])
                    if i == 0:  # seeds change nothing else that validate() checks
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
        return "\n".join(lines)


def run_grid(name: str, overrides: Sequence[str] = (), out=sys.stdout) -> GridReport:
    """Run every run of grid ``name`` not yet done; return what was trained, skipped and failed."""
    from .train import run_experiment  # Lightning loads only once the grid is known to be valid

    runs = plan(name, overrides)  # composes and validates every run (data included) first
    results_dir = runs[0].cfg.results_dir
    done = {r["run_id"] for r in results.finished_rows(results_dir)}
    report = GridReport(skipped=[r for r in runs if r.run_id in done])
    pending = [r for r in runs if r.run_id not in done]
    print(f"grid {name}: {len(runs)} runs, {len(report.skipped)} already done, {len(pending)} to train",
          file=out, flush=True)
    started, count = time.time(), len(pending)
    while pending:
        busy = []
        for run in pending:
            _print_progress(run, report, count, started, out)
            try:
                row = run_experiment(run.cfg, callbacks=progress_callbacks(run.cfg))
            except Exception as err:  # noqa: BLE001 - run_experiment wrote the failed row; the grid goes on
                report.failed.append((run, f"{type(err).__name__}: {err}"))
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(f"{__doc__}\ngrids: {', '.join(grid_names())}")
        return 0
    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        print(f"usage: python -m cpvt_lab.grid NAME [overrides...]\ngrids: {', '.join(grid_names())}",
              file=sys.stderr)
        return 2
    try:
        report = run_grid(argv[0], argv[1:])
    except (GridError, ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
