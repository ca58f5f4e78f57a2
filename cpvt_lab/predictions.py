"""A run's predicted class for every test image at every test size, kept beside its row.

``<results_dir>/predictions/<run_id>.json`` holds the test labels once and one prediction per image and size,
in the test split's order. With at most 10 classes each is a string of digits (10,000 images: 10 KB a size), so
a run's file is tens of KB, diffs as text and holds no pixel. Two runs scored on the same images can then be
compared image by image: the test-set term of a difference (which images each model gets right) comes from
these files, not from an assumption of independence.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from .atomic import replacing

FOLDER = "predictions"


@dataclass
class Predictions:
    run_id: str
    labels: np.ndarray  # (m,) the test labels, in the split's order
    predicted: dict[int, np.ndarray]  # size -> (m,) predicted classes
    data_sha256: Optional[str] = None

    def correct(self, size: int) -> np.ndarray:
        """(m,) booleans: which test images the run gets right at ``size``."""
        return self.predicted[size] == self.labels

    def top1(self, size: int) -> float:
        return round(100.0 * float(self.correct(size).mean()), 3)


def path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / FOLDER / f"{run_id}.json"


def _encode(values: np.ndarray) -> str | list[int]:
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() > 9):
        return values.tolist()
    return "".join(map(str, values.tolist()))


def _decode(values: str | list[int]) -> np.ndarray:
    if isinstance(values, str):
        return np.frombuffer(values.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
    return np.asarray(values, dtype=np.int64)


def save(results_dir: str | Path, run_id: str, labels: np.ndarray, predicted: Mapping[int, np.ndarray],
         data_sha256: Optional[str] = None) -> Path:
    """Write a run's predictions whole (a crash leaves the old file or none)."""
    labels = np.asarray(labels)
    for size, values in predicted.items():
        if len(values) != len(labels):
            raise ValueError(f"{len(values)} predictions at {size} px for {len(labels)} test labels")
    record = {"run_id": run_id, "data_sha256": data_sha256, "labels": _encode(labels),
              "predicted": {str(size): _encode(values) for size, values in sorted(predicted.items())}}
    target = path(results_dir, run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    with replacing(target) as tmp:
        Path(tmp).write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
    return target


def load(results_dir: str | Path, run_id: str) -> Optional[Predictions]:
    """A run's stored predictions, or None where it has none (runs made before they were stored)."""
    source = path(results_dir, run_id)
    if not source.is_file():
        return None
    record = json.loads(source.read_text(encoding="utf-8"))
    return Predictions(record["run_id"], _decode(record["labels"]),
                       {int(size): _decode(values) for size, values in record["predicted"].items()},
                       record.get("data_sha256"))
