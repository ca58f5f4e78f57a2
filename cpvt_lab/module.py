"""The LightningModule: DeiT's optimisation recipe around any network, top-1 at every evaluation size."""
from __future__ import annotations

import contextlib
import itertools
import math
from typing import Optional, Sequence

import pytorch_lightning as pl
import torch
import torch.nn as nn
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from torchmetrics.classification import MulticlassAccuracy

from .compiled.guard import CHECK_BATCHES, CompileCheck, check_compiled, compile_in_place, uncompile


# begins the reason of a verdict carried from the checkpoint a run resumed from
RESUMED = "as checked before the resume point: "


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up, then cosine decay to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_mixup(mixup: float, cutmix: float, label_smoothing: float, num_classes: int) -> Optional[Mixup]:
    """timm's Mixup/CutMix as a run trains with it (None when both are off); its targets carry the smoothing."""
    if mixup <= 0 and cutmix <= 0:
        return None
    return Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=label_smoothing, num_classes=num_classes)


def use_fused_adamw(device: torch.device, clipping: bool) -> bool:
    """Fused AdamW on a GPU, unless gradients are clipped: a fused optimizer unscales gradients
    inside its step, so Lightning refuses to clip before it (the foreach AdamW computes the same update)."""
    return device.type == "cuda" and not clipping


