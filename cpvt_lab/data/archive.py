"""The CIFAR-10 JPEG archive: found, checked without decoding, and decoded once into a cache."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from ..provenance import REPO_ROOT
from .arrays import SPLITS, Arrays, load_cached_arrays, save_arrays_atomically
from .errors import DataError

JPEG_ARCHIVE_NAME = "cifar10-jpeg.tar.gz"
JPEG_ARCHIVE_ENV = "CPVT_CIFAR10_JPEG"
CACHE_ENV = "CPVT_CACHE_DIR"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG")  # how every JPEG and every PNG file begins


def default_archive_candidates() -> list[Path]:
    """``../shared/data/`` beside the checkout, then beside the working directory (once, where they are one)."""
    beside = [REPO_ROOT.parent, Path.cwd().parent]
    return list(dict.fromkeys(folder / "shared" / "data" / JPEG_ARCHIVE_NAME for folder in beside))


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

    # the first time, tens of seconds with nothing else to show (a cache keeps the arrays for every later run)
    print(f"decoding {path.name} once into the cache (later runs read the cache)", flush=True)
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


def cached_arrays_path(archive: Path, cache: Path) -> Path:
    return cache / f"cifar10-jpeg-{sha256_of(archive)[:16]}.npz"


def load_jpeg_archive(archive: Path, cache: Path) -> Arrays:
    """Decoded arrays of the archive, from the cache when it holds this exact archive."""
    target = cached_arrays_path(archive, cache)
    arrays = load_cached_arrays(target) if target.exists() else None
    if arrays is None:
        arrays = decode_imagefolder_archive(archive)
        save_arrays_atomically(arrays, target)
    return arrays
