"""The fast path, checked on a CPU where it can be: bf16 autocast, compiled checkpoints, device placement,
batch counts, the sync-free NaN check; and, on a GPU only, that batching and training steps never make
the host wait for the device."""
from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.nn as nn

from cpvt_lab import build_model, compose
from cpvt_lab import module as module_lib
from cpvt_lab.bench.end_to_end import SyntheticData
from cpvt_lab.compiled.guard import compile_in_place
from cpvt_lab.data import TensorBatches
from cpvt_lab.data.augment import RandomAugment
from cpvt_lab.fingerprint import run_id
from cpvt_lab.module import ClassificationModule, NonFiniteLossError
from cpvt_lab.train import run_dir, run_experiment

pytestmark = pytest.mark.usefixtures("single_thread")

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ---------------------------------------------------------------- bf16 autocast
@pytest.mark.parametrize("ablation", ["relative", "peg", "sincos", "learned", "rope_mixed", "peg_rope"])
def test_bf16_autocast_trains_every_kind_of_position_encoding(ablation):
    torch.manual_seed(0)
    model = build_model(compose(ablation, ["scale=smoke"])).eval()
    x = torch.randn(4, 3, 32, 32)
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    # bf16 keeps about 3 significant digits; a dtype clash or a dropped bias would be far off
    assert (out.float() - reference).norm() / reference.norm() < 3e-2
    out.float().sum().backward()
    grads = [p.grad for p in model.pos_encoding.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_a_run_under_lightnings_bf16_autocast_trains_and_evaluates(fast_overrides):
    row = run_experiment(compose("relative", fast_overrides + ["trainer.precision=bf16-mixed"]))
    assert row["status"] == "ok" and row["config"]["trainer"]["precision"] == "bf16-mixed"


def test_relative_bias_is_an_additive_float_mask_and_the_others_leave_flash_attention_free():
    cfg = compose("relative", ["scale=smoke"])
    bias = build_model(cfg).pos_encoding.attn_bias(0, (8, 8))
    assert bias.is_floating_point() and bias.shape == (1, 3, 65, 65)
    for name in ("none", "learned", "sincos", "peg_gap", "conv1x1_stack", "rope_axial", "rope_mixed", "peg_rope"):
        model = build_model(compose(name, ["scale=smoke"]))
        assert model.pos_encoding.attn_bias(0, (8, 8)) is None, name


# ---------------------------------------------------------------- compile
def check_clean_checkpoint(cfg):
    state = torch.load(run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert not [k for k in state if "_orig_mod" in k]
    plain = build_model(cfg)  # never compiled
    plain.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")},
                          strict=True)
    assert plain(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_the_compiled_module_keeps_clean_keys_and_evaluates_without_compiling(monkeypatch, fresh_dynamo):
    graphs = []

    def counting_backend(graph, example_inputs):  # dynamo's graphs, run as they are
        graphs.append(graph)
        return graph.forward

    monkeypatch.setattr(module_lib, "compile_in_place", functools.partial(compile_in_place, backend=counting_backend))
    cfg = compose("peg", ["scale=smoke", "data.batch_size=8", "data.eval_sizes=[32,48]"])
    module = ClassificationModule(build_model(cfg), eval_sizes=[32, 48], num_classes=10, compile=True)
    assert module.model._compiled_call_impl is not None  # compiled in place, not wrapped
    state = module.state_dict()
    assert not [k for k in state if "_orig_mod" in k]
    build_model(cfg).load_state_dict({k.removeprefix("model."): v for k, v in state.items()
                                      if k.startswith("model.")}, strict=True)

    data = SyntheticData.from_config(cfg.data, num_images=20)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, limit_val_batches=1)
    trainer.validate(module, datamodule=data, verbose=False)
    assert graphs == []  # evaluation at two sizes compiled nothing
    module.model.eval()(torch.zeros(2, 3, 32, 32))
    assert len(graphs) >= 1  # outside evaluation the compiled forward is used


@pytest.mark.slow
def test_a_compiled_run_with_inductor_saves_clean_keys(fast_overrides):
    cfg = compose("peg_gap", fast_overrides + ["compile=true"])
    assert run_experiment(cfg)["status"] == "ok"
    check_clean_checkpoint(cfg)


# ---------------------------------------------------------------- data on the device
def stub_trainer(device):
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), global_rank=0,
                           world_size=1, current_epoch=0)


