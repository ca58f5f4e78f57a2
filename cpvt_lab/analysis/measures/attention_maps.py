"""The attention figures' input, measured while a run's weights exist: the patch-to-patch attention of one block
(the paper's second, block 1), averaged over heads and test images, one line per query patch with its key weights
in one field (a few KB a run). Stored beside every run like the other measurements, so the figures can be drawn
from runs trained on different machines, and a page gives each encoding's attention distance."""
from __future__ import annotations

from typing import Any, Optional

import pandas as pd
import torch
import torch.nn as nn

from .attention import STORED_KIND, model_patch_attention
from ..pages.page_parts import wide_cells
from ..measured import MeasuredAnalysis

DIGITS = 5  # significant digits of a stored weight: far below what the figures can show


def attention_distance(matrix: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Per query, the attention-weighted mean distance (in patches) to the keys it attends to."""
    rows, cols = grid
    pos = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    return (matrix * torch.cdist(pos.float(), pos.float())).sum(-1)


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, block: int = 1) -> pd.DataFrame:
    """One line per query patch of ``block``'s attention (the class token left out, rows renormalised)."""
    matrix = model_patch_attention(model, images, block).float().cpu()
    patch = model.patch_embed.patch_size
    grid = (images.shape[-2] // patch[0], images.shape[-1] // patch[1])
    distance = attention_distance(matrix, grid)
    return pd.DataFrame({
        "block": block, "grid_rows": grid[0], "grid_cols": grid[1], "query": range(len(matrix)),
        "distance": distance.numpy().round(4),
        "weights": [" ".join(f"{w:.{DIGITS}g}" for w in row.tolist()) for row in matrix]})


def check(options: dict[str, Any], size: Optional[int] = None, depth: Optional[int] = None) -> None:
    block = options.get("block")
    if not (isinstance(block, int) and not isinstance(block, bool) and block >= 0):
        raise ValueError(f"block: must be a block index >= 0, got {block!r}")
    if depth is not None and block >= depth:
        raise ValueError(f"block: the model has blocks 0 .. {depth - 1}, got {block}")


def render(group: pd.DataFrame) -> list[str]:
    per_run = group.groupby(["run_id", "ablation", "seed", "block"], sort=False, observed=True).distance.mean()\
        .reset_index()
    return ["Mean attention distance (patches) of the patch tokens, per block measured:", "",
            wide_cells(per_run, ["ablation"], "block", "distance", ".2f").to_markdown(index=False), ""]


ANALYSIS = MeasuredAnalysis(
    name=STORED_KIND,
    about="the patch-to-patch attention of one block, kept for the paper's attention figures",
    options={"block": 1},
    measure=lambda model, images, labels, seed=0, block=1: measure(model, images, labels, block),
    title="Attention maps, measured",
    explains="The patch-to-patch attention of block `block` (the paper's second block), averaged over heads and "
    "test images, the class token left out and each query's row renormalised. Stored per run for the attention "
    "figures; here its locality: the attention-weighted mean distance from a query patch to its keys, in patches "
    "(lower is more local). Cells: mean ± std over seeds; n runs.",
    sections_by=("size",), render=render, check=check)
