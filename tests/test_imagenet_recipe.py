"""scale=imagenet (DeiT's recipe) on a tiny ImageFolder tree: it runs, and its parts are the ones DeiT uses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cpvt_lab import compose
from cpvt_lab.data import ImageFolderDataModule
from cpvt_lab.fingerprint import run_id
from cpvt_lab.train import run_dir, run_experiment

CLASSES = ("ant", "bee", "cat")


def write_imagefolder(root: Path, train_per_class: int = 8, val_per_class: int = 3, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                img = np.clip(80 * c + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / split / name / f"{i}.jpg")
    return root


@pytest.fixture(scope="module")
def imagefolder(tmp_path_factory) -> Path:
    return write_imagefolder(tmp_path_factory.mktemp("imagenet"))


def test_the_imagenet_scale_is_deits_recipe():
    cfg = compose("peg", ["scale=imagenet", "data.root=/x"])
    assert cfg.data._target_.endswith("ImageFolderDataModule") and cfg.model.size == "deit_tiny"
    assert (cfg.optim.lr, cfg.optim.lr_batch, cfg.optim.weight_decay, cfg.optim.warmup_epochs) == (5e-4, 512, 0.05, 5)
    assert (cfg.optim.mixup, cfg.optim.cutmix, cfg.optim.label_smoothing, cfg.model.drop_path) == (0.8, 1.0, 0.1, 0.1)
    assert (cfg.data.auto_augment, cfg.data.random_erasing, cfg.data.repeated_aug) == ("rand-m9-mstd0.5-inc1", 0.25, 3)
    assert cfg.trainer.max_epochs == 300 and cfg.data.train_size == 224


def test_imagefolder_eval_covers_every_image_once_across_ranks_and_training_repeats(imagefolder, monkeypatch):
    data = ImageFolderDataModule(str(imagefolder), batch_size=4, train_size=32, eval_sizes=[32], num_workers=0,
                                 num_classes=3, repeated_aug=3)
    data.setup("fit")
    seen, train = [], []
    for rank in range(2):
        monkeypatch.setattr(data, "_ranks", lambda rank=rank: (rank, 2))
        seen += list(data.val_dataloader()[0].sampler)
        train.append(list(data.train_dataloader().sampler))
    assert sorted(seen) == list(range(9))
    # repeated augmentation: 24 images x 3 copies over 2 ranks, each rank a half-epoch's worth of distinct draws
    assert len(train[0]) == len(train[1]) == 12
    assert max(np.bincount(train[0] + train[1])) <= 3


def test_imagenet_scale_shrunk_to_seconds_writes_a_row_with_ema(imagefolder, tmp_path):
    cfg = compose("peg", [
        "scale=imagenet", f"data.root={imagefolder}", "data.num_classes=3", "model.size=smoke", "data.train_size=32",
        "data.eval_sizes=[32,48]", "data.batch_size=4", "data.eval_batch_size=5", "data.num_workers=0",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "trainer.enable_progress_bar=false",
        "ema.enabled=true",
        f"results_dir={tmp_path / 'results'}", f"output_dir={tmp_path / 'outputs'}"])
    row = run_experiment(cfg)
    assert row["status"] == "ok" and row["scale"] == "imagenet" and row["dataset"].startswith("ImageFolder")
    assert set(row["top1"]) == set(row["top1_ema"]) == {"32", "48"}
    checkpoint = torch.load(run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt", weights_only=False)
    assert any("EMA" in key for key in checkpoint["callbacks"])  # the average resumes with the run


def test_imagefolder_subsets_are_stratified_like_the_in_memory_sets(imagefolder):
    data = ImageFolderDataModule(str(imagefolder), train_size=32, eval_sizes=[32, 48], num_workers=0,
                                 num_classes=3, subset=6, test_subset=3)
    data.setup("fit")
    assert (data.num_train_images, data.num_test_images) == (6, 3)
    train_classes = [data.train_set.dataset.targets[i] for i in data.train_set.indices]
    assert np.bincount(train_classes).tolist() == [2, 2, 2]
    assert [len(v) for v in data.val_sets] == [3, 3]


def test_an_unknown_imagefolder_setting_is_refused_before_any_work(imagefolder, tmp_path):
    from cpvt_lab.config import ConfigError
    from cpvt_lab.validation import validate
    cfg = compose("peg", ["scale=imagenet", f"data.root={imagefolder}", "data.num_classes=3",
                          "+data.crop_padding=4", f"results_dir={tmp_path / 'r'}", f"output_dir={tmp_path / 'o'}"])
    with pytest.raises(ConfigError, match="crop_padding"):
        validate(cfg)
    assert list(tmp_path.iterdir()) == []
