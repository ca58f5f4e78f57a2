"""ImageFolderDataModule: any ImageFolder tree (ImageNet's layout) through DataLoaders, with DeiT's augmentation."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from .errors import DataError
from .identity import data_identity, sha256_of_listing
from .subsets import check_subset, stratified_subset


class ImageFolderDataModule(pl.LightningDataModule):
    """Any ImageFolder tree with ``train/`` and ``val/`` (ImageNet's layout), DeiT's augmentation from timm.

    Training: RandAugment, random erasing (per-pixel noise) and repeated augmentation
    (timm's ``RepeatAugSampler``: each image ``repeated_aug`` times per epoch, the copies
    on different ranks). Like the in-memory sets it shards by rank itself (the trainer
    has ``use_distributed_sampler: false``): evaluation takes every ``world_size``-th
    image, so each image is scored exactly once across ranks, none padded in.
    """

    name = "imagefolder"

    def __init__(self, root: str, batch_size: int = 128, eval_batch_size: Optional[int] = None,
                 train_size: int = 224, eval_sizes: Sequence[int] = (224,), num_workers: int = 8,
                 num_classes: int = 1000, auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1",
                 random_erasing: float = 0.25, crop_pct: float = 0.875, repeated_aug: int = 3, seed: int = 0,
                 subset: Optional[int] = None, test_subset: Optional[int] = None, subset_seed: int = 0):
        super().__init__()
        self.root = Path(root).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.train_size, self.eval_sizes = train_size, list(eval_sizes)
        self.num_workers, self.num_classes = num_workers, num_classes
        self.auto_augment, self.random_erasing, self.crop_pct = auto_augment, random_erasing, crop_pct
        self.repeated_aug, self.seed = repeated_aug, seed
        self.subset, self.test_subset, self.subset_seed = subset, test_subset, subset_seed
        self.num_train_images = self.num_test_images = 0

    curve_split = "test"  # ImageNet's val/ is its test set: the learning curve reads it

    def describe(self) -> str:
        return f"ImageFolder {self.root}"

    def identity(self) -> dict:
        classes = find_classes(str(self.root / "train"))[0]
        split = f"train: {self.num_train_images}; test (val/): {self.num_test_images}"
        return data_identity(sha256_of_listing(self.root, ("train", "val")), "listing", classes, split)

    def check(self) -> None:
        """Cheap: train/ and val/ hold the same class folders, as many as data.num_classes, with images;
        enough images for data.subset and data.test_subset."""
        classes = {}
        for split in ("train", "val"):
            folder = self.root / split
            try:  # ImageFolder's own listing of class folders
                classes[split] = find_classes(str(folder))[0]
            except OSError:  # no such folder, not a folder, or no class folder in it
                classes[split] = []
            first = folder / classes[split][0] if classes[split] else None
            if first is None or not any(f.suffix.lower() in IMG_EXTENSIONS for f in first.iterdir()):
                raise DataError(f"{self.root} is not an ImageFolder root: expected {folder}/<class>/<image> "
                                "(ImageNet layout: train/ and val/, one folder per class).", key="data.root")
        if classes["train"] != classes["val"]:
            raise DataError(f"{self.root}: train/ and val/ hold different class folders.", key="data.root")
        if len(classes["train"]) != self.num_classes:
            raise DataError(f"{self.root} has {len(classes['train'])} classes, data.num_classes is "
                            f"{self.num_classes}.", key="data.num_classes")
        for key, asked, split in (("data.subset", self.subset, "train"), ("data.test_subset", self.test_subset, "val")):
            if asked is None:
                continue  # listing every image takes a while on ImageNet: only when a subset asks for it
            folder = self.root / split
            try:  # ImageFolder's own listing, so the count is the one setup() will see
                images = make_dataset(str(folder), {c: i for i, c in enumerate(classes[split])}, IMG_EXTENSIONS)
            except FileNotFoundError as err:  # a class folder without images
                raise DataError(f"{folder}: {err}", key="data.root") from None
            check_subset(key, asked, len(images), self.num_classes, f"the images in {folder}")

    def setup(self, stage: Optional[str] = None) -> None:
        from timm.data import create_transform
        from torch.utils.data import Subset
        from torchvision.datasets import ImageFolder

        self.check()
        def folder(split, transform, total):  # the same stratified subset as the in-memory sets
            images = ImageFolder(str(self.root / split), transform=transform)
            keep = stratified_subset(np.array(images.targets), total, self.subset_seed)
            return images if len(keep) == len(images) else Subset(images, keep.tolist())

        self.train_set = folder("train", create_transform(
            self.train_size, is_training=True, auto_augment=self.auto_augment, re_prob=self.random_erasing,
            re_mode="pixel", interpolation="bicubic"), self.subset)
        self.val_sets = [folder("val", create_transform(
            s, is_training=False, crop_pct=self.crop_pct, interpolation="bicubic"), self.test_subset)
            for s in self.eval_sizes]
        self.num_train_images, self.num_test_images = len(self.train_set), len(self.val_sets[0])

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)

    def _loader(self, dataset, train: bool):
        from timm.data.distributed_sampler import RepeatAugSampler
        from torch.utils.data import DataLoader, DistributedSampler

        rank, world = self._ranks()
        if not train:
            sampler = range(rank, len(dataset), world)
        elif self.repeated_aug > 1:
            # DeiT's epoch: the images rounded down to a multiple of 256; timm 1.0.29 and older round a folder of
            # fewer than 256 to none, where newer timm takes them all, as this does on every timm
            rounded = 256 if len(dataset) >= 256 else 0
            sampler = RepeatAugSampler(dataset, num_replicas=world, rank=rank, num_repeats=self.repeated_aug,
                                       selected_round=rounded)
        else:
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=self.seed, drop_last=True)
        # Lightning calls the train sampler's set_epoch, so each epoch is shuffled anew
        return DataLoader(dataset, batch_size=self.batch_size if train else self.eval_batch_size, sampler=sampler,
                          drop_last=train, num_workers=self.num_workers, pin_memory=torch.cuda.is_available(),
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader(self.train_set, train=True)

    def val_dataloader(self):
        """While fitting, the learning curve's one set at the training size; afterwards every test size."""
        trainer = self.trainer
        if trainer is not None and trainer.state.fn == "fit":
            at = self.eval_sizes.index(self.train_size) if self.train_size in self.eval_sizes else 0
            return [self._loader(self.val_sets[at], train=False)]
        return [self._loader(v, train=False) for v in self.val_sets]

    def eval_dataloader(self, size: int):
        return self._loader(self.val_sets[self.eval_sizes.index(size)], train=False)
