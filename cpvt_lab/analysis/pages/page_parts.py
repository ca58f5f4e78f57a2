"""What every generated page is made of: its opening, cells of seeds, and sections with their provenance.

Every page opens with the folder it was read from and the command that regenerates it, and
every cell of seeds is ``mean ± std`` (``mean_std``), with the 95% interval of its mean where
the page gives one (``with_interval``), pooled only within one setting (``settings``); each
section's heading names the setting (and, where one label covers several, the recipe that
tells them apart) and its provenance line names the runs, devices, commands, code (the commits
the runs were made from, and the runs made from a checkout with uncommitted changes), training
recipe and the runs left out as unstable or not judged for want of a curve.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import pandas as pd

from ...results import RESULTS_FILE
from ..frames import UNRECORDED
from ..settings import SECTION, setting_label

# What each scale is, said in every section of its runs (``{epochs}``: the section's): none of them is the paper's
# ImageNet setting
SCALE_NOTES = {
    "smoke": "**Smoke scale: these runs check the pipeline and measure nothing.**",
    "cpu": "**CPU scale: a width-48, 12-block ViT (patch 4) trained {epochs} epochs at 24 px on all of CIFAR-10 on a "
           "2-core CPU, not the paper's ImageNet setting (DeiT-Ti, 300 epochs at 224 px): a verdict here is a "
           "finding at this scale.**",
    "cifar": "**CIFAR-10 scale: ViT-Ti/4 on CIFAR-10 at 24 px, not the paper's ImageNet setting (DeiT-Ti, "
             "300 epochs at 224 px): a verdict here is a finding at this scale.**",
}


def tables_command(results_dir: str | Path) -> str:
    """The command that writes this results folder's tables where they are: a committed folder ``results/NAME``
    has its tables in ``paper_tables/NAME``; any other folder, in the command's default (``outputs/tables``)."""
    folder = Path(results_dir)
    command = f"python -m cpvt_lab.tables results_dir={folder.as_posix()}"
    if len(folder.parts) == 2 and folder.parts[0] == "results":
        command += f" tables_dir=paper_tables/{folder.name}"
    return command


def regenerated_from(results_dir: str | Path, source: str = RESULTS_FILE) -> str:
    """The opening of every generated table: the folder it was read from (several are committed), and the command."""
    return f"Regenerated from `{Path(results_dir).as_posix()}/{source}` by `{tables_command(results_dir)}`"


def mean_std(mean: float, std: float, n: int, fmt: str = ".2f") -> str:
    """A cell of seeds: ``mean ± std``, or the mean alone when one seed gives no spread."""
    if pd.isna(mean):
        return "—"
    return format(mean, fmt) if n < 2 or pd.isna(std) else f"{mean:{fmt}} ± {std:{fmt}}"


def with_interval(mean: float, std: float, n: int, low: float, high: float) -> str:
    """A cell of seeds with the 95% interval of its mean: ``mean ± std [low, high]`` (one seed gives none)."""
    cell = mean_std(mean, std, n)
    return cell if n < 2 or pd.isna(low) else f"{cell} [{low:.2f}, {high:.2f}]"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def setting_heading(setting: dict, extra: Sequence[str] = (), runs: Optional[pd.DataFrame] = None) -> list[str]:
    """A section's heading (its ``setting`` label, else one made of its ``SETTING``), what its scale is, and (given ``runs``, as ``frames.load_runs`` gives them) the provenance of those runs."""
    label = setting["setting"] if isinstance(setting.get("setting"), str) else setting_label(setting)
    parts = [f"## {label}" + "".join(f" · {k} {setting[k]}" for k in extra), ""]
    if setting["scale"] in SCALE_NOTES:
        parts += [SCALE_NOTES[setting["scale"]].format(epochs=setting.get("epochs")), ""]
    return parts + ([provenance(runs), ""] if runs is not None and len(runs) else [])


def in_section(frame: pd.DataFrame, setting: dict) -> pd.DataFrame:
    """The lines of ``frame`` in the section of ``setting`` (its ``SECTION`` keys)."""
    return frame[(frame[SECTION] == pd.Series({k: setting[k] for k in SECTION})).all(axis=1)]


def sections(frame: pd.DataFrame, extra: Sequence[str], render: Callable[[pd.DataFrame], list[str]],
             runs: Optional[pd.DataFrame] = None) -> list[str]:
    """One section per setting (and ``extra`` keys) of ``frame``, each rendered by ``render(lines)``."""
    keys, parts = [*SECTION, *extra], []
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        mine = runs[runs.run_id.isin(group.run_id)] if runs is not None else None
        setting = {**dict(zip(keys, key)), "setting": group.setting.iloc[0]}
        parts += setting_heading(setting, extra, mine) + render(group)
    return parts


