"""Attention maps: the hooked probabilities are the ones the model uses, bias included; the figures' layout."""
from __future__ import annotations

import torch

from cpvt_lab import build_model, compose
from cpvt_lab.analysis.measures import attention


def test_hooked_probabilities_are_the_softmax_the_model_uses_relative_bias_included():
    torch.manual_seed(0)
    model = build_model(compose("relative", ["data.train_size=24"])).eval()
    with torch.no_grad():
        model.pos_encoding.table.normal_(0, 3.0)  # a bias large enough to matter
    images = torch.randn(2, 3, 24, 24)
    fused = model(images)
    probs = attention.attention_probs(model, images)
    assert probs.shape == (12, 2, 3, 37, 37)
    assert all(block.attn.fused_attn for block in model.blocks)  # restored for training
    assert torch.allclose(model(images), fused, atol=1e-5)

    attn = model.blocks[0].attn  # recompute block 0 by hand: softmax(q k^T * scale + bias)
    with torch.no_grad():
        x = model.norm_pre(model.pos_encoding.on_tokens(model._pos_embed(model.patch_embed(images)), (6, 6)))
        q, k, _ = attn.qkv(model.blocks[0].norm1(x)).reshape(2, 37, 3, 3, -1).permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-2, -1)) * attn.scale + model.pos_encoding.attn_bias(0, (6, 6))
    assert torch.allclose(probs[0], logits.softmax(-1), atol=1e-5)
    unbiased = (q @ k.transpose(-2, -1) * attn.scale).softmax(-1)
    assert not torch.allclose(probs[0], unbiased, atol=1e-3)


def test_patch_attention_drops_the_class_token_and_rows_sum_to_one():
    probs = torch.rand(12, 2, 3, 5, 5).softmax(-1)
    matrix = attention.patch_attention(probs, block=1, num_prefix_tokens=1)
    assert matrix.shape == (4, 4)
    assert torch.allclose(matrix.sum(-1), torch.ones(4))
    expected = probs[1, :, :, 1:, 1:].mean((0, 1))
    assert torch.allclose(matrix, expected / expected.sum(-1, keepdim=True))


def test_query_tiles_put_each_querys_row_at_the_querys_place():
    rows, cols = 2, 3
    matrix = torch.arange(36.0).reshape(6, 6)  # query q = r * cols + c looks at key n with weight 6q + n
    tiles = attention.query_tiles(matrix, (rows, cols))
    assert tiles.shape == (4, 9)
    q = 1 * cols + 2  # query at row 1, col 2: its tile is rows 2..3, cols 6..8
    assert torch.equal(tiles[2:4, 6:9], matrix[q].reshape(rows, cols))


def test_maps_from_runs_says_which_runs_to_make_when_there_are_none(tmp_path):
    maps = attention.maps_from_runs(tmp_path)  # the attention grid's ablations
    assert maps.matrices == {} and f"python -m cpvt_lab.grid attention results_dir={tmp_path}" in maps.note()


def test_analyze_attention_draws_the_two_figures_from_trained_runs(fast_overrides, tmp_path, capsys):
    from cpvt_lab.analyze import main
    from cpvt_lab.train import run_experiment

    results = next(o.split("=", 1)[1] for o in fast_overrides if o.startswith("results_dir="))
    for ablation in ("learned", "peg"):
        run_experiment(compose(ablation, fast_overrides))
    out = tmp_path / "figures"
    # out_dir: the old name of tables_dir, still read
    assert main(["attention", f"results_dir={results}", f"out_dir={out}", "ablations=[learned,peg]", "images=4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["attention_matrices.png", "attention_query_tiles.png"]
    assert "drawn: learned, peg" in capsys.readouterr().out


def test_analyze_attention_without_runs_is_one_error_line(tmp_path, capsys):
    from cpvt_lab.analyze import main

    assert main(["attention", f"results_dir={tmp_path}", f"tables_dir={tmp_path / 'out'}"]) == 2
    assert capsys.readouterr().err.startswith("error: no attention to draw")
    assert not (tmp_path / "out").exists()
