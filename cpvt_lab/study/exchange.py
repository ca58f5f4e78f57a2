"""A study's results folder between machines: packed after every run where it trains (a slot killed at its time
limit keeps what it finished), and merged where it is kept, as one transaction that adds what is new and
replaces nothing.

Nothing that comes from elsewhere is trusted: every incoming line is parsed and checked (``row_check``: fields,
types, its run_id against its config, its data) and every archive member looked at before anything is written.
A damaged or forged archive is refused whole, naming each line or member, and leaves the folder as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from ..atomic import replacing
from ..cli import UsageError
from ..results import RESULTS_FILE, Rows, is_result, results_path, top1_line
from ..row_check import read_numbered

# besides the rows: the measurements made while the weights existed (attention maps included), and every test
# image's predicted class (predictions.py)
KEPT = ("analysis", "predictions")
SUFFIX = ".tar.gz"
SKIPPED_SUFFIXES = (".lock", ".tmp")  # another process's work in progress, never a result


class ExchangeError(UsageError):
    """A pack target or merge source that cannot be used; the message names it and what is wrong."""


def check_pack_target(target: str | Path, key: str = "pack") -> Path:
    """Refuse, before any run trains, a ``pack=`` target that is no .tar.gz, that holds something pack did not
    write (``runs.jsonl``, a folder, another archive), or whose folder cannot be written."""
    target = Path(target)
    if not target.name.endswith(SUFFIX) or target.name == SUFFIX:
        raise ExchangeError(key, f"must name a {SUFFIX} file to write the results folder into, got {str(target)!r}")
    if target.exists() or target.is_symlink():
        if not target.is_file() or target.is_symlink() or _pack_layout_problem(target):
            raise ExchangeError(key, f"{target} exists and is not a packed results folder; pack= never overwrites "
                                     "what it did not write: choose another name")
    folder = target.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise ExchangeError(key, f"{str(target)!r} cannot be written ({folder} is "
                                 f"{'not a folder' if not folder.is_dir() else 'read-only'})")
    return target


def pack(results_dir: str | Path, target: str | Path) -> Path:
    """``results_dir`` (rows, measurements and predictions; no locks) as one .tar.gz, written whole or not at all."""
    results_dir, target = Path(results_dir), check_pack_target(target)
    with replacing(target) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for path in [results_path(results_dir), *(results_dir / k for k in KEPT)]:
            if path.exists():
                tar.add(path, arcname=path.relative_to(results_dir).as_posix(),
                        filter=lambda info: None if info.name.endswith(SKIPPED_SUFFIXES) else info)
    return target


@dataclass
class Merged:
    rows: int = 0  # rows added
    already: int = 0  # rows the folder held already (the very same row)
    refused: list[str] = field(default_factory=list)  # rows of runs finished here that would replace them, and why
    files: list[str] = field(default_factory=list)  # measurement and prediction files added
    kept: list[str] = field(default_factory=list)  # present here already, left as they were

    def report(self, source: str, results_dir: str | Path) -> str:
        lines = [f"merged {source} into {results_dir}: {self.rows} rows added, {self.already} already there, "
                 f"{len(self.refused)} refused; {len(self.files)} measurement files added, {len(self.kept)} already "
                 "there (kept)"]
        return "\n".join(lines + [f"  refused: {why}" for why in self.refused])


def merge(source: str | Path, results: str | Path | Rows) -> Merged:
    """Add what ``source`` (a packed .tar.gz, or a results folder) holds and the results folder lacks (``results``:
    the folder, or its rows as a command read them, to which the rows added are added), all at once or not at all.

    Every incoming line must be a row (``row_check``), else nothing is merged (``ExchangeError`` names each
    line). A row the folder holds already (the very same row) is counted, not added; a finished
    row of a run finished here is refused, with the difference, and the rest merged. Files under ``analysis/``
    and ``predictions/`` are copied only where none of that name exists. Nothing is overwritten or removed.
    """
    source, rows = Path(source), results if isinstance(results, Rows) else Rows(results)
    with tempfile.TemporaryDirectory() as scratch:
        folder = source if source.is_dir() else _unpacked(source, Path(scratch))
        incoming, bad = read_numbered(results_path(folder))
        files = _files(folder)
        if bad:
            raise ExchangeError("from", f"{source}: nothing merged; {len(bad)} of {len(bad) + len(incoming)} lines "
                                        f"of its {RESULTS_FILE} are no row: " + "; ".join(map(str, bad)))
        if not incoming and not files:
            raise ExchangeError("from", f"{source} holds no rows ({RESULTS_FILE}) and no measurements; "
                                        "nothing to merge")
        merged, added = _sorted_rows(incoming, rows)
        copies = []
        for relative, path in files:
            if (rows.results_dir / relative).exists():
                merged.kept.append(relative)
            else:
                copies.append((relative, path))
        _commit(rows.results_dir, added, copies)
        merged.files = [relative for relative, _ in copies]
    for row in added:
        rows.add(row)
    return merged


def _unpacked(source: Path, scratch: Path) -> Path:
    """The archive extracted into ``scratch``, every member checked first: files and folders under runs.jsonl,
    analysis/ and predictions/ only, none pointing outside."""
    try:
        with tarfile.open(source, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                why = _member_problem(member)
                if why:
                    raise ExchangeError("from", f"{source}: member {member.name!r} {why}; nothing merged")
            tar.extractall(scratch, members=members, filter="data")
    except ExchangeError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise ExchangeError("from", f"{source} is not a readable {SUFFIX} (a packed results folder): "
                                    f"{type(err).__name__}: {err}; nothing merged") from None
    return scratch


def _member_problem(member: tarfile.TarInfo) -> str | None:
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        return "points outside the folder"
    if not (member.isfile() or member.isdir()):
        return "is a link or a device, not a file or folder"
    if parts and parts[0] not in (RESULTS_FILE, *KEPT):
        return f"is not part of a packed results folder ({RESULTS_FILE}, {', '.join(k + '/' for k in KEPT)})"
    return None


def _pack_layout_problem(path: Path) -> str | None:
    """Why ``path`` is not an archive that ``pack`` wrote (None when it is one)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                why = _member_problem(member)
                if why:
                    return why
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        return str(err)
    return None


