"""One training step for K networks of one architecture at once: ``vmap`` over ``functional_call``.

Each seed's step is its separate run's step (``cpvt_lab.module.ClassificationModule`` under
Lightning): the loss on its own batch, its gradients, its gradient norm clipped on its own
(never across the stack), AdamW with timm's parameter groups, the warm-up/cosine schedule,
and timm's EMA. The stacked parameters are leaves of shape K x ...; AdamW and the EMA are
elementwise, so one optimizer over the stack updates every seed as its own would.

The members share the architecture, the optimizer, the schedule and the batch; what each takes alone may
differ between them (a sweep's settings trained as one stack): its data augmentation (its own data module),
Mixup/CutMix, label smoothing and drop-path rate (``cpvt_lab.stacked.eligibility.MEMBER_KEYS``).
"""
from __future__ import annotations

import contextlib
import copy
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data.mixup import one_hot
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch.func import functional_call, stack_module_state, vmap

from ..compiled.guard import compile_settings
from ..module import use_fused_adamw, warmup_cosine
from .drop_path import active_drop_paths, draw_masks, preset_drop_paths


def clip_per_model(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for each seed of stacked gradients (K x ...) on its own; the K norms."""
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # parameters x K
    total = torch.linalg.vector_norm(norms, dim=0)
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return total


def stacked_optimizer(model: nn.Module, params: dict[str, torch.Tensor], fused: bool, **kwargs):
    """timm's AdamW over the stacked ``params``, with the groups ``create_optimizer_v2`` makes for one network
    (no decay for 1-D parameters, biases and ``no_weight_decay()``): the groups are read from one network's
    optimizer and filled with the stacked tensors of the same names."""
    single = create_optimizer_v2(model, opt="adamw", **kwargs, **({"fused": True} if fused else {}))
    name_of = {id(p): n for n, p in model.named_parameters()}
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [params[name_of[id(p)]] for p in g["params"]]}
              for g in single.param_groups]
    return type(single)(groups)  # every group carries all its settings (lr, betas, eps, decay, fused)


class StackedEMA:
    """timm's ``ModelEmaV3`` (its decay rule, its update) over stacked weights: each seed's average is its own."""

    def __init__(self, params: dict[str, torch.Tensor], decay: float):
        self.rule = ModelEmaV3(nn.Linear(1, 1), decay=decay)  # a stand-in network: only its get_decay is used
        self.weights = {k: v.detach().clone() for k, v in params.items()}

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor], step: int) -> None:
        decay = self.rule.get_decay(step)
        torch._foreach_lerp_(list(self.weights.values()), [params[k].detach() for k in self.weights], 1.0 - decay)


class StackedTraining:
    """K networks of one architecture (the seeds of one ablation) trained as one.

    ``models``: the K freshly built networks (their weights are copied into the stack; each keeps its own
    drop-path rates). ``generators``: each seed's drop-path stream (``members.build_member``); ``mixers``: each
    seed's Mixup/CutMix (``mixing.SeedMixup``), or None without; ``label_smoothing``: each seed's (the config's
    for all when not given). The optimizer and schedule settings are the run config's (``cfg.optim``,
    ``cfg.trainer.gradient_clip_val``), the same for every seed.
    """

    def __init__(self, models: Sequence[nn.Module], generators: Sequence[torch.Generator], cfg, batch_size: int,
                 total_steps: int, max_epochs: int, device: torch.device, precision: str = "32-true",
                 ema_decay: Optional[float] = None, mixers: Optional[Sequence] = None,
                 label_smoothing: Optional[Sequence[float]] = None):
        self.k, self.device, self.precision = len(models), device, precision
        self.generators = list(generators)
        self.mixers = list(mixers) if mixers is not None and any(m is not None for m in mixers) else None
        for m in models:
            m.to(device).train()
        self.drop_rates = [active_drop_paths(m) for m in models]
        # the skeleton functional_call runs (its own weights unused): the network with a mask wherever any drops
        widest = max(range(self.k), key=lambda i: len(self.drop_rates[i]))
        if any(set(rates) - set(self.drop_rates[widest]) for rates in self.drop_rates):
            raise ValueError("the networks drop paths at branches no one of them covers: not stacked")
        self.network = copy.deepcopy(models[widest])
        for module in self.network.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = False  # fused SDPA has no batching rule on every device (vmap)
        self.drop_paths = preset_drop_paths(self.network)
        params, buffers = stack_module_state(list(models))
        self.params = {k: v for k, v in params.items()}
        for name, stacked in buffers.items():  # constants (RoPE bands): the skeleton keeps its own, unbatched
            if not all(torch.equal(stacked[0], b) for b in stacked[1:]):
                raise ValueError(f"buffer {name} differs between the networks: not stacked")
        clipping = float(cfg.trainer.get("gradient_clip_val") or 0.0)
        self.clip = clipping
        lr = cfg.optim.lr * batch_size / cfg.optim.lr_batch  # one device: the global batch is the batch
        self.optimizer = stacked_optimizer(models[widest], self.params, use_fused_adamw(device, bool(clipping)),
                                           lr=lr, weight_decay=cfg.optim.weight_decay)
        per_epoch = max(1, total_steps // max(1, max_epochs))
        warmup = min(total_steps, max(1, int(cfg.optim.warmup_epochs * per_epoch)))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, warmup, total_steps, cfg.optim.min_lr_ratio))
        self.smoothing = [float(e) for e in (label_smoothing if label_smoothing is not None
                                             else [cfg.optim.label_smoothing] * self.k)]
        self.num_classes = cfg.data.num_classes
        self.steps = 0
        self.ema = StackedEMA(self._state(), ema_decay) if ema_decay is not None else None
        self.last_norms: Optional[torch.Tensor] = None  # the K gradient norms before clipping, of the last step
        # the K losses from (stacked parameters, drop-path masks, K batches of images, K of labels); nothing random
        # may run inside (drop-path masks come in from outside), which randomness="error" enforces
        self.eager_losses = vmap(self._loss, randomness="error")
        self.losses = self.eager_losses
        self.compile_options: dict = {}  # what compile() gave torch.compile, for the verdict

    def compile(self, backend="inductor", options: Optional[dict] = None) -> None:
        """``torch.compile`` the stacked forward and loss, with the project's inductor options (as a network is
        compiled: ``cpvt_lab.compiled.guard.compile_settings``); trusted only once ``compiled.check_stack`` agrees."""
        settings, self.compile_options = compile_settings(backend, options)
        self.losses = torch.compile(self.eager_losses, **settings)

    def uncompile(self) -> None:
        self.losses = self.eager_losses

    def _state(self) -> dict[str, torch.Tensor]:
        """What a network's state dict holds, stacked: the parameters, and the constant buffers repeated K times."""
        buffers = dict(self.network.named_buffers())
        own = self.network.state_dict(keep_vars=True)
        return {k: self.params[k] if k in self.params else buffers[k].detach().expand(self.k, *buffers[k].shape)
                for k in own}

    def _loss(self, params, masks, x, y):
        logits = functional_call(self.network, {**params, **masks}, (x,), tie_weights=False, strict=False)
        if y.is_floating_point():  # soft targets, the smoothing already in them (timm's SoftTargetCrossEntropy)
            return F.cross_entropy(logits.float(), y)
        return F.cross_entropy(logits.float(), y, label_smoothing=self.smoothing[0])

    def stack_batches(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The K batches (mixed where their runs mix) as the stack's images and targets. Class labels stay labels
        while every seed has them and one smoothing; otherwise each seed's labels become its smoothed one-hot
        targets, which give the cross-entropy its run computes with ``label_smoothing`` (torch's definition)."""
        x = torch.stack([b[0] for b in batches])
        targets = [b[1] for b in batches]
        if all(not y.is_floating_point() for y in targets) and len(set(self.smoothing)) == 1:
            return x, torch.stack(targets)
        classes = self.num_classes
        soft = [y if y.is_floating_point() else one_hot(y, classes, 1 - eps + eps / classes, eps / classes)
                for y, eps in zip(targets, self.smoothing)]  # timm's smoothed targets, as its mixup_target makes them
        return x, torch.stack(soft)

    def draw_masks(self, batch: int, generators: Sequence[torch.Generator]) -> dict[str, torch.Tensor]:
        """This step's drop-path masks, each seed's from its generator at its own rates."""
        return draw_masks(self.drop_paths, self.drop_rates, batch, list(generators), self.device)

    def autocast(self):
        """The precision's autocast, as Lightning's precision plugin wraps a step or an evaluation."""
        if str(self.precision).startswith("bf16"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One optimizer step of every seed on its own batch; the K training losses."""
        # (as Lightning moves a batch to the device; with the images held there, a no-op)
        batches = [(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)) for x, y in batches]
        if self.mixers is not None:  # as the run's training step mixes its batch, before its forward
            batches = [mix(x, y) if mix is not None else (x, y) for mix, (x, y) in zip(self.mixers, batches)]
        x, y = self.stack_batches(batches)
        masks = self.draw_masks(x.shape[1], self.generators)
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            losses = self.losses(self.params, masks, x, y)
        losses.sum().backward()  # the seeds share no parameter: each gradient is its own seed's
        if self.clip:
            grads = [p.grad for p in self.params.values() if p.grad is not None]
            self.last_norms = clip_per_model(grads, self.clip)
        self.optimizer.step()
        self.scheduler.step()
        self.steps += 1
        if self.ema is not None:
            self.ema.update(self._state(), self.steps)
        return losses.detach()

    def state_dict(self) -> dict:
        """The resume point: weights, AdamW's moments, the schedule, the EMA and every seed's drop-path stream."""
        return {"params": {k: v.detach().clone() for k, v in self.params.items()},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.weights if self.ema is not None else None, "steps": self.steps,
                "generators": [g.get_state() for g in self.generators],
                "mixup_states": [m and m.state for m in self.mixers] if self.mixers is not None else None}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for k, v in state["params"].items():
                self.params[k].copy_(v)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.weights = {k: v.to(self.device) for k, v in state["ema"].items()}
        self.steps = state["steps"]
        for g, saved in zip(self.generators, state["generators"]):
            g.set_state(saved)
        for mix, saved in zip(self.mixers or [], state.get("mixup_states") or []):
            if mix is not None:
                mix.state = saved

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each seed's network weights, as its separate run's ``model.state_dict()``."""
        return _unstack(self._state(), self.k)

    def ema_state_dicts(self) -> list[dict[str, torch.Tensor]]:
        return _unstack(self.ema.weights, self.k) if self.ema is not None else []


def _unstack(stacked: dict[str, torch.Tensor], k: int) -> list[dict[str, torch.Tensor]]:
    return [{name: t[i].detach().clone() for name, t in stacked.items()} for i in range(k)]
