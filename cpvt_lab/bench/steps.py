"""One train step timed on a fixed batch: a plain timm ViT's, or our model's, eager or compiled."""
from __future__ import annotations

import contextlib
import copy
from typing import Callable, Optional

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer
from timm.optim import create_optimizer_v2
from torch.utils.flop_counter import FlopCounterMode

from ..compiled.guard import check_compiled, compile_in_place
from ..models import SIZES
from ..models.lowering import lower_pegs
from .kernels import time_by_kernel
from .measurement import Measurement, peak_memory_mb, reset_peak_memory, time_loop


def timm_baseline(cfg) -> nn.Module:
    """A plain timm ViT (learned table, class token) with the run's geometry."""
    geometry = {k: v for k, v in SIZES[cfg.model.size].items() if k != "img_size"}
    return VisionTransformer(img_size=cfg.data.train_size, num_classes=cfg.data.num_classes,
                             drop_path_rate=cfg.model.drop_path, **geometry)


def autocast_for(precision: str, device: torch.device):
    """The autocast Lightning's ``precision`` setting would use, or none."""
    if str(precision).startswith("bf16-mixed"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if str(precision).startswith("16-mixed"):
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def train_flops_per_image(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Forward + backward FLOPs of one image, counted on an eager copy.

    The copy lives on the meta device (shapes only, no arithmetic), and its
    attention runs as two matrix products, which every device counts alike; its PEG
    runs as a convolution (the counter does not count the pointwise taps of ``peg_lowering=taps``).
    """
    probe = copy.deepcopy(model).train().to("meta")
    if hasattr(probe, "pos_encoding"):
        lower_pegs(probe, "conv")
    for module in probe.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(probe(images.to("meta")), labels.to("meta")).backward()
    return counter.get_total_flops() / len(images)


def make_train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str,
                    lr: float = 1e-3) -> Callable[[], None]:
    """forward, loss, backward and AdamW step on a fixed batch, as the LightningModule does it."""
    device = images.device
    optimizer = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=0.05,
                                     **({"fused": True} if device.type == "cuda" else {}))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step():
        with autocast_for(precision, device):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def compile_as_timm_users_do(model: nn.Module) -> nn.Module:
    """The baseline: torch.compile's defaults, none of this project's settings."""
    return compile_in_place(model, project=False)


def measure_step(name: str, what: str, model: nn.Module, cfg, device: torch.device, steps: int, warmup: int,
                 compile_fn: Optional[Callable[[nn.Module], nn.Module]] = None,
                 ablation: Optional[str] = None, profile_steps: int = 0) -> Measurement:
    """Time the train step of ``model`` (compiled by ``compile_fn`` if given) on a fixed random batch.

    A compiled model is first checked against eager on that batch (which also compiles it, so
    compilation stays out of the warm-up time); the verdict goes beside the speed. ``profile_steps``
    more steps, after the timed ones, are profiled kernel by kernel.
    """
    batch, size = cfg.data.batch_size, cfg.data.train_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    labels = torch.randint(0, cfg.data.num_classes, (batch,), generator=generator).to(device)
    model = model.to(device).train()
    flops = train_flops_per_image(model, images[:2], labels[:2])
    check = None
    if compile_fn is not None:
        check = check_compiled(compile_fn(model), [(images, labels)],
                               lambda: autocast_for(cfg.trainer.precision, device), cfg.trainer.precision).as_dict()
    reset_peak_memory(device)
    step = make_train_step(model, images, labels, cfg.trainer.precision)
    seconds, warmup_seconds = time_loop(step, steps, warmup, device)
    memory = peak_memory_mb(device)
    kernels = time_by_kernel(step, profile_steps, device) if profile_steps else None
    return Measurement(name, what, batch * steps, seconds, warmup_seconds, flops, memory, ablation,
                       compile_fn is not None, compile_check=check, kernels=kernels)
