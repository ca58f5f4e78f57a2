"""CIFAR-10 in memory: from the JPEG archive's cache, or canonical in torchvision's format."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .archive import (cache_dir, cached_arrays_path, check_imagefolder_archive, decode_imagefolder_archive,
                      load_jpeg_archive, locate_jpeg_archive, sha256_of)
from .arrays import Arrays, cached_summary, save_arrays_atomically
from .errors import DataError
from .identity import data_identity, sha256_of_files
from .memory import ArrayDataModule

CIFAR10_IMAGES = {"train": 50_000, "test": 10_000}


class Cifar10JpegDataModule(ArrayDataModule):
    """CIFAR-10 from the JPEG archive (a re-encoding: close to, not identical with, CIFAR-10)."""

    name = "cifar10_jpeg"

    def __init__(self, archive: Optional[str] = None, cache_dir: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.archive_setting, self.cache_setting = archive, cache_dir

    def check(self) -> None:
        archive = locate_jpeg_archive(self.archive_setting)
        cached = cached_summary(cached_arrays_path(archive, cache_dir(self.cache_setting)))
        if cached is None:  # never decoded: read it through once
            images = check_imagefolder_archive(archive, self.num_classes)
        else:  # decoded before from these exact bytes, so intact
            classes, images = cached
            if len(classes) != self.num_classes:
                raise DataError(f"{archive} has {len(classes)} classes, data.num_classes is {self.num_classes}.",
                                key="data.num_classes")
        self.check_subsets(images, str(archive))

    def prepare_data(self) -> None:
        # decode once into the cache; setup() then reads the cache (no need to load the arrays twice)
        archive = locate_jpeg_archive(self.archive_setting)
        target = cached_arrays_path(archive, cache_dir(self.cache_setting))
        if cached_summary(target) is None:
            save_arrays_atomically(decode_imagefolder_archive(archive), target)

    def load_arrays(self) -> Arrays:
        return load_jpeg_archive(locate_jpeg_archive(self.archive_setting), cache_dir(self.cache_setting))

    def source(self):
        archive = locate_jpeg_archive(self.archive_setting)
        stat = archive.stat()
        return "cifar10_jpeg", str(archive), stat.st_size, stat.st_mtime_ns

    def describe(self) -> str:
        return "CIFAR-10, JPEG copy"

    def identity(self) -> dict:
        archive = locate_jpeg_archive(self.archive_setting)
        summary = cached_summary(cached_arrays_path(archive, cache_dir(self.cache_setting)))
        classes = summary[0] if summary else load_jpeg_archive(archive, cache_dir(self.cache_setting)).classes
        return data_identity(sha256_of(archive), "archive", classes, self.split_text())


class Cifar10DataModule(ArrayDataModule):
    """Canonical CIFAR-10 in torchvision's format under ``root``."""

    name = "cifar10"

    def __init__(self, root: str = "data_local/cifar10", download: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.root, self.download = Path(root).expanduser(), download

    def _dataset(self, train: bool):
        from torchvision.datasets import CIFAR10
        try:
            return CIFAR10(str(self.root), train=train, download=self.download)
        except RuntimeError as err:
            raise DataError(f"canonical CIFAR-10 not found under {self.root} ({err}). Pass data.root=DIR "
                            "holding cifar-10-batches-py, or data.download=true where a network is reachable, "
                            "or use data=cifar10_jpeg.") from None

    def check(self) -> None:
        from torchvision.datasets import CIFAR10

        folder = self.root / CIFAR10.base_folder
        missing = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list if not (folder / name).is_file()]
        if missing and not self.download:
            raise DataError(f"canonical CIFAR-10 not found: {folder} lacks {', '.join(missing)}. Pass data.root=DIR "
                            "holding cifar-10-batches-py, or data.download=true where a network is reachable, "
                            "or use data=cifar10_jpeg.", key="data.root")
        self.check_subsets(CIFAR10_IMAGES, self.describe())

    def prepare_data(self) -> None:
        self._dataset(True), self._dataset(False)

    def source(self):
        return "cifar10", str(self.root.resolve())

    def load_arrays(self) -> Arrays:
        train, test = self._dataset(True), self._dataset(False)
        return Arrays(train.data, np.array(train.targets), test.data, np.array(test.targets), list(train.classes))

    def describe(self) -> str:
        return "CIFAR-10"

    def identity(self) -> dict:
        from torchvision.datasets import CIFAR10

        folder = self.root / CIFAR10.base_folder
        files = [folder / name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
        return data_identity(sha256_of_files(files), "batch files", self._dataset(False).classes, self.split_text())
