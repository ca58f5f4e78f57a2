"""Data: CIFAR-10 (canonical or the JPEG copy) in memory, and any ImageFolder tree.

Small datasets live as uint8 tensors, on the GPU when there is one: a batch is
an index slice of a permutation, and crop-with-padding and flip are batched
tensor ops (airbench's recipe). The same code runs on the CPU.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..atomic import replacing
from .augment import RandomAugment, random_erasing
from ..provenance import REPO_ROOT

JPEG_ARCHIVE_NAME = "cifar10-jpeg.tar.gz"
JPEG_ARCHIVE_ENV = "CPVT_CIFAR10_JPEG"
CACHE_ENV = "CPVT_CACHE_DIR"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_IMAGES = {"train": 50_000, "test": 10_000}
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG")  # how every JPEG and every PNG file begins


class DataError(RuntimeError):
    """A dataset that cannot be found or read; the message says where we looked and what to do,
    ``key`` names the config value to change."""

    def __init__(self, message: str, key: str = "data"):
        super().__init__(message)
        self.key = key


@dataclass
class Arrays:
    """A labelled image set as uint8 arrays, N x H x W x C."""
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]


# ---------------------------------------------------------------- the JPEG copy
def default_archive_candidates() -> list[Path]:
    return [REPO_ROOT.parent / "shared" / "data" / JPEG_ARCHIVE_NAME,
            Path.cwd().parent / "shared" / "data" / JPEG_ARCHIVE_NAME]


def locate_jpeg_archive(archive: Optional[str]) -> Path:
    """Config value first, then $CPVT_CIFAR10_JPEG, then ../shared/data/ beside the checkout."""
    looked: list[str] = []
    if archive:
        candidates = [("data.archive", Path(archive).expanduser())]
    elif os.environ.get(JPEG_ARCHIVE_ENV):
        candidates = [(f"${JPEG_ARCHIVE_ENV}", Path(os.environ[JPEG_ARCHIVE_ENV]).expanduser())]
    else:
        candidates = [("default", p) for p in default_archive_candidates()]
    for origin, path in candidates:
        if path.is_file():
            return path.resolve()
        looked.append(f"{path} ({origin})")
    raise DataError(
        "CIFAR-10 JPEG archive not found; looked at: " + ", ".join(looked)
        + f". Pass data.archive=/path/to/{JPEG_ARCHIVE_NAME} or set ${JPEG_ARCHIVE_ENV}.", key="data.archive")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir(configured: Optional[str]) -> Path:
    base = configured or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cpvt_lab"
    return Path(base).expanduser()


def split_and_class(member: tarfile.TarInfo) -> Optional[tuple[str, str]]:
    """(split, class) of a file member at ``{train,test}/<class>/<file>``, whatever folder holds the splits."""
    parts = Path(member.name).parts[-3:]
    return (parts[0], parts[1]) if member.isfile() and len(parts) == 3 and parts[0] in SPLITS else None


def bad_member(archive: Path, member: tarfile.TarInfo, problem: str) -> DataError:
    return DataError(f"{archive}: member {member.name} {problem}; remove it from the archive or replace it with "
                     "a JPEG or PNG image.", key="data.archive")


def check_image_name(archive: Path, member: tarfile.TarInfo) -> None:
    """Check and decoder refuse the same members: a stray file among the images is a mistake, not to be skipped."""
    if not member.name.lower().endswith(IMAGE_SUFFIXES):
        raise bad_member(archive, member, "is not an image: its name does not end in " + ", ".join(IMAGE_SUFFIXES))


def check_imagefolder_archive(path: Path, num_classes: int) -> dict[str, int]:
    """Read the whole gzip stream (its checksum is at the end) and list the tar, decoding no image.

    Catches a truncated or corrupt archive, a wrong layout, a member that is not an image
    (by its name and first bytes) or a wrong class count before any file is written (about
    4 s for the 60,000-member archive, once: later runs find its decoded cache, which only
    intact bytes produce). Returns the number of images of each split.
    """
    classes: dict[str, set[str]] = {split: set() for split in SPLITS}
    images = dict.fromkeys(SPLITS, 0)
    try:
        with gzip.open(path, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                for member in tar:
                    where = split_and_class(member)
                    if where is None:
                        continue
                    check_image_name(path, member)
                    if not tar.extractfile(member).read(4).startswith(IMAGE_SIGNATURES):
                        raise bad_member(path, member, "is not an image: it begins like neither a JPEG nor a PNG")
                    classes[where[0]].add(where[1])
                    images[where[0]] += 1
            while gz.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path} is truncated or corrupt ({err}); replace it with an intact copy.",
                        key="data.archive") from None
    if not classes["train"] or not classes["test"]:
        raise DataError(f"{path} holds no train/<class>/<image> and test/<class>/<image> members "
                        "(ImageFolder layout inside the archive).", key="data.archive")
    if len(classes["train"]) != num_classes:
        raise DataError(f"{path} has {len(classes['train'])} classes, data.num_classes is {num_classes}.",
                        key="data.num_classes")
    return images


def decode_imagefolder_archive(path: Path) -> Arrays:
    """Decode every ``{train,test}/<class>/<image>`` member of the archive to uint8 arrays; a member there
    that is not an image stops it, named (check_imagefolder_archive refuses it before any run starts)."""
    from PIL import Image, UnidentifiedImageError

    images: dict[str, list[tuple[str, np.ndarray]]] = {split: [] for split in SPLITS}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                where = split_and_class(member)
                if where is None:
                    continue
                check_image_name(path, member)
                data = tar.extractfile(member).read()
                try:
                    with Image.open(io.BytesIO(data)) as img:
                        images[where[0]].append((where[1], np.asarray(img.convert("RGB"), dtype=np.uint8)))
                except OSError as err:  # Pillow names the BytesIO it was given, not the member
                    reason = "not an image it can identify" if isinstance(err, UnidentifiedImageError) else err
                    raise bad_member(path, member, f"cannot be decoded (Pillow: {reason})") from None
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{path} is truncated or corrupt ({err}); replace it with an intact copy.") from None
    if not images["train"] or not images["test"]:
        raise DataError(f"{path} holds no train/<class>/*.jpg and test/<class>/*.jpg images (ImageFolder layout).")
    classes = sorted({c for split in images.values() for c, _ in split})
    index = {c: i for i, c in enumerate(classes)}

    def stack(split):
        return (np.stack([a for _, a in split]), np.array([index[c] for c, _ in split], dtype=np.int64))

    train_x, train_y = stack(images["train"])
    test_x, test_y = stack(images["test"])
    return Arrays(train_x, train_y, test_x, test_y, classes)


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


def cached_arrays_path(archive: Path, cache: Path) -> Path:
    return cache / f"cifar10-jpeg-{sha256_of(archive)[:16]}.npz"


def cached_summary(target: Path) -> Optional[tuple[list[str], dict[str, int]]]:
    """The class names in a cache file and its number of images per split (read from the labels alone,
    without the images); None if there is none."""
    try:
        with np.load(target) as z:
            return [str(c) for c in z["classes"]], {split: len(z[f"{split}_y"]) for split in SPLITS}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def load_jpeg_archive(archive: Path, cache: Path) -> Arrays:
    """Decoded arrays of the archive, from the cache when it holds this exact archive."""
    target = cached_arrays_path(archive, cache)
    arrays = load_cached_arrays(target) if target.exists() else None
    if arrays is None:
        arrays = decode_imagefolder_archive(archive)
        save_arrays_atomically(arrays, target)
    return arrays


# ---------------------------------------------------------------- batching on a device
def stratified_subset(labels: np.ndarray, total: Optional[int], seed: int = 0) -> np.ndarray:
    """Indices of ``total`` examples, the same number from every class (all if total is None)."""
    if total is None or total >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = max(1, total // len(classes))
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(picks))


def check_subset(key: str, asked: Optional[int], images: int, least: int, what: str) -> None:
    """A subset larger than the images it is taken from would quietly take all of them: refuse it instead."""
    if asked is not None and asked > images:
        raise DataError(f"must be null or an integer from {least} to {images} ({what}), got {asked}", key=key)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize N x C x H x W uint8 images (antialiased bilinear), keeping uint8."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    for chunk in images.split(4096):  # bounded memory on large sets
        out.append(F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True,
                                 align_corners=False).round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop of a zero-padded batch, as one gather (no per-image loop)."""
    if padding <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4).permute(0, 2, 3, 1)  # B, H+2p, W+2p, C
    dy = torch.randint(0, 2 * padding + 1, (b,), device=images.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=images.device, generator=generator)
    rows = dy[:, None] + torch.arange(h, device=images.device)
    cols = dx[:, None] + torch.arange(w, device=images.device)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class TensorBatches:
    """An epoch of batches over uint8 images held as one tensor (on any device).

    Training batches come from a permutation seeded by (seed, epoch), so a
    resumed run sees the same order. Under DDP each rank takes every
    ``world_size``-th index of the same permutation. Training batches are
    cropped and flipped, then (if asked) augmented per image by ``augment``
    and, once normalised, randomly erased with probability ``random_erasing``
    per image; every draw comes from the same generator, so (seed, epoch)
    fixes the whole epoch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], train: bool = False, crop_padding: int = 0, flip: bool = False,
                 seed: int = 0, epoch: Callable[[], int] = lambda: 0, rank: int = 0, world_size: int = 1,
                 augment: Optional[RandomAugment] = None, random_erasing: float = 0.0):
        self.images, self.labels = images, labels
        self.batch_size, self.train = batch_size, train
        self.crop_padding, self.flip = crop_padding, flip
        self.augment, self.random_erasing = augment, random_erasing
        self.seed, self.epoch = seed, epoch
        self.rank, self.world_size = rank, world_size
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, device=images.device).view(shape) * 255
        self.std = torch.tensor(std, device=images.device).view(shape) * 255

    def _indices(self, generator: torch.Generator) -> torch.Tensor:
        n = len(self.labels)
        if self.train:
            order = torch.randperm(n, device=self.images.device, generator=generator)
            usable = n - n % (self.batch_size * self.world_size)  # drop the ragged last batch
            return order[:usable][self.rank::self.world_size]
        return torch.arange(n, device=self.images.device)[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(self.labels)
        if self.train:
            return n // (self.batch_size * self.world_size)
        per_rank = len(range(self.rank, n, self.world_size))
        return -(-per_rank // self.batch_size)

    def __iter__(self):
        generator = torch.Generator(device=self.images.device)
        generator.manual_seed(self.seed * 100_003 + self.epoch())
        indices = self._indices(generator)
        for idx in indices.split(self.batch_size) if len(indices) else ():  # split() of nothing is one empty batch
            x = self.images[idx]
            if self.train:
                x = random_crop(x, self.crop_padding, generator)
                if self.flip:
                    x = random_flip(x, generator)
                if self.augment is not None:
                    x = self.augment(x, generator)
            x = (x.float() - self.mean) / self.std
            if self.train and self.random_erasing > 0:  # after normalisation: the noise is N(0, 1), as timm's
                x = random_erasing(x, self.random_erasing, generator)
            yield x, self.labels[idx]


# ---------------------------------------------------------------- Lightning data modules
class ArrayDataModule(pl.LightningDataModule):
    """A small labelled image set kept in memory; subclasses say where the arrays come from."""

    name = "arrays"
    mean, std = CIFAR_MEAN, CIFAR_STD

    def __init__(self, batch_size: int = 128, eval_batch_size: Optional[int] = None, train_size: int = 32,
                 eval_sizes: Sequence[int] = (32,), subset: Optional[int] = None,
                 test_subset: Optional[int] = None, subset_seed: int = 0, crop_padding: int = 4,
                 flip: bool = True, on_device: bool = True, seed: int = 0, num_classes: int = 10,
                 augment: Optional[str] = None, randaugment_n: int = 2, randaugment_m: int = 9,
                 random_erasing: float = 0.0):
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.train_size, self.eval_sizes = train_size, list(eval_sizes)
        self.subset, self.test_subset, self.subset_seed = subset, test_subset, subset_seed
        self.crop_padding, self.flip, self.on_device = crop_padding, flip, on_device
        self.seed, self.num_classes = seed, num_classes
        self.augment = RandomAugment(augment, randaugment_n, randaugment_m) if augment else None
        self.random_erasing = random_erasing
        self._train: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        self._test: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def load_arrays(self) -> Arrays:
        raise NotImplementedError

    def check(self) -> None:
        """A cheap look, before any file is written, that the data is there and readable (raises DataError)."""

    def check_subsets(self, images: dict[str, int], where: str) -> None:
        """data.subset and data.test_subset against the images of each split (``images``, by split)."""
        check_subset("data.subset", self.subset, images["train"], self.num_classes, f"the training images in {where}")
        check_subset("data.test_subset", self.test_subset, images["test"], self.num_classes,
                     f"the test images in {where}")

    def describe(self) -> str:
        return self.name

    def _device(self) -> torch.device:
        trainer = self.trainer
        if self.on_device and trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cpu")

    def setup(self, stage: Optional[str] = None) -> None:
        if self._train is not None:
            return
        arrays = self.load_arrays()
        if len(arrays.classes) != self.num_classes:
            raise DataError(f"{self.describe()} has {len(arrays.classes)} classes, config says {self.num_classes}")
        device = self._device()

        def to_tensors(x, y, keep):
            images = torch.from_numpy(np.ascontiguousarray(x[keep])).permute(0, 3, 1, 2).contiguous()
            return images.to(device), torch.from_numpy(y[keep]).to(device)

        train_x, train_y = to_tensors(arrays.train_x, arrays.train_y,
                                      stratified_subset(arrays.train_y, self.subset, self.subset_seed))
        self._train = (resize_uint8(train_x, self.train_size), train_y)
        test_x, test_y = to_tensors(arrays.test_x, arrays.test_y,
                                    stratified_subset(arrays.test_y, self.test_subset, self.subset_seed))
        self._test = {s: (resize_uint8(test_x, s), test_y) for s in self.eval_sizes}

    @property
    def num_train_images(self) -> int:
        return 0 if self._train is None else len(self._train[1])

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
        return [self.eval_dataloader(s) for s in self.eval_sizes]


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

    def describe(self) -> str:
        return "CIFAR-10, JPEG copy"


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

    def load_arrays(self) -> Arrays:
        train, test = self._dataset(True), self._dataset(False)
        return Arrays(train.data, np.array(train.targets), test.data, np.array(test.targets), list(train.classes))

    def describe(self) -> str:
        return "CIFAR-10"


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
        self.num_train_images = 0

    def describe(self) -> str:
        return f"ImageFolder {self.root}"

    def check(self) -> None:
        """Cheap: train/ and val/ hold the same class folders, as many as data.num_classes, with images;
        enough images for data.subset and data.test_subset."""
        from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

        classes = {}
        for split in ("train", "val"):
            folder = self.root / split
            classes[split] = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
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
        self.num_train_images = len(self.train_set)

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
            sampler = RepeatAugSampler(dataset, num_replicas=world, rank=rank, num_repeats=self.repeated_aug)
        else:
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=self.seed, drop_last=True)
        # Lightning calls the train sampler's set_epoch, so each epoch is shuffled anew
        return DataLoader(dataset, batch_size=self.batch_size if train else self.eval_batch_size, sampler=sampler,
                          drop_last=train, num_workers=self.num_workers, pin_memory=torch.cuda.is_available(),
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader(self.train_set, train=True)

    def val_dataloader(self):
        return [self._loader(v, train=False) for v in self.val_sets]

    def eval_dataloader(self, size: int):
        return self._loader(self.val_sets[self.eval_sizes.index(size)], train=False)
