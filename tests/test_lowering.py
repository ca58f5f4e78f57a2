"""``peg_lowering=taps`` computes what the convolution computes: a layer's output and gradients, a stacked
layer, autocast's dtype, and a whole model's training steps, to float tolerance; it touches only the PEG's
depth-wise convolutions and draws nothing from the random generator."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

from cpvt_lab.config import build_model, compose
from cpvt_lab.models.lowering import DepthwiseTaps, as_lowered, lower_pegs
from cpvt_lab.models.pos_encodings import peg_conv


def grid_input(batch=2, dim=8, rows=8, cols=9):
    """Tokens laid out as the PEG lays them out: a channels-last view of (batch, tokens, dim)."""
    tokens = torch.randn(batch, rows * cols, dim, requires_grad=True)
    return tokens, tokens.transpose(1, 2).reshape(batch, dim, rows, cols)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("padding", ["zeros", "none", "circular"])
def test_a_depthwise_layer_computed_tap_by_tap_gives_the_convolutions_output_and_gradients(kernel, padding):
    torch.manual_seed(0)
    conv = peg_conv(8, kernel, padding, "depthwise")
    taps = as_lowered(conv, "taps")
    assert isinstance(taps, DepthwiseTaps) and taps.weight is conv.weight and taps.bias is conv.bias
    results = []
    for layer in (conv, taps):
        torch.manual_seed(1)
        tokens, grid = grid_input()
        out = layer(grid)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), tokens.grad, conv.weight.grad.clone(), conv.bias.grad.clone()))
        conv.zero_grad(set_to_none=True)
    for expected, got in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_stacked_layers_computed_tap_by_tap_give_each_members_convolution():
    torch.manual_seed(0)
    convs = [peg_conv(8, 3, "zeros", "depthwise") for _ in range(3)]
    members = [as_lowered(c, "taps") for c in convs]
    params, buffers = stack_module_state(members)
    grids = torch.randn(3, 2, 8, 8, 9)
    stacked = vmap(lambda p, b, x: functional_call(members[0], (p, b), (x,)))(params, buffers, grids)
    for k, conv in enumerate(convs):
        torch.testing.assert_close(stacked[k], conv(grids[k]), rtol=1e-5, atol=1e-5)


def test_under_autocast_the_taps_compute_in_the_dtype_the_convolution_does():
    torch.manual_seed(0)
    conv = peg_conv(8, 3, "zeros", "depthwise")
    _, grid = grid_input()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = conv(grid), as_lowered(conv, "taps")(grid)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected.float(), rtol=0.05, atol=0.05)


def test_only_the_position_encodings_depthwise_convolutions_are_lowered_and_nothing_is_drawn():
    for ablation, lowered in (("peg_0to5", 6), ("peg27_at_m1", 0), ("conv1x1_stack", 0), ("learned", 0)):
        cfg = compose(ablation, ["scale=smoke"])
        torch.manual_seed(0)
        model = build_model(cfg)
        state = torch.get_rng_state()
        names = dict(model.named_parameters())
        lower_pegs(model, "taps")
        assert torch.equal(torch.get_rng_state(), state), ablation
        assert dict(model.named_parameters()) == names, ablation  # the same parameter objects, the same names
        assert sum(isinstance(m, DepthwiseTaps) for m in model.modules()) == lowered, ablation
        lower_pegs(model, "conv")  # and back, as the bench counts a network's FLOPs
        assert dict(model.named_parameters()) == names and not any(isinstance(m, DepthwiseTaps) for m in model.modules())
        assert not any(isinstance(m, DepthwiseTaps) for m in model.patch_embed.modules())
    separable = compose("peg", ["scale=smoke", "model.pos.kind=separable", "peg_lowering=taps"])
    layers = [type(m) for m in build_model(separable).pos_encoding.modules() if isinstance(m, nn.Conv2d)]
    assert layers == [DepthwiseTaps, nn.Conv2d]  # the depth-wise half; the 1x1 half stays a convolution


@pytest.mark.parametrize("ablation", ["peg_0to5", "peg_gap"])
def test_a_model_trained_with_either_lowering_takes_the_same_steps(ablation):
    """Same seed, same batches, drop-path on: the per-step losses and the final weights agree (fp32). SGD, not
    AdamW: a key's bias has no true gradient (softmax ignores it), and Adam would scale either run's float noise
    there up to a full step of the learning rate."""
    runs = []
    for lowering in ("conv", "taps"):
        cfg = compose(ablation, ["scale=smoke", f"peg_lowering={lowering}", "model.drop_path=0.1"])
        torch.manual_seed(0)
        model = build_model(cfg).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(4):
            images = torch.randn(8, 3, cfg.data.train_size, cfg.data.train_size, generator=generator)
            labels = torch.randint(0, cfg.data.num_classes, (8,), generator=generator)
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        runs.append((losses, model.state_dict()))
    (conv_losses, conv_state), (taps_losses, taps_state) = runs
    assert any(isinstance(m, DepthwiseTaps) for m in build_model(
        compose(ablation, ["scale=smoke", "peg_lowering=taps"])).modules())
    assert taps_losses == pytest.approx(conv_losses, rel=1e-5)
    assert taps_state.keys() == conv_state.keys()
    for name in conv_state:
        torch.testing.assert_close(taps_state[name], conv_state[name], rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
