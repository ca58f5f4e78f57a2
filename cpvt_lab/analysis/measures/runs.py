"""Finished runs as analysis inputs: pick rows, rebuild their trained model, take test images."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ...config import build_model
from ...provenance import REPO_ROOT
from ...models import CPVTViT
from ...results import Rows, results_path, rows_of


class RunSelectionError(ValueError):
    """A run_id or ablation list that matches no finished run; the message says what exists."""


def select_rows(results: str | Path | Rows, run_id: Optional[str] = None,
                ablations: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """The finished (``ok``) rows with this run_id, or of these ablations (all when neither is given), of a results
    folder or of its rows as a command read them.

    A run_id recorded twice counts once (the later row). Asking for something that is not
    there is an error, so an analysis never silently runs on nothing.
    """
    rows = rows_of(results)
    results_dir, rows = rows.results_dir, rows.finished()
    if run_id is not None:
        rows = [r for r in rows if r["run_id"] == run_id]
        if not rows:
            raise RunSelectionError(f"run_id={run_id} has no finished run in {results_path(results_dir)}")
    if ablations is not None:
        have = {r["ablation"] for r in rows}
        missing = [a for a in ablations if a not in have]
        if missing:
            raise RunSelectionError(
                f"no finished run of {missing} in {results_path(results_dir)}; it holds {sorted(have) or 'none'}")
        rows = [r for r in rows if r["ablation"] in ablations]
    return sorted(rows, key=lambda r: (r["ablation"], r["seed"], r["run_id"]))


def run_config(row: dict[str, Any]) -> DictConfig:
    return OmegaConf.create(row["config"])


def checkpoint_path(row: dict[str, Any]) -> Path:
    """The row's checkpoint; a relative path is tried from the working directory, then the repository."""
    recorded = Path(row.get("checkpoint") or "")
    for candidate in (recorded, REPO_ROOT / recorded):
        if recorded.name and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"run {row['run_id']} ({row['ablation']}): checkpoint {str(recorded)!r} not found "
                            "(run the analysis from the folder the run started in, or re-run it)")


def load_run_model(row: dict[str, Any], device: str | torch.device = "cpu") -> CPVTViT:
    """The trained network of a result row, in eval mode (Lightning keys lose their ``model.`` prefix)."""
    model = build_model(run_config(row))
    state = torch.load(checkpoint_path(row), map_location=device, weights_only=False)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    return model.to(device).eval()


def test_images(row: dict[str, Any], limit: int = 256, size: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``limit`` normalised test images (class-stratified) of the run's data set, at ``size`` px."""
    cfg = run_config(row)
    size = size or cfg.data.train_size
    data = instantiate(cfg.data, eval_sizes=[size], test_subset=limit, subset=cfg.data.num_classes,
                       on_device=False)
    data.setup()
    xs, ys, taken = [], [], 0
    for x, y in data.eval_dataloader(size):
        xs.append(x)
        ys.append(y)
        taken += len(y)
        if taken >= limit:
            break
    return torch.cat(xs)[:limit], torch.cat(ys)[:limit]