@pytest.mark.parametrize("on_device, expected", [(True, "meta"), (False, "cpu")])
def test_images_live_on_the_trainers_device_unless_told_otherwise(on_device, expected):
    cfg = compose("peg", ["scale=smoke", "data.batch_size=4", "data.eval_sizes=[32]", f"data.on_device={on_device}"])
    data = SyntheticData.from_config(cfg.data, num_images=20)
    data.trainer = stub_trainer("meta")  # any device other than the CPU shows where the tensors go
    data.setup()
    assert data._train[0].device.type == expected and data._train[0].dtype == torch.uint8
    assert data._test[32][0].device.type == expected


def test_lightning_hands_batches_already_on_the_device_through_without_a_copy():
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    images, labels = torch.rand(8, 3, 4, 4), torch.arange(8)
    moved = trainer.strategy.batch_to_device((images, labels))
    assert moved[0].data_ptr() == images.data_ptr() and moved[1].data_ptr() == labels.data_ptr()


@pytest.mark.parametrize("n, batch, world", [(40, 8, 1), (43, 8, 1), (43, 5, 2), (7, 10, 1)])
def test_len_is_the_number_of_batches_each_rank_yields(n, batch, world):
    images, labels = torch.zeros(n, 3, 4, 4, dtype=torch.uint8), torch.arange(n)
    for train in (True, False):
        for rank in range(world):
            loader = TensorBatches(images, labels, batch, (0,) * 3, (1,) * 3, train=train, crop_padding=1,
                                   flip=True, rank=rank, world_size=world)
            batches = list(loader)
            assert len(loader) == len(batches)
            if train:
                assert all(len(y) == batch for _, y in batches)  # the ragged last batch is dropped


# ---------------------------------------------------------------- the NaN check, without per-step syncs
class NaNOnThirdCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.calls = nn.Linear(3 * 32 * 32, 10), 0

    def forward(self, x):
        self.calls += 1
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.calls == 3 else out


def test_a_nan_loss_mid_epoch_stops_training_at_the_epochs_last_batch():
    data = SyntheticData.from_config(compose("peg", ["scale=smoke", "data.batch_size=8", "data.eval_sizes=[32]"]).data,
                                     num_images=40)
    module = ClassificationModule(NaNOnThirdCall(), eval_sizes=[32], num_classes=10)
    seen = []

    class Count(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(batch_idx)

    trainer = pl.Trainer(accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[Count()])
    with pytest.raises(NonFiniteLossError, match="epoch 0"):
        trainer.fit(module, datamodule=data)
    assert seen == [0, 1, 2, 3, 4]  # the NaN at batch 2 is reported at batch 4, before epoch 1 starts


# ---------------------------------------------------------------- GPU only: no host waits
@cuda
@pytest.mark.parametrize("augment", [None, "trivialaugment", "randaugment"])
def test_device_batches_are_made_without_host_device_syncs(augment):
    images = torch.randint(0, 256, (512, 3, 32, 32), dtype=torch.uint8, device="cuda")
    labels = torch.arange(512, device="cuda") % 10
    augmentation = dict(augment=RandomAugment(augment), random_erasing=0.25) if augment else {}
    loader = TensorBatches(images, labels, 128, (0.5,) * 3, (0.25,) * 3, train=True, crop_padding=4, flip=True,
                           **augmentation)
    batches = iter(loader)
    # the epoch's permutation is drawn here (and the policy's magnitude table copied to the device, once);
    # a wait once per epoch would be allowed
    first = next(batches)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = [first, *batches]  # every further batch: gather, crop, flip, augment, normalise on the device
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(batches) == 4 and batches[0][0].device.type == "cuda" and batches[0][0].shape == (128, 3, 32, 32)
    again = list(loader)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))  # same seed and epoch, same batches


@cuda
@pytest.mark.parametrize("ablation", ["peg", "relative"])
def test_training_steps_never_wait_for_the_device(ablation, fast_overrides):
    class SyncsAreErrors(pl.Callback):
        """Inside batches 1 .. n-2 (forward, backward, optimiser step) any host-device sync raises."""

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if 1 <= batch_idx < trainer.num_training_batches - 1:
                torch.cuda.set_sync_debug_mode("error")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            torch.cuda.set_sync_debug_mode(0)

    overrides = [o for o in fast_overrides if "limit_train_batches" not in o]
    cfg = compose(ablation, overrides + ["data.batch_size=20"])
    try:
        row = run_experiment(cfg, callbacks=[SyncsAreErrors()])
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert row["status"] == "ok" and row["device"].startswith("cuda")
