"""Result rows: one JSON line per finished (or failed) run in ``<results_dir>/runs.jsonl``.

Appends happen under a file lock with a single write, so concurrent runners
never interleave or tear lines; a folder's rows are read through
``row_check.read_checked``, which names every line that is no row (a line torn by a crash, a row whose
run_id is not its config's) and leaves it out, so a folder that reads badly is reported, never fatal.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from filelock import FileLock, Timeout

from .row_check import BadLine, read_checked

RESULTS_FILE = "runs.jsonl"
# A user's rows and the tables made from them go under outputs/, which git ignores, so that running
# never changes the committed reference folders (results/<study>/, paper_tables/). conf/config.yaml
# states the same results_dir for runs; a test holds the two together.
DEFAULT_RESULTS_DIR = "outputs/results"
DEFAULT_TABLES_DIR = "outputs/tables"


def top1_line(row: dict[str, Any]) -> str:
    """A row's top-1 at every test size, smallest first, as every command prints it."""
    return "  ".join(f"top1@{s}={v:.2f}%" for s, v in sorted(row["top1"].items(), key=lambda kv: int(kv[0])))


def results_path(results_dir: str | Path, name: str = RESULTS_FILE) -> Path:
    return Path(results_dir) / name


def append_row(results_dir: str | Path, row: dict[str, Any], name: str = RESULTS_FILE) -> None:
    """One JSON line appended to ``<results_dir>/<name>`` (the run rows, or another command's records)."""
    path = results_path(results_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True, default=str) + "\n").encode()
    with FileLock(str(path) + ".lock"):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not _ends_with_newline(path):
                os.write(fd, b"\n")  # seal a torn line left by a crash
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def iter_rows(results_dir: str | Path, name: str = RESULTS_FILE) -> Iterator[dict[str, Any]]:
    """The JSON objects of a records file, unchecked (another command's records; run rows: ``Rows``)."""
    path = results_path(results_dir, name)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            if isinstance(row, dict):
                yield row


def read_rows(results_dir: str | Path, status: Optional[str] = "ok") -> list[dict[str, Any]]:
    """The checked rows of a results folder (``Rows``), of one status or (None) all."""
    return [r for r in Rows(results_dir).all if status is None or r.get("status") == status]


def is_result(row: dict[str, Any]) -> bool:
    """A row that can finish its run: ``ok`` and not set aside (``compiled_unchecked``)."""
    return row.get("status") == "ok" and not compiled_unchecked(row)


def compiled_unchecked(row: dict[str, Any]) -> bool:
    """Trained compiled with no check against eager on record (rows from before the guard have no
    ``compile_check``; one that holds null was not checked either): such a row may come from a silently
    wrong compiled gradient (multi-PEG models collapsed so on a GPU), so it is no result."""
    return bool(row.get("config", {}).get("compile")) and not isinstance(row.get("compile_check"), dict)


class Rows:
    """The rows of one results folder, read once by a command and passed down (with those it appended since,
    ``add``), so that planning, training, measuring, tabling and the status all see the same rows."""

    def __init__(self, results_dir: str | Path, rows: Optional[list[dict[str, Any]]] = None):
        self.results_dir = Path(results_dir)
        self.bad: list[BadLine] = []  # the lines of the file that are no row, left out and named
        if rows is None:
            rows, self.bad = read_checked(results_path(results_dir))
        self.all = list(rows)  # every row, failed ones too

    def bad_lines_note(self) -> str:
        """One line per line left out of the folder's rows, for a command to print ("" when there are none)."""
        where = results_path(self.results_dir)
        return "\n".join(f"note: {where} {bad}; left out" for bad in self.bad)

    def add(self, row: dict[str, Any]) -> None:
        """A row written to the folder since it was read (by this command's runs)."""
        self.all.append(row)

    def finished(self) -> list[dict[str, Any]]:
        """The results, the one meaning of "finished" (merge, status, planning and the tables use it): the rows
        that ``is_result``, one per run_id, the latest (an older one is superseded, kept in the file), in the
        order their latest rows were written."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.all:
            if is_result(row):
                latest.pop(row["run_id"], None)  # re-inserted: the order is that of the latest rows
                latest[row["run_id"]] = row
        return list(latest.values())

    def finished_ids(self) -> set[str]:
        return {r["run_id"] for r in self.finished()}

    def set_aside(self) -> list[dict[str, Any]]:
        """``ok`` rows that are not results: trained compiled with no compile check (``compiled_unchecked``)."""
        return [r for r in self.all if r.get("status") == "ok" and compiled_unchecked(r)]


def rows_of(results: "str | Path | Rows") -> Rows:
    """``results`` as rows: as passed down, or read now from a results folder."""
    return results if isinstance(results, Rows) else Rows(results)


def finished_rows(results_dir: str | Path) -> list[dict[str, Any]]:
    return Rows(results_dir).finished()


def find_success(results_dir: str | Path, run_id: str) -> Optional[dict[str, Any]]:
    return next((r for r in finished_rows(results_dir) if r.get("run_id") == run_id), None)


@contextmanager
def claim(results_dir: str | Path, run_id: str) -> Iterator[bool]:
    """Hold ``<results_dir>/claims/<run_id>.lock`` while a run trains; yield False if another process holds it.

    Workers sharing one results_dir (a grid on several hosts, an array job) so never
    train the same run twice at once. The OS drops the lock when its holder dies,
    even by SIGKILL, so a killed run never leaves a stale claim.
    """
    path = Path(results_dir) / "claims" / f"{run_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
