"""A study's results folder between machines: packed after every run where it trains (a slot killed at its time
limit keeps what it finished), and merged where it is kept, adding what is new and replacing nothing."""
from __future__ import annotations

import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import replacing
from ..results import RESULTS_FILE, Rows, append_row, read_rows, results_path

KEPT = ("analysis",)  # besides the rows: the measurements made while the weights existed (attention maps included)


def pack(results_dir: str | Path, target: str | Path) -> Path:
    """``results_dir`` (rows and measurements; no locks) as one .tar.gz, written whole or not at all."""
    results_dir = Path(results_dir)
    with replacing(target) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for path in [results_path(results_dir), *(results_dir / k for k in KEPT)]:
            if path.exists():
                tar.add(path, arcname=path.relative_to(results_dir).as_posix())
    return Path(target)


@dataclass
class Merged:
    rows: int = 0  # rows added
    already: int = 0  # rows the folder held already (the same run_id and status finished alike, or an ok run_id)
    files: list[str] = field(default_factory=list)  # measurement files added
    kept: list[str] = field(default_factory=list)  # present here already, left as they were

    def report(self, source: str, results_dir: str | Path) -> str:
        return (f"merged {source} into {results_dir}: {self.rows} rows added, {self.already} already there; "
                f"{len(self.files)} measurement files added, {len(self.kept)} already there (kept)")


def merge(source: str | Path, results: str | Path | Rows) -> Merged:
    """Add what ``source`` (a packed .tar.gz, or a results folder) holds and the results folder lacks (``results``:
    the folder, or its rows as a command read them, to which the rows added are added).

    A row is added unless the folder holds it already (same run_id, status and finish time) or already has a
    finished row of that run_id (a run is trained once; the first result stays). Files under ``analysis/`` are copied
    only where none of that name exists. Nothing is overwritten or removed.
    """
    source = Path(source)
    with tempfile.TemporaryDirectory() as scratch:
        if source.is_file():
            with tarfile.open(source) as tar:
                tar.extractall(scratch, filter="data")
            folder = Path(scratch)
        else:
            folder = source
        if not (results_path(folder).is_file() or any((folder / k).is_dir() for k in KEPT)):
            raise FileNotFoundError(f"{source} holds no {RESULTS_FILE} or analysis/")
        return _merge_folder(folder, results if isinstance(results, Rows) else Rows(results))


def _merge_folder(folder: Path, rows: Rows) -> Merged:
    merged, results_dir, here = Merged(), rows.results_dir, rows.all
    seen = {_key(r) for r in here}
    finished = {r["run_id"] for r in here if r.get("status") == "ok"}
    for row in read_rows(folder, status=None):
        if _key(row) in seen or (row.get("status") == "ok" and row["run_id"] in finished):
            merged.already += 1
            continue
        append_row(results_dir, row)
        rows.add(row)
        seen.add(_key(row))
        if row.get("status") == "ok":
            finished.add(row["run_id"])
        merged.rows += 1
    for kept in KEPT:
        for path in sorted((folder / kept).rglob("*")):
            if not path.is_file() or path.suffix in (".lock", ".tmp"):
                continue
            relative = path.relative_to(folder)
            target = results_dir / relative
            if target.exists():
                merged.kept.append(relative.as_posix())
                continue
            with replacing(target) as tmp:
                shutil.copyfile(path, tmp)
            merged.files.append(relative.as_posix())
    return merged


def _key(row: dict) -> tuple:
    return row.get("run_id"), row.get("status"), row.get("finished_at")