def provenance(runs: pd.DataFrame) -> str:
    """Where a table's numbers come from: seeds, devices, the commands that made them, the training recipe, and
    which runs were left out as unstable or could not be judged (no curve)."""
    seeds = ", ".join(str(s) for s in sorted(runs.seed.unique()))
    devices = "; ".join(sorted(runs.device.dropna().unique())) or "not recorded"
    commands = ", ".join(f"`{c}`" for c in sorted(runs.command.dropna().unique())) or "not recorded"
    each = runs.drop_duplicates("run_id")
    recipes = each.groupby("recipe").run_id.nunique()
    recipe = ("; ".join(recipes.index) if len(recipes) == 1
              else "; ".join(f"{n} runs: {r}" for r, n in recipes.items()))
    said = (f"{len(each)} runs, seeds {seeds}, on {devices}; made by {commands}. {code_identity(each)} "
            f"Recipe: {recipe or 'not recorded'}.")
    unstable = each[each.unstable]
    if len(unstable):
        said += (f" Left out of every cell as unstable: {plural(len(unstable), 'run')} ("
                 + "; ".join(f"{r.ablation} seed {r.seed}, {r.run_id}: {r.instability}" for r in unstable.itertuples())
                 + ").")
    if (~each.curve).any():
        said += f" No curve: {plural(int((~each.curve).sum()), 'run')} recorded none, so not judged for stability."
    return said


DIRTY = "-dirty"  # what a row's git_commit ends with when its checkout had uncommitted changes


def _short(commit: str) -> str:
    return commit[:7] + (DIRTY if commit.endswith(DIRTY) else "")


def code_identity(each: pd.DataFrame) -> str:
    """Which code made the runs (one line per run, ``git_commit`` and ``code_diff`` as recorded): the commits, first
    and last by when the runs finished, and each run made from a checkout with uncommitted changes, flagged with
    the hash of those changes where the row records it."""
    if "git_commit" not in each or each.git_commit.isna().all():
        return "Code: not recorded."
    known = each[each.git_commit.notna()].sort_values("finished_at", na_position="first", kind="stable")
    commits = known.git_commit.str.removesuffix(DIRTY)
    unrecorded = len(each) - len(known)
    said = (f"Code: commit {_short(commits.iloc[0])} for every run." if commits.nunique() == 1 else
            f"Code: {commits.nunique()} commits, from {_short(commits.iloc[0])} (first run) to "
            f"{_short(commits.iloc[-1])} (last run).")
    if unrecorded:
        said = said[:-1] + f"; {plural(unrecorded, 'run')} recorded none."
    # a checkout whose package had changes: a row that records them says so by their hash (a null code_diff: the
    # changes lay outside the package, in the results files a running study writes); an older row by -dirty alone
    dirty = known[known.git_commit.str.endswith(DIRTY) & known.code_diff.notna()]
    if len(dirty):
        def changes(diff) -> str:
            return ", changes not recorded" if diff == UNRECORDED else f", changes {diff}"
        said += (f" ⚠ {plural(len(dirty), 'run')} made from a checkout with uncommitted changes: "
                 + "; ".join(f"{r.ablation} seed {r.seed} ({_short(r.git_commit)}{changes(r.code_diff)})"
                             for r in dirty.itertuples()) + ".")
    return said


def wide_cells(frame: pd.DataFrame, index: list[str], column: str, value: str, fmt: str) -> pd.DataFrame:
    """Wide table: ``index`` down, ``column`` across, each cell ``mean_std`` over runs, and n distinct seeds."""
    # groupby, not pivot_table: pivot_table drops the std column when every cell has one run (all NaN)
    agg = frame.groupby([*index, column], sort=False).agg(mean=(value, "mean"), std=(value, "std"),
                                                          n=("seed", "nunique")).reset_index()
    agg["cell"] = [mean_std(m, s, n, fmt) for m, s, n in zip(agg["mean"], agg["std"], agg.n)]
    wide = agg.pivot(index=index, columns=column, values="cell")
    wide.columns = [f"{column} {c}" for c in wide.columns]
    return wide.join(agg.groupby(index, sort=False).n.max()).reset_index()


def largest_size_sentence(cells: pd.DataFrame, intervals: str = "claims.md says which gaps the intervals decide"
                          ) -> Optional[str]:
    """One plain sentence on a section's cells (``frames.table_cells`` of one section): which row keeps the most
    and which the least of its top-1 from the training size to the largest test size without fine-tuning, by the
    means over seeds, and (``intervals``) where to read how sure that is. None when fewer than two rows have runs
    at both sizes."""
    largest = int(cells.size_rank.max()) if len(cells) else 0
    if largest < 1:
        return None
    at = {rank: cells[cells.size_rank == rank].set_index("ablation_label") for rank in (0, largest)}
    kept = at[largest][~at[largest].finetuned.astype(bool)]
    change = (kept["mean"] - at[0]["mean"]).dropna().sort_values()
    if len(change) < 2:
        return None
    seeds = at[0].n.reindex(change.index)
    n = f"{int(seeds.min())} seeds" if seeds.min() == seeds.max() else f"{int(seeds.min())} to {int(seeds.max())} seeds"
    best, worst = change.index[-1], change.index[0]
    return (f"What the data shows: from the training size ({int(at[0].size_px.iloc[0])} px) to the largest test size "
            f"({int(at[largest].size_px.iloc[0])} px) without fine-tuning, of the {len(change)} rows with runs at both "
            f"`{best}` keeps the most of its top-1 ({change[best]:+.2f} points) and `{worst}` the least "
            f"({change[worst]:+.2f}); means over {n}, and {intervals}.")
