"""Which data a row's run trained and was tested on, for rows with a recorded ``data_identity`` and without.

Runs pool as seeds of one cell only where their data is the same: its content hash and split. Rows recorded
before ``data_identity`` existed say only ``"dataset": "CIFAR-10, JPEG copy"``; every such row was made on the
project's one JPEG archive (``PROJECT_ARCHIVE_SHA256``; docs/results.md gives the evidence), and is read as
made on it. The project's archive adds nothing to a cell's key, so every cell recorded before keeps its id;
any other data enters it, and its name in the tables carries its hash.
"""
from __future__ import annotations

from typing import Any, Optional

# the sha256 of cifar10-jpeg.tar.gz, the one archive the project had before rows recorded their data's hash
PROJECT_ARCHIVE_SHA256 = "097287809041e0a666355dfce11470ba1b3f2631fe910d8793c716253f10b297"
PROJECT_ARCHIVE_NAME = "CIFAR-10, JPEG copy"
NOT_RECORDED = "data not recorded"


def row_data(row: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The row's ``data_identity``; for a row from before it, the project's archive if the row names the JPEG
    copy (with no split recorded: the config gives it), else None (unknown)."""
    recorded = row.get("data_identity")
    if recorded:
        return recorded
    if row.get("dataset") == PROJECT_ARCHIVE_NAME:
        return {"sha256": PROJECT_ARCHIVE_SHA256, "hashed": "archive", "split": None}
    return None


def data_key(row: dict[str, Any]) -> Optional[str]:
    """What the data adds to a cell's key: None on the project's archive (a split there follows from the config,
    which the key holds already), else the content hash and the split (or ``NOT_RECORDED``)."""
    data = row_data(row)
    if data is None:
        return NOT_RECORDED
    if data["sha256"] == PROJECT_ARCHIVE_SHA256:
        return None
    return f"{data['sha256']} ({data.get('split')})"


def dataset_label(row: dict[str, Any]) -> str:
    """The data's name as the tables show it: the data set's, with the content hash and split where the data is
    not the project's archive, so that two data sets of one name are two sections."""
    name, data = row.get("dataset") or "unnamed data", row_data(row)
    if data is None:
        return f"{name} ({NOT_RECORDED})"
    if data["sha256"] == PROJECT_ARCHIVE_SHA256:
        return name
    return f"{name}, data {data['sha256'][:12]} ({data.get('split')})"
