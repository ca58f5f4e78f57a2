"""What a run trained and was tested on, as its row records it: the data's content hash, its classes and split.

Two runs pool as seeds of one cell only where this is equal: the same name ("CIFAR-10, JPEG copy") can hide two
archives, a hash cannot. An archive or a file set is hashed by its bytes; an ImageFolder tree (ImageNet: 150 GB)
by its listing, every file's path and size, which is what a copy, a subset or another version changes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Sequence


def sha256_of_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_of_listing(root: Path, folders: Sequence[str]) -> str:
    """The hash of every file's relative path and size under ``root/<folder>`` (sorted): a tree's identity
    without reading its images."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def data_identity(sha256: str, hashed: str, classes: Sequence[str], split: str) -> dict:
    """A row's ``data_identity``: ``hashed`` says what the sha256 is of (an archive, files, a listing)."""
    return {"sha256": sha256, "hashed": hashed, "classes": list(classes), "split": split}
