"""Attention maps: per-block, per-head attention probabilities, and the paper's two figures.

Training keeps timm's fused attention (no probabilities ever materialise); for analysis
each block switches to timm's explicit path for one forward pass, whose softmax output
passes through ``attn_drop`` where a forward hook reads it. The explicit path adds the
same ``attn_mask`` as the fused one, so the relative-position bias is included.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch

from ...models import CPVTViT
from ...paper import attention_ablations
from ...results import Rows, rows_of
from ..pages import plots
from . import store
from ..measured import ComputedAnalysis
from .runs import load_run_model, test_images
from ..settings import SETTING, recipe_id, setting_fields, setting_label

STORED_KIND = "attention_maps"  # the measured analysis that keeps each run's matrix (attention_maps.py)


@contextlib.contextmanager
def explicit_attention(model: CPVTViT) -> Iterator[None]:
    """Route every block through the explicit softmax path, then restore each block's setting."""
    saved = [block.attn.fused_attn for block in model.blocks]
    try:
        for block in model.blocks:
            block.attn.fused_attn = False
        yield
    finally:
        for block, fused in zip(model.blocks, saved):
            block.attn.fused_attn = fused


@torch.no_grad()
def attention_probs(model: CPVTViT, images: torch.Tensor) -> torch.Tensor:
    """Attention probabilities, shape (blocks, batch, heads, tokens, tokens), prefix tokens first."""
    probs: list[torch.Tensor] = []
    hooks = [block.attn.attn_drop.register_forward_hook(lambda module, args, out: probs.append(out))
             for block in model.blocks]
    was_training = model.training
    try:
        with explicit_attention(model):
            model.eval()
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return torch.stack(probs)


def patch_attention(probs: torch.Tensor, block: int, num_prefix_tokens: int) -> torch.Tensor:
    """The N x N patch-to-patch attention of one block, averaged over batch and heads.

    The class token's row and column are dropped and each row renormalised over the
    patches, so models with and without a class token compare on the same footing.
    """
    p = num_prefix_tokens
    matrix = probs[block, :, :, p:, p:].mean(dim=(0, 1))
    return matrix / matrix.sum(dim=-1, keepdim=True)


