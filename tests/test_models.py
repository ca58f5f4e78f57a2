"""The properties that make each position encoding and head what it is."""
from __future__ import annotations

import math

import pytest
import timm
import torch
from timm.layers import apply_rot_embed_cat

from cpvt_lab.analysis.measures.attention import attention_probs
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
                                 dict(name="conv1x1_stack", positions=[0]), dict(name="rope_axial"),
                                 dict(name="rope_mixed"), dict(name="peg_rope", positions=[0])])
@pytest.mark.parametrize("head", ["cls", "gap"])
def test_every_strategy_runs_at_train_and_other_sizes(pos, head):
    model = make(pos, head)
    for size in (32, 48, 24, 40):
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


@pytest.mark.parametrize("size, reach", [(24, 5), (48, 11)])
def test_a_27x27_peg_trains_only_the_taps_that_reach_the_grid(size, reach):
    """On a g x g grid a tap more than g-1 patches from the centre multiplies zero padding at every position, so
    it gets no gradient and keeps its random init (the PEG has no weight decay): `peg27_at_m1` trained at 24 px
    (6 x 6 patches) meets taps at 48 px (12 x 12) that never trained."""
    model = make(dict(name="peg", positions=[-1], kernel=27)).train()
    model(torch.randn(2, 3, size, size)).sum().backward()
    grad = model.pos_encoding.generators["-1"].fn.weight.grad
    centre = 13
    taps = slice(centre - reach, centre + reach + 1)
    within = (..., taps, taps)
    beyond = torch.ones_like(grad, dtype=torch.bool)
    beyond[within] = False
    assert (grad[within].abs().sum(dim=(0, 1)) > 0).all()  # every tap within reach learns
    assert beyond.any() and not grad[beyond].any()  # and none beyond it: exactly zero, not a sum that rounds alike


def test_no_weight_decay_covers_position_parameters_and_class_token():
    model = make(dict(name="peg", positions=[0, 1]))
    names = model.no_weight_decay()
    assert {"cls_token", "pos_encoding.generators.0.fn.weight", "pos_encoding.generators.1.fn.bias"} <= names
    learned = make(dict(name="learned"))
    assert "pos_encoding.table" in learned.no_weight_decay()
    # RoPE-Mixed's learned frequencies: decay would pull them to 0, no position at all (rope-vit exempts them too)
    mixed = make(dict(name="rope_mixed"))
    assert [n for n, _ in mixed.pos_encoding.named_parameters()] == ["rope.freqs"]
    assert "pos_encoding.rope.freqs" in mixed.no_weight_decay()
    assert not list(make(dict(name="rope_axial")).pos_encoding.parameters())  # fixed frequencies: no parameters


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
    (dict(name="rope_axial", temperature=0), "temperature must be a number > 0"),
    (dict(name="rope_mixed", temperature="hot"), "temperature must be a number > 0"),
    (dict(name="peg_rope", kernel=4), "odd"),
])
def test_bad_position_options_fail_with_a_clear_message(pos, message):
    with pytest.raises(ValueError, match=message):
        CPVTViT(pos, "cls", size="smoke")


# ---------------------------------------------------------------- RoPE
def rotate(t: torch.Tensor, rope, prefix: int) -> torch.Tensor:
    """Queries or keys (B, heads, tokens, head_dim) rotated as AttentionRope does: the prefix tokens not."""
    return t if rope is None else torch.cat([t[:, :, :prefix], apply_rot_embed_cat(t[:, :, prefix:], rope)], dim=2)


