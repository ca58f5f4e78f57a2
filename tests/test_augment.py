"""Batched per-image augmentation (cpvt_lab/data/augment.py, erasing.py): torchvision's semantics op by op,
one draw per image, reproducible under a seed, no host round trip, wired into the training batches and out of
older run_ids."""
from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision.transforms.v2 import functional as TF

from cpvt_lab.config import compose
from cpvt_lab.data import TensorBatches
from cpvt_lab.data.augment import (
    NUM_BINS,
    OP,
    OPS,
    RandomAugment,
    apply_ops,
    draw_ops,
    magnitude_table,
)
from cpvt_lab.data.erasing import random_erasing
from cpvt_lab.fingerprint import run_id

CPU = torch.device("cpu")
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
# The blends multiply by per-image float32 tensors where torchvision passes Python floats to its kernels, and its
# cast to uint8 truncates: a value a hair either side of an integer comes out one lower or higher if a kernel
# rounds differently (fused multiply-add or not, per device and version). They agree exactly on this CPU today;
# these three may differ by at most 1, at under 1% of pixels. Every other op must agree exactly.
BLENDS = ("Color", "Contrast", "Sharpness")


def images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Noise images (every pixel differs from its neighbours, so a misplaced pixel shows), one of them flat
    (autocontrast's and equalize's special case)."""
    x = torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    x[0] = 77
    return x


def torchvision_op(name: str, image: torch.Tensor, m: float) -> torch.Tensor:
    """torchvision's own functional op, called as its TrivialAugmentWide/RandAugment call it."""
    center_corner = dict(angle=0.0, translate=[0, 0], scale=1.0, center=[0, 0])
    plain = dict(angle=0.0, scale=1.0, shear=[0.0, 0.0])
    return {
        "Identity": lambda: image,
        "ShearX": lambda: TF.affine(image, shear=[math.degrees(math.atan(m)), 0.0], **center_corner),
        "ShearY": lambda: TF.affine(image, shear=[0.0, math.degrees(math.atan(m))], **center_corner),
        "TranslateX": lambda: TF.affine(image, translate=[int(m), 0], **plain),
        "TranslateY": lambda: TF.affine(image, translate=[0, int(m)], **plain),
        "Rotate": lambda: TF.rotate(image, angle=m),
        "Brightness": lambda: TF.adjust_brightness(image, 1.0 + m),
        "Color": lambda: TF.adjust_saturation(image, 1.0 + m),
        "Contrast": lambda: TF.adjust_contrast(image, 1.0 + m),
        "Sharpness": lambda: TF.adjust_sharpness(image, 1.0 + m),
        "Posterize": lambda: TF.posterize(image, int(m)),
        "Solarize": lambda: TF.solarize(image, 255.0 * m),
        "AutoContrast": lambda: TF.autocontrast(image),
        "Equalize": lambda: TF.equalize(image),
    }[name]()


def at(x: torch.Tensor, name: str, m: float) -> torch.Tensor:
    return apply_ops(x, torch.full((len(x),), OP[name]), torch.full((len(x),), m))


@pytest.mark.parametrize("policy", ["trivialaugment", "randaugment"])
@pytest.mark.parametrize("name", OPS)
def test_each_op_at_each_magnitude_is_torchvisions(name, policy, single_thread):
    x = images()
    table, signed = magnitude_table(policy, 32, 32, CPU)
    bins = range(NUM_BINS) if name not in ("Identity", "AutoContrast", "Equalize") else [0]
    for b in bins:
        for sign in (1, -1) if signed[OP[name]] else (1,):
            m = float(table[OP[name], b]) * sign
            ours, theirs = at(x, name, m), torchvision_op(name, x, m)
            diff = (ours.int() - theirs.int()).abs()
            if name in BLENDS:
                assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, (name, m)
            else:
                assert torch.equal(ours, theirs), (name, m)


@pytest.mark.parametrize("name,m", [(n, 0.0) for n in GEOMETRIC + ("Identity", "Brightness", "Color", "Contrast",
                                                                  "Sharpness")] + [("Posterize", 8.0)])
def test_magnitude_zero_is_the_identity(name, m):
    x = images()
    assert torch.equal(at(x, name, m), x)


