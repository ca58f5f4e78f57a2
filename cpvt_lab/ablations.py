"""The ablations folder beyond the single ablations: grid files (``grids/``) and study files (``studies/``).

One lookup for both (a name in its folder, or the path of a YAML file), one check of what a file holds and one
error, ``SpecError``, whose message names the key and what is allowed. A grid names ablations, seeds and sizes
(``include:`` unions other grids; ``settings:`` names sets of overrides, each its own plain grid, as a sweep's
settings are); a grid with a ``table:`` id is also one of the paper's tables (its keys are
read by ``cpvt_lab.paper``), its ``ablations`` a mapping of each row to the row of ``reference_numbers.csv`` it
reproduces (``[study, model, variant]``, or nothing): one line per row of the table; its ``compare``, the
table's own questions, each two of its cells (``ablation@k``). A study names grids in order of priority, seeds,
what the runs are (``overrides``, their run_id), how they train (``runtime``) and where their rows and tables
go. Nothing here composes a run or looks at data: ``cpvt_lab.study.plan`` does the one, the runner the other.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from .config import ABLATIONS_DIR, ablation_names
from .results import DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR

FOLDERS = {"grid": ABLATIONS_DIR / "grids", "study": ABLATIONS_DIR / "studies"}
# what makes a grid one of the paper's tables
TABLE_KEYS = ("table", "title", "shows", "paper_px", "measured", "compare")
GRID_KEYS = {"ablations", "seeds", "train_size", "eval_sizes", "overrides", "include", "settings", *TABLE_KEYS}
STUDY_KEYS = {"grids": list, "seeds": list, "overrides": list, "runtime": list, "results_dir": str, "tables_dir": str,
              "analysis_images": int}
# longer_than: the study whose verdicts this one checks by training its ablations longer
OPTIONAL_STUDY_KEYS = {"longer_than": str}


class SpecError(ValueError):
    """A grid or study name, or file, that cannot work; the message names the key and what is allowed."""


def names(kind: str) -> list[str]:
    """The grids (``kind="grid"``) or studies (``"study"``) of the ablations folder."""
    return sorted(p.stem for p in FOLDERS[kind].glob("*.yaml"))


def find(kind: str, name: str) -> Path:
    """A grid's or study's YAML file: a name in its folder, or the path of a YAML file."""
    path = FOLDERS[kind] / f"{name}.yaml"
    if path.is_file():
        return path
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return Path(name)
    raise SpecError(f"{kind}: unknown {kind} {name!r}; valid: {', '.join(names(kind))} "
                    f"(or the path of a {kind} YAML file)")


def read(kind: str, name: str, allowed: set[str]) -> tuple[Path, dict[str, Any]]:
    """(the file, its mapping), refused when it is no YAML mapping or holds a key not ``allowed``."""
    path = find(kind, name)
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SpecError(f"{kind} {name!r}: {path} is not valid YAML ({err})") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{kind} {name!r}: {path} must hold a mapping of {sorted(allowed)}")
    unknown = set(spec) - allowed
    if unknown:
        raise SpecError(f"{kind} {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return path, spec


def check_seeds(seeds: Any, where: str) -> tuple[int, ...]:
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                      for s in seeds)):
        raise SpecError(f"{where}: must be a non-empty list of non-negative integers, e.g. [0, 1], got {seeds!r}")
    return tuple(dict.fromkeys(seeds))


@dataclass(frozen=True)
class Grid:
    """One plain grid: ablations x seeds, each run composed with ``overrides``; ``table``: the keys that make it
    one of the paper's tables (``TABLE_KEYS``), or None; ``setting``: which of its file's settings it is, and
    ``changes``, that setting's overrides: they come last, after a study's and a command line's (a setting is a
    change to the recipe those give)."""
    name: str
    ablations: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    table: Optional[dict[str, Any]] = None
    setting: Optional[str] = None
    changes: tuple[str, ...] = ()


def load_grid(name: str, _seen: tuple[str, ...] = ()) -> list[Grid]:
    """The grid ``name`` as a list of plain grids (one, or several for a grid that includes others)."""
    path, spec = read("grid", name, GRID_KEYS)
    name = path.stem
    if name in _seen:
        raise SpecError(f"grid {name!r} includes itself (via {' -> '.join(_seen)})")
    grids = [g for child in spec.get("include", []) for g in load_grid(child, (*_seen, name))]
    if "ablations" in spec:
        ablations, paper = _ablations(name, spec["ablations"])
        overrides = list(spec.get("overrides", []))
        if "train_size" in spec:
            overrides.insert(0, f"data.train_size={spec['train_size']}")
        if "eval_sizes" in spec:
            overrides.insert(1, f"data.eval_sizes=[{','.join(str(s) for s in spec['eval_sizes'])}]")
        table = {**{k: spec[k] for k in TABLE_KEYS if k in spec}, "paper": paper} if "table" in spec else None
        if table and "compare" in spec:
            sizes = len(spec.get("eval_sizes", [None]))
            table["compare"] = _comparisons(name, spec["compare"], ablations, sizes)
        seeds = check_seeds(spec.get("seeds", [0]), f"grid {name!r}: seeds")
        if "settings" in spec:  # one plain grid per setting, named grid:setting
            grids.extend(Grid(f"{name}:{setting}", ablations, seeds, tuple(overrides), table, setting, changes)
                         for setting, changes in _settings(name, spec).items())
        else:
            grids.append(Grid(name, ablations, seeds, tuple(overrides), table))
    if not grids:
        raise SpecError(f"grid {name!r} names no ablations and includes no grid")
    return grids


def _ablations(name: str, listed: Any) -> tuple[tuple[str, ...], dict[str, list[str]]]:
    """(the ablations, in order; the paper row of each that has one): a list, or a mapping of each to its row."""
    rows = listed if isinstance(listed, dict) else {}
    if not isinstance(listed, (list, dict)) or not listed:
        raise SpecError(f"grid {name!r}: ablations must be a list, or a mapping of each to its paper row; got {listed!r}")
    bad = [a for a in listed if a not in ablation_names()]
    if bad:
        raise SpecError(f"grid {name!r}: unknown ablations {bad}; valid: {', '.join(ablation_names())}")
    for ablation, row in rows.items():
        if row is not None and not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
            raise SpecError(f"grid {name!r}: ablations.{ablation}: a paper row is [study, model, variant] (a row of "
                            f"reference_numbers.csv) or nothing, got {row!r}")
    return tuple(listed), {a: row for a, row in rows.items() if row is not None}


def _settings(name: str, spec: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """A grid's ``settings``: a mapping of each setting's name to its overrides (a list of KEY=VALUE, maybe empty)."""
    listed = spec["settings"]
    if "table" in spec:
        raise SpecError(f"grid {name!r}: settings are a sweep's, a paper table (table:) has none")
    if not isinstance(listed, dict) or not listed:
        raise SpecError(f"grid {name!r}: settings must map each setting's name to its overrides, e.g. "
                        f"{{nomix: [optim.mixup=0, optim.cutmix=0], recipe: []}}, got {listed!r}")
    for setting, overrides in listed.items():
        if not (isinstance(setting, str) and setting.replace("_", "").replace("-", "").isalnum()):
            raise SpecError(f"grid {name!r}: settings: {setting!r} is no name (letters, digits, - and _)")
        if not (isinstance(overrides, list) and all(isinstance(o, str) and "=" in o for o in overrides)):
            raise SpecError(f"grid {name!r}: settings.{setting}: a list of KEY=VALUE overrides, got {overrides!r}")
    return {setting: tuple(overrides) for setting, overrides in listed.items()}


def _comparisons(name: str, listed: Any, ablations: tuple[str, ...], sizes: int) -> list[tuple]:
    """A table's questions, each ``[text, "a@k", "b@k"]``: A - B between the top-1 of two of the grid's ablations,
    each at the k-th of its test sizes (0: the training size), as ``(text, (a, k), (b, k))``."""
    where = f"grid {name!r}: compare"
    if not isinstance(listed, list):
        raise SpecError(f"{where}: must be a list of [text, a@k, b@k], got {listed!r}")
    parsed = []
    for entry in listed:
        if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, str) for x in entry)):
            raise SpecError(f"{where}: each question is [text, a@k, b@k] (e.g. [PEG beats RoPE, peg@0, "
                            f"rope_axial@0]), got {entry!r}")
        cells = []
        for cell in entry[1:]:
            ablation, _, rank = cell.partition("@")
            if ablation not in ablations or not rank.isdigit() or int(rank) >= sizes:
                raise SpecError(f"{where}: {cell!r} is not ablation@k with an ablation of this grid "
                                f"({', '.join(ablations)}) and k a test size's rank, 0 to {sizes - 1}")
            cells.append((ablation, int(rank)))
        parsed.append((entry[0], *cells))
    return parsed


def grid_ablations(name: str) -> tuple[str, ...]:
    """The ablations of a grid, in its order, each once (the attention grid's are the paper's figures)."""
    return tuple(dict.fromkeys(a for grid in load_grid(name) for a in grid.ablations))


@dataclass(frozen=True)
class Study:
    """Grids in order of priority, the seeds of every one, what the runs are and how they train, where their rows
    and tables go. A study file states one; ``one_grid`` makes one of a grid and a command line."""
    name: str  # as given: a name in ablations/studies/, a file's path, or a grid's name
    grids: tuple[str, ...]
    seeds: Optional[tuple[int, ...]]  # None: each grid's own
    overrides: tuple[str, ...]  # these make the runs' identity (their run_id)
    runtime: tuple[str, ...]    # these only say how they are trained
    results_dir: str
    tables_dir: str
    analysis_images: int = 0
    longer_than: Optional[str] = None  # a study's name: its tables then say which of its verdicts hold here

    def command(self) -> str:
        """The one command that continues this study from where it stands."""
        return "python -m cpvt_lab.study continue" + ("" if self.name == "cifar" else f" study={self.name}")


def load_study(name: str) -> Study:
    """The study ``name`` (a file in ``ablations/studies/``, or the path of a study YAML file)."""
    path, spec = read("study", name, {*STUDY_KEYS, *OPTIONAL_STUDY_KEYS})
    if not set(STUDY_KEYS) <= set(spec):
        raise SpecError(f"study {name!r}: {path} must hold the keys {sorted(STUDY_KEYS)} (and may hold "
                        f"{sorted(OPTIONAL_STUDY_KEYS)})")
    for key, kind in {**STUDY_KEYS, **OPTIONAL_STUDY_KEYS}.items():
        if key in spec and (not isinstance(spec[key], kind) or isinstance(spec[key], bool)):
            raise SpecError(f"study {name!r}: {key} must be a {kind.__name__}, got {spec[key]!r}")
    for grid in spec["grids"]:
        find("grid", grid)
    if "longer_than" in spec:
        find("study", spec["longer_than"])
    return Study(name, tuple(spec["grids"]), check_seeds(spec["seeds"], f"study {name!r}: seeds"),
                 tuple(spec["overrides"]), tuple(spec["runtime"]), spec["results_dir"], spec["tables_dir"],
                 spec["analysis_images"], spec.get("longer_than"))


def shorter_study_folder(study: Study) -> Optional[str]:
    """The results folder of the study that ``study`` trains longer (``longer_than``), if it holds rows."""
    if not study.longer_than:
        return None
    shorter = load_study(study.longer_than).results_dir
    return shorter if (Path(shorter) / "runs.jsonl").is_file() else None


def study_of_folder(results_dir: str | Path) -> Optional[Study]:
    """The study whose results folder ``results_dir`` is (paths as the commands take them, from here), if any."""
    here = Path(results_dir).resolve()
    return next((s for s in map(load_study, names("study")) if Path(s.results_dir).resolve() == here), None)


def one_grid(name: str, overrides: tuple[str, ...] = (), seeds: Any = None) -> Study:
    """The grid ``name`` as a study: its own seeds (or ``seeds``), the command line's overrides as what the runs are,
    its rows where the overrides' ``results_dir`` says (the run config's default otherwise)."""
    load_grid(name)  # a bad grid fails here, before any run is composed
    seeds = check_seeds(seeds, "seeds") if seeds is not None else None
    given = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+") == "results_dir"]
    return Study(name, (name,), seeds, tuple(o for o in overrides if not o.lstrip("+").startswith("results_dir=")),
                 (), given[-1] if given else DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR)
