"""Does a token know where it is? A linear probe for absolute position on frozen patch tokens.

For each block k, a multinomial logistic regression (scikit-learn, on features
scaled by one common factor) reads every patch token leaving block k and predicts its position on the
grid as one of the N = rows x cols cells. Row and column accuracies are read off
the same predictions. The probe trains on the tokens of one half of the images and
is scored on the other half, so it cannot memorise an image; chance is 1/N (1/rows,
1/cols).

Natural images put some position into content (sky is up), so a model with no
position encoding already scores above chance here: that ``none`` row is the floor
to compare against. The paper's mechanism predicts PEG with zero padding above
PEG with circular padding (no border to find) and above PEG without padding.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from .features import all_block_outputs
from ..pages.page_parts import wide_cells
from ..measured import MeasuredAnalysis


def _trained_on(count):
    """How many of ``count`` images the probe trains on (the rest it is scored on)."""
    return count // 2


def split_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint halves of ``count`` image indices (probe-train, probe-test)."""
    if count < 2:
        raise ValueError(f"the probe needs at least 2 images (one to train on, one to test), got {count}")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:_trained_on(count)]), np.sort(order[_trained_on(count):])


def probe_block(tokens: torch.Tensor, train: np.ndarray, test: np.ndarray, max_iter: int = 300
                ) -> dict[str, float]:
    """Fit on the tokens of ``train`` images, score on those of ``test``: position, row and column accuracy."""
    b, rows, cols, dim = tokens.shape
    position = np.tile(np.arange(rows * cols), b).reshape(b, rows * cols)
    features = tokens.reshape(b, rows * cols, dim).double().cpu().numpy()
    # one scale for all features, not one per feature: per-feature standardising would blow
    # float round-off in a constant feature up into a signal the probe could read
    features = features / (features[train].std() or 1.0)
    probe = LogisticRegression(max_iter=max_iter)
    with threadpool_limits(1):  # a problem this small runs ~20x slower when BLAS threads contend
        probe.fit(features[train].reshape(-1, dim), position[train].ravel())
    truth = position[test].ravel()
    guess = probe.predict(features[test].reshape(-1, dim))
    return {"position": 100.0 * np.mean(guess == truth),
            "row": 100.0 * np.mean(guess // cols == truth // cols),
            "col": 100.0 * np.mean(guess % cols == truth % cols)}


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, blocks: Optional[Iterable[int]] = None, seed: int = 0,
            batch_size: int = 128) -> pd.DataFrame:
    """Long table: one row per (block, target) with the probe's test accuracy and chance, in percent."""
    depth = len(model.blocks)
    blocks = list(blocks) if blocks is not None else list(range(depth))
    bad = [k for k in blocks if not 0 <= k < depth]
    if bad:
        raise ValueError(f"blocks {bad} outside 0 .. {depth - 1}")
    train, test = split_images(len(images), seed)
    maps, _ = all_block_outputs(model, images, batch_size)
    rows, cols = maps[0].shape[1:3]
    chance = {"position": 100.0 / (rows * cols), "row": 100.0 / rows, "col": 100.0 / cols}
    records: list[dict[str, Any]] = []
    for k in blocks:
        for target, accuracy in probe_block(maps[k], train, test).items():
            records.append(dict(block=k, target=target, accuracy=accuracy, chance=chance[target]))
    return pd.DataFrame.from_records(records)


def check(options: dict[str, Any], size: Optional[int] = None, depth: Optional[int] = None) -> None:
    blocks = options.get("blocks")
    if blocks is not None and not (isinstance(blocks, list) and blocks and all(isinstance(v, int) for v in blocks)):
        raise ValueError(f"blocks: must be a non-empty list of integers like blocks=[4,8], got {blocks!r}")
    if depth is not None and blocks and not all(0 <= b < depth for b in blocks):
        raise ValueError(f"blocks: must lie in 0 .. {depth - 1}, got {blocks}")


def render(group: pd.DataFrame) -> list[str]:
    """The tables of one setting: probe accuracy per block for the position, the row and the column."""
    out = []
    for target in ("position", "row", "col"):
        here = group[group.target == target]
        out += [f"Probe accuracy for the token's {target} (chance {here.chance.iloc[0]:.1f}%), per block:", "",
                wide_cells(here, ["ablation"], "block", "accuracy", ".1f").to_markdown(index=False), ""]
    return out


def headline(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run: the probe's position accuracy (%) on the tokens leaving the last block, a share of the tokens of
    the half of the images it was not trained on (``split_images``)."""
    position = frame[frame.target == "position"]
    last = position[position.block == position.groupby("run_id").block.transform("max")]
    chance = f"chance {last.chance.min():.1f}" + ("" if last.chance.nunique() == 1 else f"-{last.chance.max():.1f}")
    return pd.DataFrame({"run_id": last.run_id, "measure": f"position probe, last block (%; {chance})",
                         "value": last.accuracy, "images": last.images - _trained_on(last.images)})


ANALYSIS = MeasuredAnalysis(
    name="probe",
    about="linear probe for each token's absolute position, per block",
    options={"blocks": None},
    measure=lambda model, images, labels, seed=0, blocks=None: measure(model, images, blocks, seed),
    title="Does a token know where it is? A linear probe for absolute position",
    explains="A multinomial logistic regression reads each "
    "patch token leaving block k (before any PEG placed after block k, whose effect shows from block k+1) "
    "and names its cell among the N = rows x cols of the grid; row and column "
    "accuracy come from the same predictions. Trained on the tokens of half the images, scored on the "
    "other half. Accuracy (%) as mean ± std over seeds; `none` is the floor that image content alone "
    "gives. The paper's mechanism predicts zero padding (`peg`) above circular (`peg_circular`) and no "
    "padding (`peg_nopad`).",
    sections_by=("size",), render=render, check=check, headline=headline)