class ClassificationModule(pl.LightningModule):
    """Trains ``model`` with AdamW + warm-up/cosine + label smoothing (+ optional Mixup/CutMix).

    ``lr`` is the peak rate for a global batch of ``lr_batch``; it is scaled
    linearly to the real global batch (DeiT: 5e-4 per 512). With ``compile`` the
    network is compiled, then checked against eager on the first training batches
    before the first step; if they disagree it trains eager (``compile_check`` says why).
    """

    def __init__(self, model: nn.Module, eval_sizes: Sequence[int], num_classes: int, lr: float = 1e-3,
                 lr_batch: int = 512, weight_decay: float = 0.05, warmup_epochs: float = 1.0,
                 min_lr_ratio: float = 0.01, label_smoothing: float = 0.1, mixup: float = 0.0,
                 cutmix: float = 0.0, compile: bool = False, curve_size: Optional[int] = None):
        super().__init__()
        self.model = model
        self.compiled = compile
        self.compile_check: Optional[CompileCheck] = None
        self.compile_fallback = True  # train eager when the check fails (off only to study a failure)
        self._resumed_check: Optional[dict] = None  # the verdict a resumed run's checkpoint holds
        self.fused_adamw: Optional[bool] = None  # None: use_fused_adamw decides
        if compile:
            compile_in_place(self.model)
        self.eval_sizes = list(eval_sizes)
        # while fitting, one set is evaluated after each epoch at this size (the learning curve's: the validation
        # split where one is held out, else the test set); every test size is evaluated once, after it
        self.curve_size = curve_size if curve_size is not None else self.eval_sizes[0]
        self.curve_top1 = MulticlassAccuracy(num_classes, average="micro")
        # the predicted class of every image of the last evaluation, by size, and the labels (predictions.py)
        self.predicted: dict[int, list[torch.Tensor]] = {}
        self.labels: dict[int, list[torch.Tensor]] = {}
        self.lr, self.lr_batch, self.weight_decay = lr, lr_batch, weight_decay
        self.warmup_epochs, self.min_lr_ratio = warmup_epochs, min_lr_ratio
        self._all_finite = None  # all training losses of this epoch finite (a device tensor)
        self.mixup = make_mixup(mixup, cutmix, label_smoothing, num_classes)
        self.train_loss = SoftTargetCrossEntropy() if self.mixup is not None \
            else nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.top1 = nn.ModuleList(MulticlassAccuracy(num_classes, average="micro") for _ in self.eval_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.mixup is not None:
            x, y = self.mixup(x, y)
        loss = self.train_loss(self.model(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def on_train_start(self):
        if self.compiled:
            self.check_compilation()

    def on_fit_end(self):
        # resumed from a checkpoint with nothing left to train, the fit had no start: the verdict comes
        # from the checkpoint, or (a checkpoint older than that) from a check now, never none at all
        if self.compiled and self.compile_check is None:
            # Lightning's teardown, before this hook, has moved the module to the CPU: the check runs where the
            # run trained, beside its batches, and the module goes back where Lightning left it
            left_on = self.device
            self.to(self.trainer.strategy.root_device)
            try:
                self.check_compilation(carry=True)
            finally:
                self.to(left_on)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["compile_check"] = self.compile_check.as_dict() if self.compile_check else None

    def on_load_checkpoint(self, checkpoint):
        self._resumed_check = checkpoint.get("compile_check")

    def check_compilation(self, carry: bool = False) -> None:
        """Compiled against eager on the first real training batches; fall back to eager if they disagree.

        Resumed, a run goes on as it went: eager if its check failed, else checked again on the resumed
        weights; ``carry``: the checkpoint's verdict stands (there was nothing left to train)."""
        trainer, resumed = self.trainer, self._resumed_check
        if resumed and (carry or not resumed["passed"]):
            self.compile_check = CompileCheck.from_dict(resumed)
            if not self.compile_check.reason.startswith(RESUMED):
                self.compile_check.reason = f"{RESUMED}{self.compile_check.reason}"
        else:
            batches = [trainer.strategy.batch_to_device(b) for b in itertools.islice(trainer.train_dataloader,
                                                                                      CHECK_BATCHES)]
            self.compile_check = check_compiled(self.model, batches, trainer.precision_plugin.forward_context,
                                                precision=str(trainer.precision))
        # every rank trains the same way: compiled only where all ranks' checks passed
        if not trainer.strategy.reduce_boolean_decision(self.compile_check.passed, all=True) \
                and self.compile_check.passed:
            self.compile_check.passed, self.compile_check.reason = False, "another rank's compile check failed"
        said = f"{self.compile_check.reason}; {self.compile_check.options_said()}"
        if self.compile_check.passed:
            self.print(f"compile check passed: {said} (worst gradient error "
                       f"{self.compile_check.grad_error:.2g}, eager's {self.compile_check.grad_error_eager:.2g})")
        elif self.compile_fallback:
            uncompile(self.model)
            self.compiled = False
            self.print(f"compile check FAILED, training eager instead: {said}")
        else:
            self.print(f"compile check FAILED, training compiled all the same: {said}")

    def on_train_epoch_start(self):
        self._all_finite = None

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # a flag kept on the device and read by the host only at the epoch's last batch (before
        # validation and the checkpoint): reading the loss itself would make the host wait every step
        finite = torch.isfinite(outputs["loss"].detach())
        self._all_finite = finite if self._all_finite is None else self._all_finite & finite
        if batch_idx + 1 == self.trainer.num_training_batches and not self._all_finite:
            raise NonFiniteLossError(f"non-finite training loss in epoch {self.current_epoch} "
                                     f"(by step {self.global_step})")

    def on_validation_epoch_start(self):
        self.predicted, self.labels = {}, {}

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, y = batch
        if self.trainer.state.fn == "fit":  # the learning curve's one set (the data module's val_dataloader)
            size, metric = self.curve_size, self.curve_top1
        else:
            size, metric = self.eval_sizes[dataloader_idx], self.top1[dataloader_idx]
        # evaluation runs eager: eval mode and every other image size would each cost a new compilation, more
        # than the few forward passes of an evaluation gain from it. Set per step, as a context: a stance set
        # for the epoch stayed set for the whole process when an evaluation raised
        with torch.compiler.set_stance("force_eager") if self.compiled else contextlib.nullcontext():
            logits = self.model(x)
        metric.update(logits, y)
        if self.trainer.state.fn != "fit":  # kept on the device: one copy to the host per evaluation, not per step
            self.predicted.setdefault(size, []).append(logits.argmax(-1))
            self.labels.setdefault(size, []).append(y)
        self.log(f"val/top1@{size}", metric, on_epoch=True,  # a fraction: the epoch lines say it in percent
                 add_dataloader_idx=False)

    def predictions(self) -> tuple[Optional[torch.Tensor], dict[int, torch.Tensor]]:
        """(labels, predicted class by size) of the last evaluation, in the test split's order."""
        predicted = {size: torch.cat(parts).cpu() for size, parts in self.predicted.items()}
        labels = next((torch.cat(parts).cpu() for parts in self.labels.values()), None)
        return labels, predicted

    def configure_optimizers(self):
        global_batch = self.trainer.datamodule.batch_size * self.trainer.world_size
        lr = self.lr * global_batch / self.lr_batch
        clipping = bool(self.trainer.gradient_clip_val)
        optimizer = create_optimizer_v2(  # honours model.no_weight_decay() and skips 1-D params
            self.model, opt="adamw", lr=lr, weight_decay=self.weight_decay,
            **({"fused": True} if (use_fused_adamw(self.device, clipping) if self.fused_adamw is None
                                   else self.fused_adamw) else {}))
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = max(1, total // max(1, self.trainer.max_epochs))
        warmup = min(total, max(1, int(self.warmup_epochs * per_epoch)))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total, self.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
