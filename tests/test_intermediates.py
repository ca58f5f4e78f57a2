"""timm's feature-extraction API on CPVTViT runs the same network as forward_features, for every ablation."""
from __future__ import annotations

import copy

import pytest
import torch
from timm.models._features import FeatureGetterNet

from cpvt_lab import build_model
from cpvt_lab.analysis.measures.features import block_outputs
from cpvt_lab.config import ablation_names, compose
from cpvt_lab.models import vit

ABLATIONS = ablation_names()
SIZES = (32, 48)  # the smoke scale's training size, and a larger grid


def make(name: str, *overrides: str) -> vit.CPVTViT:
    torch.manual_seed(0)
    return build_model(compose(name, ["scale=smoke", *overrides])).eval()


def block_io(model: vit.CPVTViT, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """What enters and what leaves every block, read with hooks as an independent reference."""
    inputs, outputs = [], []
    handles = [h for block in model.blocks for h in (
        block.register_forward_pre_hook(lambda m, args: inputs.append(args[0])),
        block.register_forward_hook(lambda m, args, out: outputs.append(out)))]
    try:
        model.forward_features(x)
    finally:
        for h in handles:
            h.remove()
    return inputs, outputs


@pytest.mark.parametrize("name", ABLATIONS)
@torch.no_grad()
def test_intermediates_are_the_forward_features_computation(name):
    model = make(name)
    p, depth, dim = model.num_prefix_tokens, len(model.blocks), model.embed_dim
    for size in SIZES:
        x = torch.randn(2, 3, size, size)
        grid = size // 4
        expected = model.forward_features(x)
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, expected)
        assert [m.shape for m in maps] == [(2, dim, grid, grid)] * depth
        # block i's intermediate is what enters block i+1; with after_hook=False, what leaves block i
        inputs, outputs = block_io(model, x)
        _, tokens = model.forward_intermediates(x, output_fmt="NLC")
        for got, entering in zip(tokens, inputs[1:]):
            torch.testing.assert_close(got, entering[:, p:])
        _, tokens = model.forward_intermediates(x, output_fmt="NLC", after_hook=False)
        for got, leaving in zip(tokens, outputs):
            torch.testing.assert_close(got, leaving[:, p:])
        # the last intermediate, normed, is forward_features (prefix tokens returned beside it)
        normed = model.forward_intermediates(x, norm=True, output_fmt="NLC", return_prefix_tokens=True,
                                             intermediates_only=True)
        last = normed[-1]
        if p:
            assert last[1].shape == (2, p, dim)
            last = torch.cat([last[1], last[0]], dim=1)
        torch.testing.assert_close(last, expected)


@torch.no_grad()
def test_indices_select_blocks_and_stop_early_runs_no_further():
    model = make("peg_0to5")
    x = torch.randn(2, 3, 32, 32)
    _, every = model.forward_intermediates(x)
    last3 = model.forward_intermediates(x, indices=3, intermediates_only=True)
    chosen = model.forward_intermediates(x, indices=[1, -2], intermediates_only=True)
    for got, want in zip(last3 + chosen, every[9:] + [every[1], every[10]]):
        torch.testing.assert_close(got, want)
    calls = []
    handles = [block.register_forward_hook(lambda m, a, o: calls.append(m)) for block in model.blocks]
    early = model.forward_intermediates(x, indices=[2, 4], stop_early=True, intermediates_only=True)
    for h in handles:
        h.remove()
    assert len(calls) == 5
    torch.testing.assert_close(early, [every[2], every[4]])


@pytest.mark.parametrize("name", ABLATIONS)
@pytest.mark.parametrize("norm", [False, True])
@torch.no_grad()
def test_timm_feature_getter_net_gives_the_same_maps(name, norm):
    model = make(name)
    x = torch.randn(2, 3, 48, 48)
    want = model.forward_intermediates(x, indices=[0, 5, -1], norm=norm, intermediates_only=True)
    # FeatureGetterNet prunes the blocks past the last index (and the head) in place
    features = FeatureGetterNet(copy.deepcopy(model), out_indices=(0, 5, -1), norm=norm)
    assert features.feature_info.channels() == [model.embed_dim] * 3
    torch.testing.assert_close(features(x), want)


@torch.no_grad()
def test_block_outputs_are_what_leaves_each_block_as_the_committed_analyses_measured():
    for name in ("peg", "relative", "learned_gap"):
        model = make(name)
        x = torch.randn(2, 3, 32, 32)
        _, outputs = block_io(model, x)
        maps, logits = block_outputs(model, x)
        p = model.num_prefix_tokens
        for got, leaving in zip(maps, outputs):
            assert torch.equal(got, leaving[:, p:].reshape(2, 8, 8, -1))
        assert torch.equal(logits, model(x))


@pytest.mark.parametrize("name", ABLATIONS)
def test_grad_checkpointing_gives_the_same_loss_and_gradients_and_is_used(name, monkeypatch):
    calls = []

    def counting_checkpoint(*args, **kwargs):
        calls.append(kwargs)
        return torch.utils.checkpoint.checkpoint(*args, **kwargs)

    monkeypatch.setattr(vit, "checkpoint", counting_checkpoint)
    model = make(name, "model.drop_path=0").train()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    results = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        results.append((loss.detach(), {n: q.grad.clone() for n, q in model.named_parameters() if q.grad is not None}))
    assert len(calls) == len(model.blocks)  # once per block, and only when enabled
    if name == "relative":  # the attention bias still reaches the checkpointed block
        assert all(kwargs["attn_mask"] is not None for kwargs in calls)
    if "rope" in name:  # and so does the rotary embedding
        assert all(kwargs["rope"] is not None for kwargs in calls)
    (loss_off, grads_off), (loss_on, grads_on) = results
    torch.testing.assert_close(loss_on, loss_off)
    assert grads_on.keys() == grads_off.keys()
    torch.testing.assert_close(grads_on, grads_off)
    model.eval()
    with torch.no_grad():
        model(x)
    assert len(calls) == len(model.blocks)  # eval never checkpoints
