"""One run, start to finish: train (resuming if a checkpoint exists), evaluate, write one row."""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from . import results
from .atomic import replacing
from .config import build_model
from .curves import LearningCurve, is_unstable
from .ema import EMA
from .evaluation import evaluate, save_predictions, validation_top1
from .fingerprint import run_id
from .models import count_parameters
from .module import ClassificationModule
from .progress import progress_callbacks
from .provenance import now, stamp
from .validation import validate


# What Lightning says at every Trainer that is no message about the run: its advertisements for its cloud services
# and two notes on its own bookkeeping. A run prints its epoch lines (curves.py) and its row.
CHATTER = ("💡 Tip:", "Loading `train_dataloader` to estimate", "`Trainer.fit` stopped:")
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
    lambda record: not str(record.msg).startswith(CHATTER))
# a deprecation inside Lightning's own code under this torch, printed once per process; nothing a run can change
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file and renames it: a crash never leaves half a checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        with replacing(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class ThroughputTimer(pl.Callback):
    """Wall time spent in training epochs (validation excluded) and images seen; kept in the checkpoint, so a
    resumed run's row counts the epochs trained before the interruption too."""

    def __init__(self):
        self.seconds, self.images, self._start = 0.0, 0, None

    def state_dict(self) -> dict:
        return {"seconds": self.seconds, "images": self.images}

    def load_state_dict(self, state_dict: dict) -> None:
        self.seconds, self.images = state_dict.get("seconds", 0.0), state_dict.get("images", 0)

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.images += len(batch[1]) * trainer.world_size
        if batch_idx + 1 == trainer.num_training_batches and self._start is not None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()  # once per epoch, to close the timing honestly
            self.seconds += time.perf_counter() - self._start
            self._start = None


def run_dir(cfg: DictConfig, rid: str) -> Path:
    return Path(cfg.output_dir) / "runs" / f"{cfg.ablation_name}-{rid}"


def make_logger(cfg: DictConfig, out: Path) -> pl.loggers.Logger:
    """The run's logger (``logger=`` config group), writing into the run's folder."""
    options = {k: v for k, v in OmegaConf.to_container(cfg.logger, resolve=True).items() if k != "requires"}
    return instantiate(options, save_dir=str(out))


def make_module(cfg: DictConfig, model: torch.nn.Module, eval_sizes, lr: Optional[float] = None):
    o = cfg.optim
    return ClassificationModule(
        model, eval_sizes=eval_sizes, num_classes=cfg.data.num_classes, lr=o.lr if lr is None else lr,
        lr_batch=o.lr_batch, weight_decay=o.weight_decay, warmup_epochs=o.warmup_epochs,
        min_lr_ratio=o.min_lr_ratio, label_smoothing=o.label_smoothing, mixup=o.mixup, cutmix=o.cutmix,
        compile=cfg.compile, curve_size=cfg.data.train_size)


def finetune_at(cfg: DictConfig, model: torch.nn.Module, size: int) -> tuple[float, ClassificationModule]:
    """DeiT's protocol: resample the table to ``size``, fine-tune there, evaluate there (top-1, and the module
    that holds that evaluation's predictions)."""
    data = instantiate(cfg.data, train_size=size, eval_sizes=[size])
    module = make_module(cfg, copy.deepcopy(model), [size], lr=cfg.finetune.lr)
    trainer_kwargs = dict(max_epochs=cfg.finetune.epochs, enable_checkpointing=False, logger=False)
    trainer = instantiate(cfg.trainer, callbacks=progress_callbacks(cfg.trainer), **trainer_kwargs)
    trainer.fit(module, datamodule=data)
    return evaluate(trainer, module, data)[str(size)], module


def base_row(cfg: DictConfig, rid: str) -> dict[str, Any]:
    return {
        "run_id": rid, "ablation": cfg.ablation_name, "pos": cfg.model.pos.name, "head": cfg.model.head,
        "seed": cfg.seed, "scale": cfg.scale_name, "model_size": cfg.model.size,
        "epochs": cfg.trainer.max_epochs, "train_size": cfg.data.train_size, **stamp(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def is_global_zero() -> bool:
    """Whether this process is rank 0, known before any Trainer exists.

    Lightning's DDP re-launches this script with LOCAL_RANK/NODE_RANK set, SLURM
    tasks carry SLURM_PROCID and torchrun sets RANK; a plain process has none.
    """
    return all(int(os.environ.get(var, 0)) == 0 for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))


def run_experiment(cfg: DictConfig, callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    """Train and evaluate one config; append its row to ``results_dir``; return the row.

    A run whose run_id already has a success row is not trained again (its row is
    returned with ``skipped: True``) unless ``rerun=true``: then it is, from the start, and its
    new row, which names the one it ``supersedes``, finishes the run (``Rows.finished``: the
    latest); the old row stays. One that another process is training now is not started
    (``skipped`` and ``in_progress``, no row). A failure appends a ``failed`` row with the
    reason and re-raises. Under DDP every rank calls this, and only rank 0 claims the run and writes files: the other ranks are started
    by rank 0 while it holds the claim, so they see the same results file it saw.
    ``callbacks`` join the training Trainer's (a progress bar, a probe).
    """
    validate(cfg)
    rid = run_id(cfg)
    lead = is_global_zero()
    with results.claim(cfg.results_dir, rid) if lead else contextlib.nullcontext(True) as claimed:
        done = results.find_success(cfg.results_dir, rid)
        if done is not None and not cfg.get("rerun", False):
            return {**done, "skipped": True}
        if not claimed:
            return {"run_id": rid, "ablation": cfg.ablation_name, "skipped": True, "in_progress": True}
        out = run_dir(cfg, rid)
        if done is not None and lead and out.exists():  # rerun: the old run's folder kept aside, never resumed
            stamp = "".join(c if c.isalnum() else "-" for c in str(done.get("finished_at", "earlier")))
            out.rename(out.with_name(f"{out.name}.superseded-{stamp}"))
        if lead:
            out.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg, out / "config.yaml")
        started = time.time()
        try:
            row = _train_and_evaluate(cfg, rid, out, callbacks)
        except BaseException as err:  # noqa: BLE001 - recorded, then re-raised
            if lead and isinstance(err, Exception):  # a Ctrl-C or kill is an interruption, not a result
                results.append_row(cfg.results_dir, {
                    **base_row(cfg, rid), "status": "failed", "error": f"{type(err).__name__}: {err}",
                    "traceback": traceback.format_exc(limit=8), "finished_at": now(),
                    "wall_seconds": round(time.time() - started, 2)})
            raise
        row["wall_seconds"] = round(time.time() - started, 2)
        if done is not None:  # the finished row this one supersedes (the latest finishes a run)
            row["supersedes"] = done.get("finished_at")
        if lead:
            results.append_row(cfg.results_dir, row)
        return row


def _train_and_evaluate(cfg: DictConfig, rid: str, out: Path,
                        callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg)
    module = make_module(cfg, model, list(cfg.data.eval_sizes))
    # one checkpoint, last.ckpt, rewritten every `checkpoint_every` epochs so an interrupted run resumes
    # there (save_last with save_top_k=0 writes it only when training ends), and once more at the end
    checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", filename="last", save_top_k=1,
                                  every_n_epochs=cfg.checkpoint_every, enable_version_counter=False)
    timer = ThroughputTimer()
    curve = LearningCurve(out, cfg.data.train_size)
    ema = EMA(cfg.ema.decay) if cfg.ema.enabled else None
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=[checkpoints, timer, curve, *([ema] if ema else []), *progress_callbacks(cfg.trainer),
                              *callbacks],
        logger=make_logger(cfg, out),
        default_root_dir=out, plugins=[AtomicCheckpointIO()])
    last = out / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if last.exists() else None)
    if trainer.current_epoch % cfg.checkpoint_every:  # the final weights, for analyses, whatever the period
        trainer.save_checkpoint(last)
    top1 = evaluate(trainer, module, datamodule)
    evaluated, finetuned = [module], {}
    if cfg.finetune.enabled:
        for size in cfg.data.eval_sizes:
            if size != cfg.data.train_size:
                value, tuned = finetune_at(cfg, module.model, size)
                finetuned[str(size)] = round(value, 3)
                evaluated.append(tuned)
        top1 = {**top1, **finetuned}
    data = datamodule.identity()
    stored = save_predictions(cfg, rid, evaluated, data["sha256"]) if trainer.is_global_zero else None
    averaged = {}
    if ema is not None:
        ema_module = make_module(cfg, ema.averaged(module.model), list(cfg.data.eval_sizes))
        averaged["top1_ema"] = evaluate(trainer, ema_module, datamodule)
    return {
        **base_row(cfg, rid), "status": "ok", "dataset": datamodule.describe(), "data_identity": data,
        "curve_split": datamodule.curve_split, "predictions": stored, "val_top1": validation_top1(curve, datamodule),
        "params": count_parameters(model), "compiled": module.compiled,
        "compile_check": module.compile_check.as_dict() if module.compile_check else None, "top1": top1,
        "test_images": datamodule.num_test_images, "finetuned_sizes": sorted(finetuned, key=int),
        "train_seconds": round(timer.seconds, 2), "images_trained": timer.images,
        "images_per_second": round(timer.images / timer.seconds, 1) if timer.seconds else None,
        "curve": curve.compact(),
        "unstable": is_unstable(curve.compact(), cfg.optim.warmup_epochs, datamodule.curve_split),
        "checkpoint": str(last), "finished_at": now(), **averaged,
    }