def _files(folder: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every measurement and prediction file under ``folder``."""
    found = []
    for kept in KEPT:
        for path in sorted((folder / kept).rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.endswith(SKIPPED_SUFFIXES):
                found.append((path.relative_to(folder).as_posix(), path))
    return found


def _sorted_rows(incoming: list[tuple[int, dict[str, Any]]], rows: Rows) -> tuple[Merged, list[dict[str, Any]]]:
    """The rows to add, and the count of those already here and the refusals."""
    merged, added = Merged(), []
    seen = {_key(r) for r in rows.all}
    finished_here = {r["run_id"]: r for r in rows.finished()}
    for number, row in incoming:
        if _key(row) in seen:
            merged.already += 1
        elif is_result(row) and row["run_id"] in finished_here:
            merged.refused.append(f"line {number}: {row['ablation']} seed {row['seed']} [{row['run_id']}] is finished "
                                  f"here already; this row would replace it: {_difference(finished_here[row['run_id']], row)}")
        else:
            added.append(row)
            seen.add(_key(row))
    merged.rows = len(added)
    return merged, added


def _difference(here: dict[str, Any], there: dict[str, Any]) -> str:
    """What two rows of one run differ in, as a user compares them."""
    def data(row):
        return (row.get("data_identity") or {}).get("sha256", "not recorded")[:12]

    parts = [f"{what} {show(here)} here, {show(there)} in the archive" for what, show in (
        ("top-1", top1_line), ("data", data), ("finished", lambda r: r.get("finished_at")),
        ("device", lambda r: r.get("device"))) if show(here) != show(there)]
    return "; ".join(parts) or "the same results, another record"


def _commit(results_dir: Path, added: list[dict[str, Any]], copies: list[tuple[str, Path]]) -> None:
    """The files copied under temporary names, then renamed into place, then the rows file replaced whole: a
    reader sees the folder before or after, and a crash leaves at most files no row refers to."""
    if not added and not copies:
        return
    staged = []
    try:
        for relative, path in copies:
            target = results_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(path, tmp)
            staged.append((tmp, target))
        rows_file = results_path(results_dir)
        with FileLock(str(rows_file) + ".lock"):
            for tmp, target in staged:
                os.replace(tmp, target)
            staged = []
            if added:
                old = rows_file.read_bytes() if rows_file.is_file() else b""
                if old and not old.endswith(b"\n"):
                    old += b"\n"  # seal a torn line left by a crash
                new = b"".join((json.dumps(r, sort_keys=True, default=str) + "\n").encode() for r in added)
                with replacing(rows_file) as tmp:
                    tmp.write_bytes(old + new)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _key(row: dict) -> str:
    """A row is here already only where the very same row is (a row set aside is not the checked row of its run)."""
    return json.dumps(row, sort_keys=True, default=str)
