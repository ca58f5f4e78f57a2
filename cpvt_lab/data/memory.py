"""ArrayDataModule: a Lightning data module over a small labelled set held in memory as uint8 tensors."""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Hashable, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from .arrays import Arrays
from .augment import RandomAugment
from .batches import TensorBatches
from .errors import DataError
from .identity import data_identity
from .subsets import check_subset, held_out_count, stratified_subset, validation_split

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

# The device tensors of recent sets, shared by the runs of one process: a grid trains run after run on the
# same images, and decoding, uploading and resizing them for each run would cost it seconds. Runs only read
# them (batches are gathered copies), so sharing cannot leak one run's state into another.
RECENT_SETS: "OrderedDict[Hashable, tuple[torch.Tensor, torch.Tensor]]" = OrderedDict()
RECENT_SETS_MAX = 8


def recent_or_made(key: Optional[Hashable], make: Callable[[], tuple[torch.Tensor, torch.Tensor]]):
    """``RECENT_SETS[key]``, made and remembered (oldest forgotten) when absent; no memory when key is None."""
    if key is None:
        return make()
    if key not in RECENT_SETS:
        RECENT_SETS[key] = make()
        while len(RECENT_SETS) > RECENT_SETS_MAX:
            RECENT_SETS.popitem(last=False)
    RECENT_SETS.move_to_end(key)
    return RECENT_SETS[key]


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize N x C x H x W uint8 images (antialiased bilinear), keeping uint8: computed in float, rounded once."""
    # Not torchvision.transforms.v2.functional.resize(images, size, antialias=True): on the CPU its native
    # uint8 kernel is up to 1 level off the exact resize (this is within 0.5), and on CUDA it resizes in float
    # as here, so the same run would see other pixels on a CPU than on a GPU. On 20,000 CIFAR-10 JPEG images at
    # 24, 40 and 48 px it differs from this code in 22-26% of values (by 1 level either way, +0.10 to +0.16 on
    # average), and the committed results were made with this code on a CPU.
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    for chunk in images.split(4096):  # bounded memory on large sets
        out.append(F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True,
                                 align_corners=False).round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


class ArrayDataModule(pl.LightningDataModule):
    """A small labelled image set kept in memory; subclasses say where the arrays come from."""

    name = "arrays"
    mean, std = CIFAR_MEAN, CIFAR_STD

    def __init__(self, batch_size: int = 128, eval_batch_size: Optional[int] = None, train_size: int = 32,
                 eval_sizes: Sequence[int] = (32,), subset: Optional[int] = None,
                 test_subset: Optional[int] = None, subset_seed: int = 0, crop_padding: int = 4,
                 flip: bool = True, on_device: bool = True, seed: int = 0, num_classes: int = 10,
                 augment: Optional[str] = None, randaugment_n: int = 2, randaugment_m: int = 9,
                 random_erasing: float = 0.0, val_split: Optional[int] = None, val_seed: int = 0):
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.train_size, self.eval_sizes = train_size, list(eval_sizes)
        self.subset, self.test_subset, self.subset_seed = subset, test_subset, subset_seed
        self.crop_padding, self.flip, self.on_device = crop_padding, flip, on_device
        self.seed, self.num_classes = seed, num_classes
        self.augment = RandomAugment(augment, randaugment_n, randaugment_m) if augment else None
        self.random_erasing = random_erasing
        self.val_split, self.val_seed = val_split, val_seed
        self._train: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        self._val: Optional[tuple[torch.Tensor, torch.Tensor]] = None  # held out of the training images
        self._test: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def load_arrays(self) -> Arrays:
        raise NotImplementedError

    def check(self) -> None:
        """A cheap look, before any file is written, that the data is there and readable (raises DataError)."""

    def check_subsets(self, images: dict[str, int], where: str) -> None:
        """data.val_split, data.subset and data.test_subset against the images of each split (``images``)."""
        check_subset("data.val_split", self.val_split, images["train"], self.num_classes,
                     f"the training images in {where}")
        left = images["train"] - held_out_count(self.val_split, self.num_classes)
        check_subset("data.subset", self.subset, left, self.num_classes, f"the training images in {where}"
                     + (" less the validation split" if self.val_split else ""))
        check_subset("data.test_subset", self.test_subset, images["test"], self.num_classes,
                     f"the test images in {where}")
        training = self.subset if self.subset is not None else left
        if self.batch_size > training:  # the ragged last batch is dropped: an epoch would train on nothing
            raise DataError(f"must be at most the {training} images a run trains on ({where}"
                            + (", data.subset" if self.subset is not None else "")
                            + (", less the validation split" if self.val_split else "")
                            + f"), got {self.batch_size}: an epoch drops its ragged last batch", key="data.batch_size")

    def describe(self) -> str:
        return self.name

    def _device(self) -> torch.device:
        trainer = self.trainer
        if self.on_device and trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cpu")

    def source(self) -> Optional[Hashable]:
        """What identifies this set's images across runs of one process (None: nothing to share)."""
        return None

    def setup(self, stage: Optional[str] = None) -> None:
        if self._train is not None:
            return
        device, source = self._device(), self.source()
        arrays: list[Arrays] = []  # loaded at most once, and only if some tensor is not remembered

        def split(name: str, total: Optional[int], size: int):
            def make():
                if not arrays:
                    arrays.append(self.load_arrays())
                    if len(arrays[0].classes) != self.num_classes:
                        raise DataError(f"{self.describe()} has {len(arrays[0].classes)} classes, "
                                        f"config says {self.num_classes}")
                x, y = (arrays[0].test_x, arrays[0].test_y) if name == "test" else (arrays[0].train_x,
                                                                                       arrays[0].train_y)
                if name == "test":
                    keep = stratified_subset(y, total, self.subset_seed)
                else:
                    held, rest = validation_split(y, self.val_split, self.val_seed)
                    keep = held if name == "val" else rest[stratified_subset(y[rest], total, self.subset_seed)]
                images = torch.from_numpy(np.ascontiguousarray(x[keep])).permute(0, 3, 1, 2).contiguous()
                return resize_uint8(images.to(device), size), torch.from_numpy(y[keep]).to(device)

            held_out = None if name == "test" else (self.val_split, self.val_seed)
            key = None if source is None else (source, name, total, self.subset_seed, held_out, size, str(device))
            return recent_or_made(key, make)

        self._train = split("train", self.subset, self.train_size)
        if self.val_split:
            self._val = split("val", None, self.train_size)
        # the test set at every evaluation size, and at the training size for a learning curve without a split
        curve = [] if self.val_split else [self.train_size]
        self._test = {s: split("test", self.test_subset, s) for s in dict.fromkeys([*self.eval_sizes, *curve])}

    @property
    def num_train_images(self) -> int:
        return 0 if self._train is None else len(self._train[1])

    @property
    def num_test_images(self) -> int:
        """The test images every evaluation size is measured on (the same images, resized)."""
        return len(next(iter(self._test.values()))[1]) if self._test else 0

    @property
    def num_val_images(self) -> int:
        return 0 if self._val is None else len(self._val[1])

    @property
    def curve_split(self) -> str:
        """Which images the per-epoch top-1 is measured on while training: the validation split when one is held
        out (the test set is then first read once training has ended), else the test set."""
        return "validation" if self.val_split else "test"

    def identity(self) -> dict:
        """Subclasses hash their source (an archive, files); this fallback hashes the tensors held in memory."""
        digest = hashlib.sha256()
        for images, labels in [self._train, *([self._val] if self._val else []), *self._test.values()]:
            digest.update(images.cpu().numpy().tobytes())
            digest.update(labels.cpu().numpy().tobytes())
        return data_identity(digest.hexdigest(), "tensors", [str(c) for c in range(self.num_classes)],
                             self.split_text())

    def split_text(self) -> str:
        train = f"train: {self.num_train_images}"
        if self.val_split:
            train += f" (validation: {self.num_val_images} held out, seed {self.val_seed})"
        return f"{train}; test: {self.num_test_images}"

    def _ranks(self) -> dict:
        trainer = self.trainer
        return dict(rank=trainer.global_rank, world_size=trainer.world_size) if trainer else {}

    def train_dataloader(self):
        images, labels = self._train
        trainer = self.trainer
        return TensorBatches(images, labels, self.batch_size, self.mean, self.std, train=True,
                             crop_padding=self.crop_padding, flip=self.flip, seed=self.seed,
                             epoch=(lambda: trainer.current_epoch) if trainer else (lambda: 0),
                             augment=self.augment, random_erasing=self.random_erasing, **self._ranks())

    def eval_dataloader(self, size: int) -> TensorBatches:
        images, labels = self._test[size]
        return TensorBatches(images, labels, self.eval_batch_size, self.mean, self.std, **self._ranks())

    def val_dataloader(self):
        """While fitting, the learning curve's one set at the training size (ClassificationModule.curve_size);
        afterwards every test size."""
        trainer = self.trainer
        if trainer is not None and trainer.state.fn == "fit":
            return [self.curve_dataloader()]
        return [self.eval_dataloader(s) for s in self.eval_sizes]

    def curve_dataloader(self) -> TensorBatches:
        """The learning curve's set at the training size: the validation split where one is held out, else the
        test set (``curve_split``)."""
        images, labels = self._val if self._val is not None else self._test[self.train_size]
        return TensorBatches(images, labels, self.eval_batch_size, self.mean, self.std, **self._ranks())