def test_each_image_draws_its_own_op_and_magnitude_uniformly():
    x = torch.zeros(14_000, 3, 4, 4, dtype=torch.uint8)
    op, magnitude = draw_ops("trivialaugment", x, torch.Generator().manual_seed(0))
    counts = torch.bincount(op, minlength=len(OPS)).float()
    expected = len(x) / len(OPS)
    assert (counts - expected).abs().max() < 5 * math.sqrt(expected)  # 5 sigma of a binomial count
    rotations = magnitude[op == OP["Rotate"]]
    assert len(rotations.unique()) > 40  # 31 bins, both signs
    assert 0.4 < (rotations < 0).float().mean() < 0.6
    _, fixed = draw_ops("randaugment", x, torch.Generator().manual_seed(0), magnitude_bin=9)
    table, _ = magnitude_table("randaugment", 4, 4, CPU)
    assert set(fixed.abs().unique().tolist()) <= set(table[:, 9].unique().tolist())


def test_a_batch_of_one_image_comes_out_as_many_images():
    x = images(1).expand(256, -1, -1, -1)
    out = RandomAugment("trivialaugment")(x, torch.Generator().manual_seed(0))
    assert len(out.flatten(1).unique(dim=0)) > 100  # identity, flat magnitudes and equal draws repeat some


@pytest.mark.parametrize("policy", ["trivialaugment", "randaugment"])
def test_same_seed_same_output_other_seed_other_output(policy):
    augment, x = RandomAugment(policy), images(16)

    def run(seed):
        return augment(x, torch.Generator().manual_seed(seed))

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
def test_shape_dtype_and_device_are_kept(device):
    x = images(5, size=24).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    for out in (RandomAugment("trivialaugment")(x, generator), RandomAugment("randaugment", 3, 20)(x, generator)):
        assert (out.shape, out.dtype, out.device) == (x.shape, torch.uint8, x.device)
    erased = random_erasing(x.float(), 0.5, generator)
    assert (erased.shape, erased.dtype, erased.device) == (x.shape, torch.float32, x.device)


class HostReads(TorchDispatchMode):
    """Records every op that reads a value back to the host or copies one from it: on a GPU each would stall
    the batch's stream (the kernels behind .item(), bool(), boolean-mask indexing, torch.tensor(list))."""

    SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "lift_fresh", "unique", "_unique2"}

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name in ("index", "index_put", "index_put_") and any(
            t is not None and t.dtype == torch.bool for t in args[1])
        if name in self.SYNCING or bool_index:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def test_no_host_round_trip(monkeypatch):
    x, generator = images(8), torch.Generator().manual_seed(0)
    magnitude_table("randaugment", 32, 32, CPU)  # built once per policy, size and device, then cached
    magnitude_table("trivialaugment", 32, 32, CPU)

    def refuse(self, *args, **kwargs):
        raise AssertionError("host round trip")

    for method in ("item", "tolist", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, method, refuse)
    with HostReads() as reads:
        out = RandomAugment("randaugment")(RandomAugment("trivialaugment")(x, generator), generator)
        random_erasing(out.float(), 0.5, generator)
    assert reads.seen == []


