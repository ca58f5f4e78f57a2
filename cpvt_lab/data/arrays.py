"""A labelled image set as uint8 arrays, and its cache file (whole or absent, never half written)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..atomic import replacing

SPLITS = ("train", "test")


@dataclass
class Arrays:
    """A labelled image set as uint8 arrays, N x H x W x C."""
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]


def save_arrays_atomically(arrays: Arrays, target: Path) -> None:
    """A reader never sees half a cache (atomic.replacing)."""
    with replacing(target) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a name
        np.savez(f, train_x=arrays.train_x, train_y=arrays.train_y, test_x=arrays.test_x,
                 test_y=arrays.test_y, classes=np.array(arrays.classes))


def load_cached_arrays(path: Path) -> Optional[Arrays]:
    try:
        with np.load(path) as z:
            return Arrays(z["train_x"], z["train_y"], z["test_x"], z["test_y"], [str(c) for c in z["classes"]])
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or unreadable: decode again


def cached_summary(target: Path) -> Optional[tuple[list[str], dict[str, int]]]:
    """The class names in a cache file and its number of images per split (read from the labels alone,
    without the images); None if there is none."""
    try:
        with np.load(target) as z:
            return [str(c) for c in z["classes"]], {split: len(z[f"{split}_y"]) for split in SPLITS}
    except (OSError, ValueError, KeyError, EOFError):
        return None
