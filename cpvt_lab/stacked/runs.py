"""The seeds of one ablation trained as one stack, finished as separate runs: one row, one checkpoint and one
learning curve per seed, each with the run_id its separate run has (which runs may stack: ``eligibility``).

The stack's own resume point (every ``checkpoint_every`` epochs) lives beside the runs' folders, in
``<output_dir>/stacks/``.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from .. import predictions, results
from ..atomic import replacing
from ..curves import COLUMNS, is_unstable
from ..fingerprint import run_id
from ..models import count_parameters
from ..provenance import now
from ..train import base_row, run_dir
from ..validation import validate
from .compiled import compile_checked
from .eligibility import stack_device
from .loop import batches_per_epoch, train_epochs
from .members import build_members
from .training import StackedTraining

MARKER = "stacked.json"  # in a run's folder: its checkpoint was written by a stack (no Lightning resume point)


def _has_own_resume_point(cfg: DictConfig, rid: str) -> bool:
    """A run that started training separately resumes separately (its Lightning checkpoint)."""
    folder = run_dir(cfg, rid)
    return (folder / "checkpoints" / "last.ckpt").exists() and not (folder / MARKER).exists()


def run_stack(cfgs: Sequence[DictConfig], out=None) -> list[Optional[dict[str, Any]]]:
    """Train the runs of ``cfgs`` (one ablation, several seeds) as one stack; each run's row, as
    ``run_experiment`` returns it, or None for a run left to train separately (another process holds it, it has
    its own resume point, or too few seeds were left to stack). Rows are appended to ``results_dir``."""
    for cfg in cfgs:
        validate(cfg)
    rids = [run_id(cfg) for cfg in cfgs]
    outcome: list[Optional[dict[str, Any]]] = [None] * len(cfgs)
    with contextlib.ExitStack() as claims:
        chosen = []
        for i, (cfg, rid) in enumerate(zip(cfgs, rids)):
            done = results.find_success(cfg.results_dir, rid)
            if done is not None:
                outcome[i] = {**done, "skipped": True}
            elif not _has_own_resume_point(cfg, rid) and claims.enter_context(results.claim(cfg.results_dir, rid)):
                chosen.append(i)
        if len(chosen) < 2:
            return outcome
        started = time.time()
        try:
            rows = _train_stack([cfgs[i] for i in chosen], [rids[i] for i in chosen], out)
        except Exception:
            for i in chosen:  # no row: the runs train separately next, from the start (a stack's checkpoint is
                folder = run_dir(cfgs[i], rids[i])  # no Lightning resume point)
                (folder / "checkpoints" / "last.ckpt").unlink(missing_ok=True)
                (folder / MARKER).unlink(missing_ok=True)
            raise
        wall = time.time() - started
        for i, row in zip(chosen, rows):  # each seed's share, so that summed over rows they are the device's time
            row["wall_seconds"], row["stack_wall_seconds"] = round(wall / len(chosen), 2), round(wall, 2)
            results.append_row(cfgs[i].results_dir, row)
            outcome[i] = row
    return outcome


def _stack_path(cfg: DictConfig, rids: Sequence[str]) -> Path:
    return Path(cfg.output_dir) / "stacks" / f"{cfg.ablation_name}-{'-'.join(rids)}.pt"


@torch.inference_mode()
def predict(model: torch.nn.Module, batches, autocast=contextlib.nullcontext) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes, labels) of every image of ``batches``, in eval mode under the run's autocast."""
    was_training = model.training
    model.eval()
    predicted, labels = [], []
    for x, y in batches:
        with autocast():
            predicted.append(model(x).argmax(-1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(predicted), torch.cat(labels)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 as a fraction: the LightningModule's micro accuracy (a float32 division)."""
    return float(torch.tensor(int((predicted == labels).sum()), dtype=torch.float32) / max(1, len(labels)))


def top1(model: torch.nn.Module, batches, autocast=contextlib.nullcontext) -> float:
    """Top-1 as a fraction over every image of ``batches``."""
    return accuracy(*predict(model, batches, autocast))


def _train_stack(cfgs: Sequence[DictConfig], rids: Sequence[str], out) -> list[dict[str, Any]]:
    cfg = cfgs[0]
    device = stack_device(cfg)
    folders = [run_dir(c, rid) for c, rid in zip(cfgs, rids)]
    for c, folder in zip(cfgs, folders):
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(c, folder / "config.yaml")
        (folder / MARKER).write_text(json.dumps({"stacked": len(cfgs), "run_ids": list(rids)}) + "\n")
    members = build_members(cfgs, device)
    per_epoch = batches_per_epoch(len(members[0].train_batches()), cfg.trainer.get("limit_train_batches"))
    epochs = cfg.trainer.max_epochs
    training = StackedTraining([m.model for m in members], [m.generator for m in members], cfg,
                               cfg.data.batch_size, max(1, per_epoch * epochs), epochs, device,
                               str(cfg.trainer.precision), cfg.ema.decay if cfg.ema.enabled else None,
                               [m.mixup for m in members], [c.optim.label_smoothing for c in cfgs])
    state = {"epoch": 0, "curves": [[] for _ in cfgs], "seconds": 0.0, "images": 0}
    path = _stack_path(cfg, rids)
    if path.exists():  # a stack interrupted: on from its last resume point
        saved = torch.load(path, map_location=device, weights_only=False)
        training.load_state_dict(saved["training"])
        state = saved["progress"]
    check = None
    if cfg.compile:
        check = compile_checked(training, members, state["epoch"], state.get("compile_check"), out,
                                carry=state["epoch"] >= epochs)
        state["compile_check"] = check.as_dict()
    epoch_losses: list[list[float]] = []
    clock = {"start": time.perf_counter()}

    def after_step(epoch, index, losses):
        epoch_losses.append(losses)

    def after_epoch(epoch):
        if device.type == "cuda":
            torch.cuda.synchronize()
        state["seconds"] += time.perf_counter() - clock["start"]
        state["images"] += per_epoch * cfg.data.batch_size
        mean = torch.stack(epoch_losses).mean(0).tolist() if epoch_losses else [None] * len(cfgs)
        lr = float(f"{training.optimizer.param_groups[0]['lr']:.4g}")
        for k, (member, model) in enumerate(zip(members, _networks(training, members))):
            point = 100.0 * top1(model, member.datamodule.curve_dataloader(), training.autocast)
            state["curves"][k].append({"epoch": epoch + 1, "train_loss": None if mean[k] is None else round(mean[k], 4),
                                       "top1": round(point, 2), "lr": lr})
        state["epoch"] = epoch + 1
        epoch_losses.clear()
        if state["epoch"] % cfg.checkpoint_every == 0 or state["epoch"] == epochs:
            _save(path, {"training": training.state_dict(), "progress": state})
        print(f"stack of {len(cfgs)} ({cfg.ablation_name}): epoch {epoch + 1}/{epochs}, losses "
              + ", ".join(f"{r[-1]['train_loss']}" for r in state["curves"]), file=out, flush=True)
        clock["start"] = time.perf_counter()

    train_epochs(training, members, state["epoch"], epochs, per_epoch, after_step, after_epoch)
    return [_finish(c, rid, folder, member, model, ema, state, k, len(cfgs), rids, training.autocast, check)
            for k, (c, rid, folder, member, model, ema) in enumerate(zip(
                cfgs, rids, folders, members, _networks(training, members), _ema_networks(training, members)))]


def _networks(training: StackedTraining, members) -> list[torch.nn.Module]:
    """Each seed's network holding its stacked weights (its own module, as built)."""
    for member, weights in zip(members, training.state_dicts()):
        member.model.load_state_dict(weights)
    return [m.model for m in members]


def _ema_networks(training: StackedTraining, members) -> list[Optional[torch.nn.Module]]:
    """Each seed's EMA weights in a copy of its network (None for each without an EMA)."""
    averaged = training.ema_state_dicts()
    if not averaged:
        return [None] * len(members)
    out = []
    for member, weights in zip(members, averaged):
        averaged_network = copy.deepcopy(member.model)
        averaged_network.load_state_dict(weights)
        out.append(averaged_network)
    return out


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def _finish(cfg, rid, folder, member, model, ema, state, k, stacked, rids, autocast, check) -> dict[str, Any]:
    """One seed's files and row, as its separate run would leave them (``check``: the compiled stack's verdict)."""
    sizes, data = list(cfg.data.eval_sizes), member.datamodule

    def scores(network):
        return {str(s): round(100.0 * top1(network, data.eval_dataloader(s), autocast), 3) for s in sizes}
    averaged = {"top1_ema": scores(ema)} if ema is not None else {}
    predicted = {s: predict(model, data.eval_dataloader(s), autocast) for s in sizes}
    labels = next(iter(predicted.values()))[1]
    identity = data.identity()
    stored = predictions.save(cfg.results_dir, rid, labels.numpy(), {s: p.numpy() for s, (p, _) in predicted.items()},
                              identity["sha256"])
    top1s = {str(s): round(100.0 * accuracy(p, y), 3) for s, (p, y) in predicted.items()}
    verdict = check.as_dict() if check is not None else None
    last = folder / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"state_dict": {f"model.{n}": v for n, v in model.state_dict().items()}, "compile_check": verdict,
                  "epoch": state["epoch"], "stacked": stacked}
    if ema is not None:
        checkpoint["callbacks"] = {"EMA": {"weights": ema.state_dict()}}
    _save(last, checkpoint)
    curve = {c: [r[c] for r in state["curves"][k]] for c in COLUMNS}
    _write_curve(folder / "curve.csv", state["curves"][k])
    seconds = state["seconds"] / stacked  # this seed's share of the stack's training time
    return {
        **base_row(cfg, rid), "status": "ok", "dataset": data.describe(), "data_identity": identity,
        "curve_split": data.curve_split, "predictions": stored.relative_to(cfg.results_dir).as_posix(),
        "val_top1": curve["top1"][-1] if data.curve_split == "validation" and curve["top1"] else None,
        "params": count_parameters(model), "compiled": bool(check and check.passed),
        "compile_check": verdict, "top1": top1s,
        "test_images": data.num_test_images, "finetuned_sizes": [],
        "train_seconds": round(seconds, 2), "images_trained": state["images"],
        "images_per_second": round(state["images"] / seconds, 1) if seconds else None,
        "stacked": stacked, "stack_run_ids": list(rids), "stack_train_seconds": round(state["seconds"], 2),
        "curve": curve, "unstable": is_unstable(curve, cfg.optim.warmup_epochs, data.curve_split),
        "checkpoint": str(last), "finished_at": now(), **averaged,
    }


def _write_curve(path: Path, rows: list[dict]) -> None:
    """``curve.csv`` as ``cpvt_lab.curves.LearningCurve`` writes it."""
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
