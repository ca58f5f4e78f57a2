"""Every run row read from a file is checked before it counts: its fields, and its run_id against its config.

A row is what a results folder says a run measured; one that comes from elsewhere (a merged archive, a copied
folder, a hand edit) is believed only as far as it can be checked. ``problem`` says what is wrong with a row, or
None; ``read_checked`` reads a ``runs.jsonl`` and names every line it leaves out, and why.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .fingerprint import recorded_run_ids

STATUSES = ("ok", "failed")


@dataclass(frozen=True)
class BadLine:
    """A line of a rows file that is no row: its number (from 1) and why."""
    line: int
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.why}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _top1_problem(top1: Any) -> Optional[str]:
    if not isinstance(top1, dict) or not top1:
        return "an ok row without top1 (a map from test size to top-1)"
    for size, value in top1.items():
        if not (str(size).isdigit() and isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and 0 <= value <= 100):
            return f"top1 {{{size!r}: {value!r}}} is not a test size with a top-1 in percent"
    return None


def _data_problem(data: Any) -> Optional[str]:
    if data is None:
        return None  # rows from before data identities were recorded (row_data.py reads them)
    if not (isinstance(data, dict) and isinstance(data.get("sha256"), str) and isinstance(data.get("split"), str)):
        return f"data_identity must hold a sha256 and a split, got {data!r}"
    return None


def problem(row: Any) -> Optional[str]:
    """What makes ``row`` no result row (fields missing or of a wrong type, a run_id its config does not give),
    or None. Fields beyond those checked are allowed."""
    if not isinstance(row, dict):
        return f"not a JSON object but {type(row).__name__}"
    for key, ok, what in (("run_id", isinstance(row.get("run_id"), str), "a text"),
                          ("status", row.get("status") in STATUSES, " or ".join(STATUSES)),
                          ("ablation", isinstance(row.get("ablation"), str), "a text"),
                          ("seed", _is_int(row.get("seed")), "an integer"),
                          ("config", isinstance(row.get("config"), dict), "the run's resolved config")):
        if not ok:
            return f"{key} must be {what}, got {row.get(key)!r}" if key in row else f"no {key}"
    if row["status"] == "ok":
        if not _is_int(row.get("train_size")):
            return f"an ok row needs train_size, an integer, got {row.get('train_size')!r}"
        why = _top1_problem(row.get("top1")) or _data_problem(row.get("data_identity"))
        if why:
            return why
    try:
        ids = recorded_run_ids(row["config"])
    except Exception as err:  # noqa: BLE001 - any config that cannot be fingerprinted is no row
        return f"run_id {row['run_id']}: its config cannot be read ({type(err).__name__}: {err})"
    if row["run_id"] not in ids:
        return (f"run_id {row['run_id']} is not its config's ({' or '.join(sorted(ids))}; "
                f"{row['ablation']} seed {row['seed']}): a row claiming another run's identity")
    return None


def parse_line(text: bytes) -> tuple[Optional[dict], Optional[str]]:
    """(the row, None) or (None, why the line is no row)."""
    try:
        row = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text (a binary file where rows should be?)"
    except json.JSONDecodeError as err:
        return None, f"not a JSON row ({err.msg} at character {err.pos}; a line torn by a crash?)"
    why = problem(row)
    return (None, why) if why else (row, None)


def read_numbered(path: str | Path) -> tuple[list[tuple[int, dict[str, Any]]], list[BadLine]]:
    """(line number, row) for every row of a ``runs.jsonl`` that passes ``problem``, in order, and every other
    non-blank line, named."""
    path = Path(path)
    if not path.is_file():
        return [], []
    rows, bad = [], []
    with open(path, "rb") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            row, why = parse_line(text)
            if row is None:
                bad.append(BadLine(number, why))
            else:
                rows.append((number, row))
    return rows, bad


def read_checked(path: str | Path) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """The rows of a ``runs.jsonl`` that pass ``problem``, in order, and every other non-blank line, named."""
    numbered, bad = read_numbered(path)
    return [row for _, row in numbered], bad