def query_tiles(matrix: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Each query patch's attention row reshaped to the grid, tiled at the query's place.

    Returns a (rows*rows, cols*cols) image: tile (i, j) is where patch (i, j) looks.
    """
    rows, cols = grid
    tiles = matrix.reshape(rows, cols, rows, cols)  # query row, query col, key row, key col
    return tiles.permute(0, 2, 1, 3).reshape(rows * rows, cols * cols)


def model_patch_attention(model: CPVTViT, images: torch.Tensor, block: int = 1) -> torch.Tensor:
    """``patch_attention`` of a model on a batch (block 1 is the paper's second block)."""
    return patch_attention(attention_probs(model, images), block, model.num_prefix_tokens)


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth")


def block_name(block: int) -> str:
    """A block as every page and figure names it: its index in ``model.blocks``, counted from 0, and which it is
    (block 1 is the paper's "second block")."""
    which = ORDINALS[block] if 0 <= block < len(ORDINALS) else f"number {block + 1}"
    return f"block {block} (counted from 0: the {which})"


def plot_matrices(matrices: Mapping[str, torch.Tensor], title: Optional[str] = None):
    """The paper's first figure: the patch-to-patch matrix of each model, side by side, each with its colour bar
    (the models' attention spreads differently, so each panel has its own scale)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4), squeeze=False, layout="constrained")
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        image = ax.imshow(matrix.cpu().numpy(), cmap="viridis")
        ax.set(title=name, xlabel="key patch", ylabel="query patch")
        fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


def plot_query_tiles(matrices: Mapping[str, torch.Tensor], grid: tuple[int, int], title: Optional[str] = None):
    """The paper's second figure: every query's attention over the grid, tiled by query position."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4), squeeze=False, layout="constrained")
    rows, cols = grid
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        image = ax.imshow(query_tiles(matrix, grid).cpu().numpy(), cmap="viridis")
        for k in range(1, rows):  # lines between the tiles of neighbouring queries
            ax.axhline(k * rows - 0.5, color="white", linewidth=0.3)
        for k in range(1, cols):
            ax.axvline(k * cols - 0.5, color="white", linewidth=0.3)
        ax.set(title=name, xticks=[], yticks=[])
        fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


@dataclass
class RunMaps:
    """Patch-to-patch attention matrices of finished runs, and what could not be drawn and why."""
    matrices: dict[str, torch.Tensor]
    grid: Optional[tuple[int, int]]
    setting: str
    missing: list[str]
    images: set[int] = field(default_factory=set)  # how many test images each matrix averages over

    def note(self) -> str:
        drawn = f"drawn: {', '.join(self.matrices) or 'nothing'}" + (f" ({self.setting})" if self.setting else "")
        return "\n".join([drawn, *self.missing])


def _setting(row: dict) -> tuple:
    """The row's section: its figures set side by side only runs whose recipe is the same."""
    return (*setting_fields(row).values(), recipe_id(row))


def stored_matrix(lines: pd.DataFrame) -> tuple[torch.Tensor, tuple[int, int]]:
    """One run's stored attention lines (``attention_maps``: a line per query, key weights in one field) back
    into its N x N matrix and grid."""
    lines = lines.sort_values("query")
    matrix = torch.tensor([[float(w) for w in str(text).split()] for text in lines.weights])
    return matrix, (int(lines.grid_rows.iloc[0]), int(lines.grid_cols.iloc[0]))


def maps_from_runs(results: str | Path | Rows, ablations: Optional[Sequence[str]] = None, block: int = 1,
                   images: int = 32, weights: bool = True) -> RunMaps:
    """Attention of ``block`` for one finished run per ablation (the attention grid's by default), all from one
    setting (``results``: a results folder, or its rows as a command read them).

    The setting that holds most of the ablations wins (ties: the later runs); in it, the
    lowest seed. A run's attention stored when it finished (``analysis/attention/``, measured
    on the test images of its measurements) is used as stored; otherwise its checkpoint is
    loaded and each model sees the same ``images`` test images (``weights=False``: never; the
    tables use only what is stored). A run without a row, without a stored map or a checkpoint
    is listed in ``missing`` with the command that makes it.
    """
    ablations = attention_ablations() if ablations is None else ablations
    rows = rows_of(results)
    results_dir = rows.results_dir
    rows = [r for r in rows.finished() if r["ablation"] in ablations]
    by_setting: dict[tuple, dict[str, dict]] = {}
    for row in sorted(rows, key=lambda r: (-r["seed"], r.get("finished_at") or "")):  # lowest seed last, wins
        by_setting.setdefault(_setting(row), {})[row["ablation"]] = row
    if not by_setting:
        return RunMaps({}, None, "", [f"no finished run of {', '.join(ablations)} in {results_dir}: make them "
                                      f"with `python -m cpvt_lab.grid attention results_dir={results_dir}`"])
    chosen = max(by_setting.values(), key=lambda found: (len(found), max(r.get("finished_at") or "" for r in
                                                                         found.values())))
    any_row = next(iter(chosen.values()))
    stored = store.load(results_dir, STORED_KIND)
    missing, matrices, grid, batch, counts = [], {}, None, None, set()
    for ablation in ablations:
        row = chosen.get(ablation)
        if row is None:
            missing.append(f"{ablation}: no finished run in this setting"
                           + (f"; make it with: {_command(any_row, ablation)}" if weights else ""))
            continue
        lines = stored[(stored.run_id == row["run_id"]) & (stored.block == block)] if not stored.empty else stored
        if len(lines):
            matrices[ablation], grid = stored_matrix(lines)
            counts.add(int(lines["images"].iloc[0]))
            continue
        if not weights:
            missing.append(f"{ablation}: no stored map; `python -m cpvt_lab.study continue` stores one while the "
                           "run's weights exist")
            continue
        try:
            model = load_run_model(row)
        except FileNotFoundError as err:
            missing.append(f"{ablation}: {err}; train it into another results folder with: "
                           f"{_command(row, ablation)} results_dir=outputs/attention_runs, then point the notebook there")
            continue
        if batch is None:
            batch, _ = test_images(row, limit=images)
        matrices[ablation] = model_patch_attention(model, batch, block)
        grid = tuple(model.patch_embed.grid_size)
        counts.add(len(batch))
    return RunMaps(matrices, grid, setting_label(dict(zip(SETTING, _setting(any_row)))), missing, counts)


def _command(row: dict, ablation: str) -> str:
    cfg = row["config"]
    sizes = ",".join(str(s) for s in cfg["data"]["eval_sizes"])
    return (f"python -m cpvt_lab.run ablation={ablation} scale={row['scale']} seed={row['seed']} "
            f"trainer.max_epochs={row['epochs']} data.train_size={row['train_size']} 'data.eval_sizes=[{sizes}]'")


def write(folder, out_dir: str | Path, ablations: Optional[Sequence[str]] = None, block: int = 1,
          images: int = 32) -> list[Path]:
    """The paper's attention figures (``block``'s patch-to-patch attention averaged over heads, and each
    query's row tiled over the grid) of one finished run per ablation: its stored attention, else its checkpoint."""
    maps = maps_from_runs(folder.rows, ablations, block=block, images=images)
    print(maps.note())
    if not maps.matrices:
        raise FileNotFoundError(f"no attention to draw: {'; '.join(maps.missing)}")
    return draw(maps, out_dir, block)


def write_stored(folder, out_dir: str | Path, block: int) -> list[Path]:
    """The two figures from the maps stored beside the attention grid's runs, once every one has its map (what the
    tables command draws: no weights needed, so a clean checkout redraws them the same); else nothing."""
    maps = maps_from_runs(folder.rows, block=block, weights=False)
    return draw(maps, out_dir, block) if maps.matrices and not maps.missing else []


def draw(maps: RunMaps, out_dir: str | Path, block: int) -> list[Path]:
    counts = " or ".join(str(n) for n in sorted(maps.images))
    out, title = Path(out_dir), f"{block_name(block)}, {counts} test images: {maps.setting}"
    out.mkdir(parents=True, exist_ok=True)
    return [plots.save(plot_matrices(maps.matrices, title), out / "attention_matrices.png", 80),
            plots.save(plot_query_tiles(maps.matrices, maps.grid, title), out / "attention_query_tiles.png", 80)]


ANALYSIS = ComputedAnalysis(
    "attention", "the paper's attention figures from the stored maps, else the checkpoints, of one run per "
    f"ablation (lowest seed): attention_matrices.png and attention_query_tiles.png (keys ablations=["
    f"{','.join(attention_ablations())}], the attention grid's; block=1, images=32)",
    {"ablations": None, "block": 1, "images": 32}, write, in_tables=False)
