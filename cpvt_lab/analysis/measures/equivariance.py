"""Translation equivariance of a trained ViT, measured rather than argued.

Test images are shifted by s = 1 .. 2 x patch pixels, down and right at once
(the vacated border is filled with zeros in normalised space, the data set's
mean colour; ``fill="cyclic"`` rolls instead, which no border can betray).

Two measures:

- prediction consistency (share of images whose top-1 class is unchanged by the
  shift) and top-1 accuracy under shift, for every s;
- the equivariance error of the patch-token map leaving each block,
  ``|F(shift x) - shift F(x)| / |shift F(x)|`` over the tokens both maps hold
  (the overlap). Only for whole-patch shifts: a sub-patch shift is no
  translation of the token grid, and aligning it to the nearest token would add
  a resampling error that every encoding shares, so sub-patch shifts report the
  prediction measures only.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import pandas as pd
import torch
import torch.nn as nn

from .features import all_block_outputs
from ..pages.page_parts import wide_cells
from ..measured import MeasuredAnalysis

FILLS = ("zeros", "cyclic")


def shift_images(x: torch.Tensor, s: int, fill: str = "zeros") -> torch.Tensor:
    """Move the content of B x C x H x W images ``s`` pixels down and right."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "cyclic":
        return torch.roll(x, shifts=(s, s), dims=(-2, -1))
    out = torch.zeros_like(x)
    out[..., s:, s:] = x[..., :x.shape[-2] - s, :x.shape[-1] - s]
    return out


def relative_error(shifted: torch.Tensor, reference: torch.Tensor, tokens: int, fill: str) -> float:
    """|F(Tx) - T F(x)| / |T F(x)| on the overlap, for a shift of ``tokens`` grid cells down and right."""
    if fill == "cyclic":
        target, got = torch.roll(reference, shifts=(tokens, tokens), dims=(1, 2)), shifted
    else:
        rows, cols = reference.shape[1] - tokens, reference.shape[2] - tokens
        target, got = reference[:, :rows, :cols], shifted[:, tokens:, tokens:]
    return float(torch.linalg.vector_norm(got - target) / torch.linalg.vector_norm(target))


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, shifts: Optional[Iterable[int]] = None,
            fill: str = "zeros", batch_size: int = 128) -> pd.DataFrame:
    """Long table: one row per (shift, measure, block). Blocks are -1 for the prediction measures."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    patch = model.patch_embed.patch_size[0]
    shifts = list(shifts) if shifts is not None else list(range(1, 2 * patch + 1))
    bad = [s for s in shifts if not 0 < s < images.shape[-1]]
    if bad:
        raise ValueError(f"shifts {bad} outside 1 .. {images.shape[-1] - 1} px")
    base_maps, base_logits = all_block_outputs(model, images, batch_size)
    base_pred = base_logits.argmax(-1)
    records: list[dict[str, Any]] = [
        dict(shift=0, whole_patch=True, measure="accuracy", block=-1, value=_share(base_pred == labels))]
    for s in shifts:
        maps, logits = all_block_outputs(model, shift_images(images, s, fill), batch_size)
        pred = logits.argmax(-1)
        whole = s % patch == 0
        records += [dict(shift=s, whole_patch=whole, measure="consistency", block=-1, value=_share(pred == base_pred)),
                    dict(shift=s, whole_patch=whole, measure="accuracy", block=-1, value=_share(pred == labels))]
        if whole:
            records += [dict(shift=s, whole_patch=True, measure="equivariance_error", block=i,
                             value=relative_error(m, b, s // patch, fill))
                        for i, (m, b) in enumerate(zip(maps, base_maps))]
    table = pd.DataFrame.from_records(records)
    table["fill"] = fill
    return table


def _share(hits: torch.Tensor) -> float:
    return 100.0 * hits.float().mean().item()


def check(options: dict[str, Any], size: Optional[int] = None, depth: Optional[int] = None) -> None:
    shifts, fill = options.get("shifts"), options.get("fill")
    if shifts is not None and not (isinstance(shifts, list) and shifts and all(isinstance(v, int) for v in shifts)):
        raise ValueError(f"shifts: must be a non-empty list of integers like shifts=[4,8], got {shifts!r}")
    if fill not in FILLS:
        raise ValueError(f"fill: must be one of {FILLS}, got {fill!r}")
    if size is not None and shifts and not all(0 < s < size for s in shifts):
        raise ValueError(f"shifts: must lie in 1 .. {size - 1} px for {size} px images, got {shifts}")


def render(group: pd.DataFrame) -> list[str]:
    """The tables of one setting: consistency and top-1 per shift, the equivariance error per block."""
    preds, errors = group[group.block == -1], group[group.measure == "equivariance_error"]
    return ["Prediction consistency (%) under a shift of s px:", "",
            wide_cells(preds[preds.measure == "consistency"], ["ablation"], "shift", "value", ".1f")
            .to_markdown(index=False), "",
            "Top-1 (%) under a shift of s px (s = 0: unshifted):", "",
            wide_cells(preds[preds.measure == "accuracy"], ["ablation"], "shift", "value", ".1f")
            .to_markdown(index=False), "",
            "Equivariance error (x100) of the patch tokens leaving each block, per whole-patch shift (px):", "",
            wide_cells(errors.assign(value=100 * errors.value), ["ablation", "shift"], "block", "value", ".1f")
            .to_markdown(index=False), ""]


def headline(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run, under a shift of one patch with zero fill: the prediction consistency (%, a share of the images)
    and the equivariance error (x100) of the tokens leaving the last block."""
    moved = frame[(frame.fill == "zeros") & frame.whole_patch.astype(bool) & (frame["shift"] > 0)]
    one_patch = moved[moved["shift"] == moved.groupby("run_id")["shift"].transform("min")]
    errors = one_patch[one_patch.measure == "equivariance_error"]
    consistency = one_patch[one_patch.measure == "consistency"]
    last = errors[errors.block == errors.groupby("run_id").block.transform("max")]
    return pd.concat([
        consistency.assign(measure="consistency, one-patch shift (%)"),
        last.assign(measure="equivariance error x100, last block, one-patch shift", value=100 * last.value,
                    images=float("nan"))])[["run_id", "measure", "value", "images"]]


ANALYSIS = MeasuredAnalysis(
    name="equivariance",
    about="shift test images, measure prediction consistency and the feature maps' equivariance error",
    options={"shifts": None, "fill": "zeros"},
    measure=lambda model, images, labels, seed=0, shifts=None, fill="zeros": measure(model, images, labels, shifts,
                                                                                     fill),
    title="Translation equivariance, measured",
    explains="Test images shifted s px down and right, "
    "the vacated border filled with zeros (the data set's mean colour) unless `fill` says cyclic. "
    "Consistency: share of images whose top-1 class is unchanged (%). Equivariance error: "
    "|F(shift x) - shift F(x)| / |shift F(x)| over the overlap of the patch-token maps leaving each block, "
    "for whole-patch shifts only (a sub-patch shift is no translation of the token grid). "
    "Cells: mean ± std over seeds; n runs.",
    sections_by=("fill", "size"), render=render, check=check, headline=headline)
