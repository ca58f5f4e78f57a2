"""Shared fixtures: a tiny CIFAR-like JPEG archive built on the fly, and shrunk run configs."""
from __future__ import annotations

import functools
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from cpvt_lab import compose
from cpvt_lab.fingerprint import recorded_run_ids, run_id

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_tiny_archive(path: Path, train_per_class: int = 12, test_per_class: int = 6, size: int = 32) -> Path:
    """A .tar.gz in the JPEG copy's ImageFolder layout; each class has its own colour so it is learnable."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for c, name in enumerate(CLASSES):
                for i in range(count):
                    base = np.array([25 * c, 255 - 25 * c, (80 * c) % 256], dtype=np.float64)
                    img = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format="JPEG", quality=90)
                    info = tarfile.TarInfo(f"cifar10/{split}/{name}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def with_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    """A copy of the archive ``source`` in which member ``name`` holds ``data`` (added if it is not there)."""
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as tar:
        for member in src:
            if member.name != name:
                tar.addfile(member, src.extractfile(member))
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return target


def pytest_configure(config):
    """Under pytest-xdist each test process takes its share of the cores: a process with as many threads as
    the machine has cores, beside others doing the same, waits on them more than it computes."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory) -> Path:
    return write_tiny_archive(tmp_path_factory.mktemp("data") / "tiny-cifar.tar.gz")


@pytest.fixture()
def fast_overrides(tiny_archive, tmp_path) -> list[str]:
    """Overrides that make any ablation train one step and evaluate at two sizes in about a second."""
    return fast_overrides_for(tiny_archive, tmp_path)


@pytest.fixture(scope="module")
def module_fast_overrides(tiny_archive, tmp_path_factory) -> list[str]:
    """``fast_overrides`` shared by the tests of one module (runs made once, read by several tests)."""
    return fast_overrides_for(tiny_archive, tmp_path_factory.mktemp("module"))


def fast_overrides_for(tiny_archive: Path, tmp_path: Path) -> list[str]:
    return [
        "scale=smoke", f"data.archive={tiny_archive}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.subset=null", "data.test_subset=null", "data.batch_size=20", "data.eval_sizes=[32,48]",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=1", "trainer.enable_progress_bar=false",
        "finetune.epochs=1", f"results_dir={tmp_path / 'results'}", f"output_dir={tmp_path / 'outputs'}",
    ]


@pytest.fixture()
def single_thread():
    """One intra-op thread for tests that time nothing: on a shared CPU, threads that spin while
    another process holds the cores make small models several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def compiler_stance_left_as_found():
    """torch.compiler's stance is one setting for the whole process: a test that leaves it changed (an
    evaluation that raised while it was force_eager) makes every later compiled run eager. Such a test fails
    here, by name, and the stance is put back so that the tests after it are not affected."""
    from torch._dynamo import eval_frame

    before = eval_frame._stance
    yield
    after = eval_frame._stance
    if after != before:
        eval_frame._set_stance(before)
        pytest.fail(f"the test left torch.compiler's stance at {after.stance!r} (found {before.stance!r})")


@pytest.fixture()
def fresh_dynamo():
    """No compiled graphs from earlier tests: dynamo keeps a bounded number per code object, and every
    module's compiled call shares one, so a long test session would otherwise run later ones eagerly."""
    import torch

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def model_and_batches(ablation="peg_0to5", batches=2, batch_size=4):
    """A smoke-scale network in train mode (drop-path on) and random batches, for the compile guard."""
    import torch

    from cpvt_lab import build_model, compose

    cfg = compose(ablation, ["scale=smoke"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    generator = torch.Generator().manual_seed(1)
    data = [(torch.randn(batch_size, 3, 32, 32, generator=generator),
             torch.randint(0, 10, (batch_size,), generator=generator)) for _ in range(batches)]
    return model, data


def bf16():
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


class Interrupted(BaseException):
    """Stands for a kill: not an Exception, so no failed row is written."""


def stop_at_epoch(epoch: int):
    """A callback that interrupts training as ``epoch`` starts (a run killed there)."""
    import pytorch_lightning as pl

    class StopAtEpoch(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == epoch:
                raise Interrupted()

    return StopAtEpoch()


def stop_after_training():
    """A callback that interrupts a run once it has trained, before its row (a run killed there)."""
    import pytorch_lightning as pl

    class StopAfterTraining(pl.Callback):
        def on_fit_end(self, trainer, pl_module):
            raise Interrupted()

    return StopAfterTraining()


@functools.lru_cache(maxsize=None)
def _composed(ablation, *overrides):
    cfg = compose(ablation, list(overrides))
    return json.dumps(OmegaConf.to_container(cfg, resolve=True)), run_id(cfg)


def made_row(ablation, seed, top1, scale="smoke", epochs=2, train_size=24, older_id=False, **extra):
    """A row as a run records it: its config, and the run_id that config gives (``older_id``: the other id the
    same config may carry, as a row made where the device's own precision differs does)."""
    config = extra.pop("config", None)
    if config is None:
        config = json.loads(_composed(ablation, f"scale={scale}", f"seed={seed}", f"trainer.max_epochs={epochs}",
                                      f"data.train_size={train_size}")[0])
        # a data module whose test set size nothing knows: the intervals are the seeds' alone, as worked by hand
        config["data"] = {**config["data"], "_target_": "tests.UnknownDataModule", "test_subset": None}
    rid = run_id(OmegaConf.create(config))
    if older_id:
        rid = next(i for i in recorded_run_ids(config) if i != rid)
    return {"run_id": rid, "ablation": ablation, "seed": seed, "scale": scale,
            "dataset": "CIFAR-10, JPEG copy", "epochs": epochs, "train_size": train_size, "model_size": "smoke",
            "status": "ok", "top1": {str(k): v for k, v in top1.items()}, "finetuned_sizes": [], "config": config,
            **extra}
