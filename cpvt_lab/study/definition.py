"""A study file (``ablations/studies/<name>.yaml``) and the runs it plans, in its order of priority."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from ..config import ABLATIONS_DIR
from ..grid import GridError, PlannedRun, check_seeds, plan

STUDIES_DIR = ABLATIONS_DIR / "studies"
KEYS = {"grids": list, "seeds": list, "overrides": list, "runtime": list, "results_dir": str, "tables_dir": str,
        "analysis_images": int}


class StudyError(ValueError):
    """A study name or study file that cannot work."""


def study_names() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Study:
    """Grids in order of priority, the seeds of every one, what the runs are and how they are trained."""
    name: str  # as given: a name in ablations/studies/ or a file's path
    grids: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]  # these make the runs' identity (their run_id)
    runtime: tuple[str, ...]    # these only say how they are trained
    results_dir: str
    tables_dir: str
    analysis_images: int

    def command(self) -> str:
        """The one command that continues this study from where it stands."""
        return "python -m cpvt_lab.study continue" + ("" if self.name == "cifar" else f" study={self.name}")


def load_study(name: str) -> Study:
    """The study ``name`` (a file in ``ablations/studies/``, or the path of a study YAML file)."""
    path = STUDIES_DIR / f"{name}.yaml"
    if not path.is_file():
        path = Path(name)
        if not (name.endswith((".yaml", ".yml")) and path.is_file()):
            raise StudyError(f"study: unknown study {name!r}; valid: {', '.join(study_names())} "
                             "(or the path of a study YAML file)")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise StudyError(f"study {name!r}: {path} is not valid YAML ({err})") from None
    if not isinstance(spec, dict) or set(spec) != set(KEYS):
        raise StudyError(f"study {name!r}: {path} must hold exactly the keys {sorted(KEYS)}")
    for key, kind in KEYS.items():
        if not isinstance(spec[key], kind) or isinstance(spec[key], bool):
            raise StudyError(f"study {name!r}: {key} must be a {kind.__name__}, got {spec[key]!r}")
    try:
        seeds = check_seeds(spec["seeds"], f"study {name!r}: seeds")
    except GridError as err:
        raise StudyError(str(err)) from None
    return Study(name, tuple(spec["grids"]), seeds, tuple(spec["overrides"]), tuple(spec["runtime"]),
                 spec["results_dir"], spec["tables_dir"], spec["analysis_images"])


def planned_runs(study: Study, extra: Sequence[str] = ()) -> list[PlannedRun]:
    """Every run of the study once, grid by grid in its order (within a grid, seed by seed), into its results
    folder. ``extra`` overrides may change how runs train (data paths, compile) but not which runs they are."""
    where = [f"results_dir={study.results_dir}"]
    runs = _union(study, [*study.overrides, *study.runtime, *where, *extra])
    if extra:  # the runs without the extra overrides, planned without the data (which only the extras may give)
        reference = {r.run_id for r in _union(study, [*study.overrides, *where], check=False)}
        if {r.run_id for r in runs} != reference:
            changing = [o for o in extra if {r.run_id for r in _union(study, [*study.overrides, *where, o],
                                                                      check=False)} != reference]
            raise StudyError(f"{', '.join(changing) or ' '.join(extra)}: changes which runs these are (their run_id); "
                             f"the study's runs are fixed by the overrides of study {study.name} "
                             f"({' '.join(study.overrides)}); data paths, compile and the like may be given")
    return runs


def _union(study: Study, overrides: Sequence[str], check: bool = True) -> list[PlannedRun]:
    runs: dict[str, PlannedRun] = {}
    for grid in study.grids:
        for run in plan(grid, overrides, list(study.seeds), check=check):
            kept = runs.setdefault(run.run_id, run)
            kept.grids.extend(g for g in run.grids if g not in kept.grids)
    return list(runs.values())