def block0_logits(model: CPVTViT, images: torch.Tensor, rotated: bool = True) -> torch.Tensor:
    """Block 0's attention logits (B, heads, tokens, tokens), recomputed by hand from its q, k and the table."""
    attn, p = model.blocks[0].attn, model.num_prefix_tokens
    x, grid = model._tokens(images)
    b, n, _ = x.shape
    q, k, _ = attn.qkv(model.blocks[0].norm1(x)).reshape(b, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    rope = model.pos_encoding.attn_rope(0, grid) if rotated else None
    return rotate(q, rope, p) @ rotate(k, rope, p).transpose(-2, -1) * attn.scale


@pytest.mark.parametrize("name, head", [("rope_axial", "cls"), ("rope_mixed", "gap"), ("peg_rope", "cls")])
@torch.no_grad()
def test_rope_rotates_queries_and_keys_of_the_patch_tokens_in_the_attention_the_model_runs(name, head):
    model = make(dict(name=name), head)
    images = torch.randn(2, 3, 24, 24)
    probs = attention_probs(model, images)[0]  # block 0, through the model's own (explicit) attention
    torch.testing.assert_close(probs, block0_logits(model, images).softmax(-1), atol=1e-5, rtol=1e-4)
    assert (probs - block0_logits(model, images, rotated=False).softmax(-1)).abs().max() > 1e-3


def test_rope_tables_are_laid_over_each_grid_and_built_once_per_grid():
    axial, mixed = make(dict(name="rope_axial")).pos_encoding, make(dict(name="rope_mixed")).pos_encoding
    for size in (24, 32, 40, 48):
        grid = (size // 4, size // 4)
        table = axial.attn_rope(0, grid)
        assert table.shape == (grid[0] * grid[1], 2 * 16)  # sin and cos per channel of a 16-channel head
        assert axial.attn_rope(11, grid) is table  # fixed frequencies: one table for every block, kept
        assert mixed.attn_rope(0, grid).shape == (3, grid[0] * grid[1], 2 * 16)  # its own per head
        assert not torch.allclose(mixed.attn_rope(0, grid), mixed.attn_rope(1, grid))  # and per block
    assert len(axial.tables.tables) == 4
    for encoding in (axial, mixed):  # the same angle per patch at every size: a larger grid adds larger offsets
        small, large = encoding.attn_rope(0, (6, 6)), encoding.attn_rope(0, (12, 12))
        torch.testing.assert_close(large.unflatten(-2, (12, 12))[..., :6, :6, :].flatten(-3, -2), small)
    with torch.inference_mode():  # a table first built while evaluating serves training too
        axial.attn_rope(0, (5, 5))
    model = make(dict(name="rope_axial")).train()
    model.pos_encoding = axial
    model(torch.randn(1, 3, 20, 20)).sum().backward()


def offset_only(logits: torch.Tensor, grid: tuple[int, int]) -> bool:
    """Whether logits (..., N, N) over a grid are the same for every query-key pair moved together by a row or a
    column: then they depend on the offset between the two positions alone."""
    cube = logits.reshape(*logits.shape[:-2], grid[0], grid[1], grid[0], grid[1])
    rows = torch.allclose(cube[..., 1:, :, 1:, :], cube[..., :-1, :, :-1, :], atol=1e-5)
    cols = torch.allclose(cube[..., :, 1:, :, 1:], cube[..., :, :-1, :, :-1], atol=1e-5)
    return rows and cols


@pytest.mark.parametrize("name", ["rope_axial", "rope_mixed"])
@torch.no_grad()
def test_rope_logits_without_content_depend_only_on_the_offset_at_any_size(name):
    model = make(dict(name=name))
    torch.manual_seed(1)
    q_token, k_token = torch.randn(2, 1, 3, 1, 16)  # one query and one key vector per head, for every token
    for grid in ((6, 6), (8, 8), (12, 12), (6, 10)):
        n, rope = grid[0] * grid[1], model.pos_encoding.attn_rope(0, grid)
        q, k = (rotate(t.expand(1, 3, n, 16), rope, 0) for t in (q_token, k_token))
        logits = q @ k.transpose(-2, -1)
        assert offset_only(logits, grid), grid
        assert (logits[..., 0, 1] - logits[..., 0, 2]).abs().max() > 1e-3  # and they do depend on it
    content_free = torch.zeros(1, 1 + 36, 48)  # the learned table gives equal tokens an absolute position instead
    learned = make(dict(name="learned"), img_size=24)
    x = learned.blocks[0].norm1(learned.pos_encoding.on_tokens(content_free, (6, 6)))
    q, k, _ = learned.blocks[0].attn.qkv(x).reshape(1, 37, 3, 3, 16).permute(2, 0, 3, 1, 4)
    assert not offset_only((q @ k.transpose(-2, -1))[..., 1:, 1:], (6, 6))


@pytest.mark.parametrize("name, head", [("rope_axial", "cls"), ("rope_mixed", "cls"), ("rope_axial", "gap")])
@torch.no_grad()
def test_a_whole_patch_shift_leaves_the_logits_between_interior_tokens_unchanged(name, head):
    model = make(dict(name=name), head)
    p = model.num_prefix_tokens
    x = torch.randn(2, 3, 32, 32)
    for dr, dc in ((0, 4), (4, 0), (4, -4)):  # one patch right; down; down and left
        before = block0_logits(model, x)[..., p:, p:].reshape(2, 3, 8, 8, 8, 8)
        after = block0_logits(model, torch.roll(x, shifts=(dr, dc), dims=(2, 3)))[..., p:, p:].reshape(2, 3, 8, 8, 8, 8)
        # the tokens that moved without wrapping around (src), and where they went (dst)
        src = [slice(max(0, -d // 4), 8 - max(0, d // 4)) for d in (dr, dc)]
        dst = [slice(max(0, d // 4), 8 + min(0, d // 4)) for d in (dr, dc)]
        torch.testing.assert_close(after[:, :, dst[0], dst[1], dst[0], dst[1]],
                                   before[:, :, src[0], src[1], src[0], src[1]], atol=1e-5, rtol=1e-4)
    learned = make(dict(name="learned"))  # an absolute table: the same pairs change
    before = block0_logits(learned, x)[..., 1:, 1:].reshape(2, 3, 8, 8, 8, 8)
    after = block0_logits(learned, torch.roll(x, shifts=4, dims=3))[..., 1:, 1:].reshape(2, 3, 8, 8, 8, 8)
    assert (after[:, :, :, 1:, :, 1:] - before[:, :, :, :-1, :, :-1]).abs().max() > 1e-3