def erased_boxes(p: float, n: int = 2000, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The erased pixels of n flat images (N x H x W) and, for each, whether any were erased."""
    flat = torch.full((n, 3, size, size), 5.0)  # noise N(0, 1) never lands on 5.0 exactly
    erased = (random_erasing(flat, p, torch.Generator().manual_seed(seed)) != 5.0).all(dim=1)
    return erased, erased.flatten(1).any(dim=1)


def test_random_erasing_erases_with_its_probability():
    assert not erased_boxes(0.0, n=200)[1].any()
    assert erased_boxes(1.0, n=200)[1].float().mean() > 0.98  # unless none of 10 drawn boxes fits
    assert abs(erased_boxes(0.25)[1].float().mean() - 0.25) < 0.04  # about 4 sigma at n = 2000


def test_random_erasing_boxes_are_rectangles_in_the_configured_range():
    size, min_area, max_area, min_aspect = 32, 0.02, 1 / 3, 0.3  # timm's defaults, random_erasing's
    erased, hit = erased_boxes(1.0, size=size)
    fractions = []
    for box in erased[hit]:
        rows, cols = box.any(dim=1), box.any(dim=0)
        h, w = int(rows.sum()), int(cols.sum())
        assert box.sum() == h * w and box[rows][:, cols].all()  # one solid rectangle
        # sides are rounded from sqrt(area * aspect) and sqrt(area / aspect): the unrounded ones lie within 0.5
        assert (h - 0.5) * (w - 0.5) <= max_area * size * size <= size * size
        assert (h + 0.5) * (w + 0.5) >= min_area * size * size
        assert min_aspect <= (h + 0.5) / (w - 0.5) and (h - 0.5) / (w + 0.5) <= 1 / min_aspect
        fractions.append(h * w / size ** 2)
    assert abs(sum(fractions) / len(fractions) - (min_area + max_area) / 2) < 0.03  # area drawn uniformly


def test_random_erasing_is_reproducible_and_per_image():
    x = torch.zeros(64, 3, 16, 16)
    first = random_erasing(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, random_erasing(x, 0.5, torch.Generator().manual_seed(3)))
    boxes = (first != 0).all(dim=1).flatten(1)
    assert len(boxes[boxes.any(dim=1)].unique(dim=0)) > 20


def epoch_batches(epoch: int, **augmentation) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x = images(40, size=16, seed=1)
    loader = TensorBatches(x, torch.arange(40), 16, (0.5,) * 3, (0.25,) * 3, train=True, crop_padding=2, flip=True,
                           seed=7, epoch=lambda: epoch, **augmentation)
    return list(loader)


def test_an_augmented_epoch_is_fixed_by_seed_and_epoch():
    augmentation = dict(augment=RandomAugment("trivialaugment"), random_erasing=0.5)
    first = epoch_batches(0, **augmentation)
    same = epoch_batches(0, augment=RandomAugment("trivialaugment"), random_erasing=0.5)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, same))
    later = epoch_batches(1, **augmentation)
    assert not torch.equal(first[0][0], later[0][0])
    plain = epoch_batches(0)
    assert [y.tolist() for _, y in plain] == [y.tolist() for _, y in first]  # the augmentation draws come after
    assert not torch.equal(plain[0][0], first[0][0])


def test_evaluation_batches_are_not_augmented():
    x = images(8, size=16)
    kwargs = dict(batch_size=8, mean=(0.5,) * 3, std=(0.25,) * 3)
    plain = next(iter(TensorBatches(x, torch.arange(8), **kwargs)))[0]
    augmented = next(iter(TensorBatches(x, torch.arange(8), **kwargs, augment=RandomAugment("trivialaugment"),
                                        random_erasing=1.0)))[0]
    assert torch.equal(plain, augmented)


def test_the_data_settings_reach_the_training_batches():
    cfg = compose("peg", ["data.augment=randaugment", "data.randaugment_n=3", "data.randaugment_m=5",
                          "data.random_erasing=0.25"])
    datamodule = instantiate(cfg.data)
    assert (datamodule.augment.policy, datamodule.augment.rounds, datamodule.augment.magnitude_bin) == \
        ("randaugment", 3, 5)
    assert datamodule.random_erasing == 0.25
    assert instantiate(compose("peg").data).augment is None


def test_older_run_ids_stay_and_augmentation_enters_only_when_on():
    # the run_id of the default smoke run, and of the committed smoke rows in results/smoke/runs.jsonl
    # (python -m cpvt_lab.grid paper scale=smoke 'seeds=[0,1]', ablation peg), from before these settings existed
    assert run_id(compose("peg", ["scale=smoke"])) == "8d7df1aadb32"
    grid = ["scale=smoke", "data.train_size=24", "data.eval_sizes=[24,32,40,48]"]
    assert [run_id(compose("peg", [*grid, f"seed={s}"])) for s in (0, 1)] == ["b24b898d992c", "3586a170dd86"]
    assert run_id(compose("peg", ["data=cifar10"])) == "8bb6defba1b6"
    base = run_id(compose("peg"))
    ids = {run_id(compose("peg", [o])) for o in ("data.augment=trivialaugment", "data.augment=randaugment",
                                                 "data.random_erasing=0.25")}
    assert len(ids) == 3 and base not in ids
    # RandAugment's settings mean nothing under another policy, and leave its id alone there
    assert run_id(compose("peg", ["data.randaugment_m=3"])) == base
    assert run_id(compose("peg", ["data.augment=randaugment", "data.randaugment_m=3"])) != \
        run_id(compose("peg", ["data.augment=randaugment"]))


def test_a_run_trains_with_augmentation_and_erasing(fast_overrides, single_thread):
    from cpvt_lab.train import run_experiment

    row = run_experiment(compose("peg", [*fast_overrides, "data.augment=trivialaugment", "data.random_erasing=0.25"]))
    assert row["status"] == "ok" and row["config"]["data"]["augment"] == "trivialaugment"
