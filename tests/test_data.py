"""The in-memory data path: augmentation semantics, determinism, caching, and clear errors."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from cpvt_lab.data import (ArrayDataModule, Cifar10JpegDataModule, DataError, ImageFolderDataModule,
                           TensorBatches)
from cpvt_lab.data.archive import (check_imagefolder_archive, decode_imagefolder_archive, default_archive_candidates,
                                   load_jpeg_archive, locate_jpeg_archive)
from cpvt_lab.data.batches import random_crop, random_flip
from cpvt_lab.data import memory
from cpvt_lab.data.memory import resize_uint8
from cpvt_lab.data.subsets import stratified_subset
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.results import read_rows

from conftest import CLASSES, with_member


def batch(n=6, size=8):
    return torch.arange(n * 3 * size * size, dtype=torch.int64).reshape(n, 3, size, size).to(torch.uint8)


def test_random_crop_is_a_window_of_the_zero_padded_image():
    x = batch()
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert torch.equal(random_crop(x, 0, torch.Generator()), x)


def test_random_flip_mirrors_about_half_of_the_images():
    x = torch.rand(400, 3, 4, 4)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped ^ kept)
    assert 150 < int(flipped.sum()) < 250


def test_training_batches_are_deterministic_per_seed_and_epoch_and_cover_each_image_once():
    images, labels = batch(n=40), torch.arange(40)
    def epoch(seed, e):
        return list(TensorBatches(images, labels, 8, (0, 0, 0), (1, 1, 1), train=True, crop_padding=2,
                                  flip=True, seed=seed, epoch=lambda: e))
    a, b, c = epoch(0, 0), epoch(0, 0), epoch(0, 1)
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, b))
    assert not all(torch.equal(y1, y2) for (_, y1), (_, y2) in zip(a, c))
    assert sorted(torch.cat([y for _, y in a]).tolist()) == list(range(40))
    assert a[0][0].shape == (8, 3, 8, 8) and a[0][0].dtype == torch.float32


def test_ranks_split_one_permutation_without_overlap():
    images, labels = batch(n=40), torch.arange(40)
    seen = [torch.cat([y for _, y in TensorBatches(images, labels, 5, (0,) * 3, (1,) * 3, train=True, seed=3,
                                                    rank=r, world_size=2)]) for r in (0, 1)]
    assert len(set(seen[0].tolist()) & set(seen[1].tolist())) == 0
    assert len(seen[0]) == len(seen[1]) == 20


def test_eval_batches_keep_order_and_normalise():
    images, labels = batch(n=7), torch.arange(7)
    loader = TensorBatches(images, labels, 3, (0.5,) * 3, (0.25,) * 3)
    assert len(loader) == 3
    xs, ys = zip(*loader)
    assert torch.equal(torch.cat(ys), labels)
    expected = (images.float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(torch.cat(xs), expected)


def test_stratified_subset_takes_equal_counts_per_class():
    labels = np.repeat(np.arange(10), 50)
    picked = stratified_subset(labels, 100, seed=0)
    assert np.all(np.bincount(labels[picked]) == 10)
    assert np.array_equal(picked, stratified_subset(labels, 100, seed=0))
    assert len(stratified_subset(labels, None)) == 500


def test_resize_keeps_uint8_and_size():
    out = resize_uint8(batch(n=2, size=32), 24)
    assert out.shape == (2, 3, 24, 24) and out.dtype == torch.uint8


@pytest.mark.parametrize("size", [24, 40, 48])
def test_resize_is_the_exact_antialiased_bilinear_resize_rounded_once(size):
    # why resize_uint8 is not torchvision's uint8 resize (up to 1 level off on the CPU): see its comment
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    exact = torch.nn.functional.interpolate(images.double(), size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)
    assert (resize_uint8(images, size).double() - exact).abs().max() <= 0.5 + 1e-4


def test_archive_decodes_to_imagefolder_classes_and_caches_atomically(tiny_archive, tmp_path):
    arrays = load_jpeg_archive(tiny_archive, tmp_path)
    assert arrays.classes == CLASSES
    assert arrays.train_x.shape == (120, 32, 32, 3) and arrays.test_x.shape == (60, 32, 32, 3)
    assert np.all(np.bincount(arrays.train_y) == 12)
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npz"  # no temporary file left behind
    again = load_jpeg_archive(tiny_archive, tmp_path)
    assert np.array_equal(again.train_x, arrays.train_x)


def test_corrupt_cache_is_rebuilt(tiny_archive, tmp_path):
    load_jpeg_archive(tiny_archive, tmp_path)
    cache = next(tmp_path.iterdir())
    cache.write_bytes(b"not an npz")
    assert load_jpeg_archive(tiny_archive, tmp_path).train_x.shape[0] == 120


def test_truncated_archive_fails_with_a_clear_message(tiny_archive, tmp_path):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(tiny_archive.read_bytes()[:2000])
    with pytest.raises(DataError, match="truncated or corrupt"):
        decode_imagefolder_archive(broken)


def test_a_member_pillow_cannot_decode_is_named_by_the_decoder(tiny_archive, tmp_path):
    # begins like a JPEG, so the cheap check lets it through; the decoder still says which member it is
    name = "cifar10/test/dog/0003.jpg"
    broken = with_member(tiny_archive, tmp_path / "broken.tar.gz", name, b"\xff\xd8\xff" + b"garbage" * 10)
    assert check_imagefolder_archive(broken, num_classes=10) == {"train": 120, "test": 60}
    with pytest.raises(DataError, match=f"member {name} cannot be decoded") as err:
        decode_imagefolder_archive(broken)
    assert err.value.key == "data.archive" and "BytesIO" not in str(err.value)


def test_check_and_decoder_both_refuse_a_stray_file_among_the_images(tiny_archive, tmp_path):
    stray = with_member(tiny_archive, tmp_path / "stray.tar.gz", "cifar10/train/cat/notes.txt", b"notes\n")
    for read in (lambda: check_imagefolder_archive(stray, num_classes=10), lambda: decode_imagefolder_archive(stray)):
        with pytest.raises(DataError, match="member cifar10/train/cat/notes.txt is not an image"):
            read()


@pytest.mark.parametrize("cached", [False, True], ids=["read_through", "from_cache"])
def test_a_subset_larger_than_its_split_is_refused(tiny_archive, tmp_path, cached):
    if cached:  # the counts then come from the cache's labels, not from reading the archive
        load_jpeg_archive(tiny_archive, tmp_path)
    data = dict(archive=str(tiny_archive), cache_dir=str(tmp_path))
    Cifar10JpegDataModule(subset=120, test_subset=60, batch_size=120, **data).check()  # all of them is allowed
    with pytest.raises(DataError, match="at most the 100 images a run trains on .*less the validation split.*got 101"):
        Cifar10JpegDataModule(val_split=20, batch_size=101, **data).check()  # an epoch of no batch
    with pytest.raises(DataError, match="from 10 to 120 .the training images in .*, got 121") as err:
        Cifar10JpegDataModule(subset=121, batch_size=20, **data).check()
    assert err.value.key == "data.subset"
    with pytest.raises(DataError, match="from 10 to 60 .the test images in .*, got 61") as err:
        Cifar10JpegDataModule(test_subset=61, batch_size=20, **data).check()
    assert err.value.key == "data.test_subset"


def test_missing_archive_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("CPVT_CIFAR10_JPEG", raising=False)
    with pytest.raises(DataError, match="data.archive=") as err:
        locate_jpeg_archive(str(tmp_path / "nowhere.tar.gz"))
    assert "nowhere.tar.gz" in str(err.value)
    monkeypatch.setenv("CPVT_CIFAR10_JPEG", str(tmp_path / "env.tar.gz"))
    with pytest.raises(DataError, match="CPVT_CIFAR10_JPEG"):
        locate_jpeg_archive(None)


def test_environment_variable_locates_the_archive(tiny_archive, monkeypatch):
    monkeypatch.setenv("CPVT_CIFAR10_JPEG", str(tiny_archive))
    assert locate_jpeg_archive(None) == tiny_archive.resolve()


def test_the_default_places_of_the_archive_are_each_looked_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # beside the checkout and beside the working directory: one place
    assert default_archive_candidates() == [REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert default_archive_candidates()[1] == tmp_path / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.mark.skipif(not any(p.is_file() for p in default_archive_candidates()), reason="shared archive absent")
def test_the_shared_archive_is_found_by_default(monkeypatch):
    monkeypatch.delenv("CPVT_CIFAR10_JPEG", raising=False)
    assert locate_jpeg_archive(None).name == "cifar10-jpeg.tar.gz"


def test_the_data_targets_of_the_configs_and_of_the_committed_runs_name_the_data_modules():
    # analysis re-instantiates a run's data from the config it recorded: wherever a module moves
    # inside cpvt_lab/data/, cpvt_lab.data.<Module> must keep naming it
    configs = sorted((REPO_ROOT / "cpvt_lab" / "conf" / "data").glob("*.yaml"))
    targets = {OmegaConf.load(c)["_target_"] for c in configs}
    recorded = {row["config"]["data"]["_target_"] for row in read_rows(REPO_ROOT / "results" / "smoke")}
    assert len(configs) == 3 and recorded and recorded <= targets
    for target in targets:
        assert target.startswith("cpvt_lab.data.") and target.count(".") == 2
        assert issubclass(get_class(target), (ArrayDataModule, ImageFolderDataModule))


def test_runs_of_one_process_share_the_device_tensors_of_one_set(tiny_archive, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "RECENT_SETS", OrderedDict())
    settings = dict(archive=str(tiny_archive), cache_dir=str(tmp_path / "cache"), eval_sizes=[32, 48])
    first = Cifar10JpegDataModule(**settings)
    first.setup()
    loads, load = [], Cifar10JpegDataModule.load_arrays
    monkeypatch.setattr(Cifar10JpegDataModule, "load_arrays", lambda self: loads.append(1) or load(self))
    again = Cifar10JpegDataModule(**settings, seed=5, batch_size=7)  # another run of the same images
    again.setup()
    assert loads == [] and again._train[0] is first._train[0] and again._test[48][0] is first._test[48][0]
    other = Cifar10JpegDataModule(**{**settings, "eval_sizes": [24]}, subset=20)  # other images: made anew
    other.setup()
    assert loads == [1] and len(other._train[1]) == 20
    assert torch.equal(other._test[24][1], first._test[32][1])  # the same test images, at another size


def test_the_shared_sets_are_bounded(monkeypatch):
    monkeypatch.setattr(memory, "RECENT_SETS", OrderedDict())
    made = [memory.recent_or_made(("k", i), lambda: (torch.zeros(1), torch.zeros(1)))
            for i in range(memory.RECENT_SETS_MAX + 3)]
    assert len(made) == memory.RECENT_SETS_MAX + 3 and len(memory.RECENT_SETS) <= memory.RECENT_SETS_MAX
    assert ("k", 0) not in memory.RECENT_SETS
