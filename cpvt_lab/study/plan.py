"""A study's runs, planned: each run composed and given its run_id, in the study's order, without the data.

A plan is what the runs are, composition plus run_id, and needs no archive: ``python -m cpvt_lab.study`` says
where a study stands on a fresh clone. Every value is checked while planning except the data, which
``check_data`` looks at before the first run trains (the sweep, before it submits anything).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..ablations import SpecError, Study, check_seeds, load_grid
from ..config import compose_seeds
from ..fingerprint import run_id
from ..validation import check_data, validate


@dataclass
class PlannedRun:
    ablation: str
    seed: int
    cfg: DictConfig
    run_id: str
    grids: list[str] = field(default_factory=list)
    setting: Optional[str] = None  # a sweep's runs: which of its grid's settings

    def what(self) -> str:
        """The ablation, and for a sweep's run its setting."""
        return f"{self.ablation} ({self.setting})" if self.setting else self.ablation

    def in_grid(self, grid: str) -> bool:
        """Whether the run belongs to ``grid`` (a grid with settings: to any of them)."""
        return any(g == grid or g.startswith(f"{grid}:") for g in self.grids)

    def label(self) -> str:
        return f"{self.what()} seed={self.seed} [{self.run_id}]"


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """The run-config overrides, less those the plan sets itself (``seed``, ``ablation``)."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in ("seed", "ablation"):
            raise SpecError(f"{key}: set by the grid; use seeds=[...] to choose seeds (got {item!r})")
        if key == "seeds":  # a library caller's slip: the command line takes it out
            raise SpecError(f"seeds: the grid's own option, not a run-config override; pass seeds= (got {item!r})")
    return list(overrides)


def plan_grid(name: str, overrides: Sequence[str] = (), seeds: Any = None, check: bool = True,
              composed: Optional[dict[tuple, tuple[DictConfig, str]]] = None) -> list[PlannedRun]:
    """Every run of the grid, composed once per run_id; ``seeds`` (if given) replace the grid's. With ``check``
    every value but the data is checked (``validation.validate``). ``composed`` keeps the configs composed so far
    by their ablation and overrides, so that grids sharing a run compose it once.

    Seed by seed (in grid order within a seed), so that a first seed of every cell is
    done before any second: stopped early, a grid still covers every table.
    """
    seeds_override = None if seeds is None else check_seeds(seeds, "seeds")
    overrides = check_overrides(overrides)
    composed = {} if composed is None else composed
    runs: dict[str, PlannedRun] = {}
    for grid in load_grid(name):
        for ablation in grid.ablations:
            setting = (ablation, *grid.overrides, *overrides, *grid.changes)
            seeds = list(seeds_override or grid.seeds)
            if missing := [seed for seed in seeds if (*setting, f"seed={seed}") not in composed]:
                try:
                    configs = compose_seeds(ablation, list(setting[1:]), missing)
                    if check:  # seeds change nothing else that validate() checks
                        validate(configs[0], data=False)
                except (HydraException, OmegaConfBaseException) as err:
                    raise SpecError(f"grid {grid.name}, ablation {ablation}: {err}") from None
                composed.update({(*setting, f"seed={seed}"): (cfg, run_id(cfg)) for seed, cfg in zip(missing, configs)})
            for seed in seeds:
                cfg, rid = composed[(*setting, f"seed={seed}")]
                run = runs.setdefault(rid, PlannedRun(ablation, seed, cfg, rid, setting=grid.setting))
                if grid.name not in run.grids:
                    run.grids.append(grid.name)
    return sorted(runs.values(), key=lambda run: run.seed)


def plan_study(study: Study, extra: Sequence[str] = (), check: bool = True) -> list[PlannedRun]:
    """Every run of the study once, grid by grid in its order (within a grid, seed by seed), into its results
    folder. ``extra`` overrides may change how runs train (data paths, compile) but not which runs they are."""
    where = [f"results_dir={study.results_dir}"]
    runs = _union(study, [*study.overrides, *study.runtime, *where, *extra], check)
    if extra:  # the runs without the extra overrides
        reference = {r.run_id for r in _union(study, [*study.overrides, *where], check=False)}
        if {r.run_id for r in runs} != reference:
            changing = [o for o in extra if {r.run_id for r in _union(study, [*study.overrides, *where, o],
                                                                      check=False)} != reference]
            raise SpecError(f"{', '.join(changing) or ' '.join(extra)}: changes which runs these are (their run_id); "
                            f"the study's runs are fixed by the overrides of study {study.name} "
                            f"({' '.join(study.overrides)}); data paths, compile and the like may be given")
    return runs


def _union(study: Study, overrides: Sequence[str], check: bool) -> list[PlannedRun]:
    runs: dict[str, PlannedRun] = {}
    composed: dict[tuple, tuple[DictConfig, str]] = {}  # a run shared by several grids is composed once
    for grid in study.grids:
        for run in plan_grid(grid, overrides, None if study.seeds is None else list(study.seeds), check=check,
                             composed=composed):
            kept = runs.setdefault(run.run_id, run)
            kept.grids.extend(g for g in run.grids if g not in kept.grids)
    return list(runs.values())


def check_runs_data(runs: Sequence[PlannedRun]) -> None:
    """The data of every distinct data config among ``runs``, looked at once each (``validation.check_data``)."""
    seen = set()
    for run in runs:
        data = OmegaConf.to_container(run.cfg.data, resolve=True)
        key = str({k: v for k, v in data.items() if k not in ("seed", "train_size", "eval_sizes")})
        if key not in seen:
            seen.add(key)
            check_data(run.cfg)
