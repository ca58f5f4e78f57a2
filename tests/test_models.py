"""The properties that make each position encoding and head what it is."""
from __future__ import annotations

import math

import pytest
import timm
import torch

from cpvt_lab.models import CPVTViT, load_timm_state_dict
from cpvt_lab.models.pos_encodings import GridResidual, conv1x1_stack, peg_conv


def make(pos: dict, head: str = "cls", **kw) -> CPVTViT:
    torch.manual_seed(0)
    return CPVTViT(pos, head, size="smoke", **kw).eval()


def shuffle_patches(images: torch.Tensor, patch: int, perm: torch.Tensor) -> torch.Tensor:
    b, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    tiles = images.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c, patch, patch)
    tiles = tiles[:, perm].reshape(b, gh, gw, c, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return tiles.reshape(b, c, h, w)


@pytest.mark.parametrize("pos", [dict(name="none"), dict(name="learned"), dict(name="sincos"),
                                 dict(name="relative"), dict(name="peg", positions=[-1, 0, 5]),
                                 dict(name="conv1x1_stack", positions=[0])])
@pytest.mark.parametrize("head", ["cls", "gap"])
def test_every_strategy_runs_at_train_and_other_sizes(pos, head):
    model = make(pos, head)
    for size in (32, 48, 24):
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_none_gap_is_invariant_to_permuting_patches():
    model = make(dict(name="none"), "gap")
    x = torch.randn(2, 3, 32, 32)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(shuffle_patches(x, 4, perm)), model(x), atol=1e-5, rtol=1e-4)


def test_learned_and_peg_are_not_permutation_invariant():
    x = torch.randn(2, 3, 32, 32)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    for pos in (dict(name="learned"), dict(name="peg")):
        model = make(pos, "gap")
        assert (model(shuffle_patches(x, 4, perm)) - model(x)).abs().max() > 1e-4  # float noise is ~1e-7


def test_circular_peg_gap_is_invariant_to_whole_patch_cyclic_shifts_zero_padding_is_not():
    x = torch.randn(2, 3, 32, 32)
    shifted = torch.roll(x, shifts=(8, 4), dims=(2, 3))  # two and one whole patches
    circular = make(dict(name="peg", positions=[0, 3], padding="circular"), "gap")
    torch.testing.assert_close(circular(shifted), circular(x), atol=1e-5, rtol=1e-4)
    zeros = make(dict(name="peg", positions=[0, 3], padding="zeros"), "gap")
    assert (zeros(shifted) - zeros(x)).abs().max() > 1e-3


def test_conv1x1_stack_mixes_no_neighbouring_tokens_while_peg_does():
    torch.manual_seed(0)
    x = torch.randn(1, 1 + 36, 16)  # a class token and a 6 x 6 grid
    bumped = x.clone()
    bumped[0, 1 + 14] += 1.0  # one patch token
    for fn, expect_neighbours in ((conv1x1_stack(16, 12), False), (peg_conv(16, 3, "zeros", "depthwise"), True)):
        layer = GridResidual(fn, num_prefix_tokens=1)
        changed = (layer(bumped, (6, 6)) - layer(x, (6, 6))).abs().sum(-1)[0] > 1e-6
        assert changed[1 + 14]
        assert bool(changed.sum() > 1) == expect_neighbours
        assert not changed[0]  # the class token bypasses the generator


def test_relative_bias_works_on_a_grid_larger_than_training_and_clips_far_offsets():
    model = make(dict(name="relative", max_distance=3))
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)  # 16 x 16 grid, trained for 8 x 8
    bias = model.pos_encoding.attn_bias(0, (16, 16))
    assert bias.shape == (1, 3, 1 + 256, 1 + 256)
    assert torch.all(bias[..., 0, :] == 0) and torch.all(bias[..., :, 0] == 0)  # class token: no bias
    grid_bias = bias[0, :, 1:, 1:]
    # offsets beyond the clip distance share one entry: (0,0)->(0,5) equals (0,0)->(0,9)
    torch.testing.assert_close(grid_bias[:, 0, 5], grid_bias[:, 0, 9])
    assert not torch.allclose(grid_bias[:, 0, 1], grid_bias[:, 0, 2])


def test_learned_table_is_resampled_for_other_sizes():
    model = make(dict(name="learned"))
    assert model.pos_encoding.table.shape == (1, 1 + 64, 48)
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 10)


def test_peg_initialisation_follows_the_official_code():
    conv = peg_conv(192, 3, "zeros", "depthwise")
    assert conv.groups == 192 and conv.padding == (1, 1)
    assert torch.all(conv.bias == 0)
    assert abs(conv.weight.std().item() - math.sqrt(2 / 9)) < 0.03


def test_no_weight_decay_covers_position_parameters_and_class_token():
    model = make(dict(name="peg", positions=[0, 1]))
    names = model.no_weight_decay()
    assert {"cls_token", "pos_encoding.generators.0.fn.weight", "pos_encoding.generators.1.fn.bias"} <= names
    learned = make(dict(name="learned"))
    assert "pos_encoding.table" in learned.no_weight_decay()


def test_timm_vit_tiny_state_dict_loads_strictly_with_equal_logits():
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    ours = CPVTViT(dict(name="learned"), "cls", size="deit_tiny", num_classes=1000).eval()
    load_timm_state_dict(ours, reference.state_dict())
    x = torch.randn(2, 3, 224, 224)
    torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("pos, message", [
    (dict(name="peg", kernel=4), "odd"),
    (dict(name="peg", positions=[12]), "outside -1 .. 11"),
    (dict(name="peg", padding="reflect"), "padding"),
    (dict(name="peg", kind="grouped"), "kind"),
    (dict(name="wavelet"), "unknown position encoding"),
    (dict(name="learned", kernel=3), "learned"),
])
def test_bad_position_options_fail_with_a_clear_message(pos, message):
    with pytest.raises(ValueError, match=message):
        CPVTViT(pos, "cls", size="smoke")
