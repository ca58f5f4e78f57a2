"""Stratified subsets: as many images from every class, never more than the split holds."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import DataError


def stratified_subset(labels: np.ndarray, total: Optional[int], seed: int = 0) -> np.ndarray:
    """Indices of ``total`` examples, the same number from every class (all if total is None)."""
    if total is None or total >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = max(1, total // len(classes))
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(picks))


def held_out_count(val_split: Optional[int], num_classes: int) -> int:
    """How many images ``validation_split`` holds out (as many from every class)."""
    return max(1, val_split // num_classes) * num_classes if val_split else 0


def validation_split(labels: np.ndarray, val_split: Optional[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(held out, the rest): indices of a stratified validation split of ``val_split`` training images, drawn by
    ``seed`` alone, so every run of every ablation holds out the same images; (nothing, all) when None."""
    everything = np.arange(len(labels))
    if not val_split:
        return everything[:0], everything
    held = stratified_subset(labels, val_split, seed)
    return held, np.setdiff1d(everything, held)


def check_subset(key: str, asked: Optional[int], images: int, least: int, what: str) -> None:
    """A subset larger than the images it is taken from would quietly take all of them: refuse it instead."""
    if asked is not None and asked > images:
        raise DataError(f"must be null or an integer from {least} to {images} ({what}), got {asked}", key=key)
