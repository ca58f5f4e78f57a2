"""The compiled stack checked against the eager stack, as ``cpvt_lab.compiled.guard`` checks a compiled network.

On one batch per seed, from the same weights and with the same drop-path masks, three passes: the eager stack in
fp32 (the yardstick), the eager stack at the run's precision, the compiled stack at the run's precision. The loss
and every stacked parameter's gradient must be within the guard's band (``FLOOR``, ``FACTOR``, ``CEILING``).
Nothing changes: no weight, no ``.grad``, no seed's drop-path stream.
"""
from __future__ import annotations

import contextlib
import time
from typing import Sequence

import torch

from ..compiled.guard import CEILING, FACTOR, FLOOR, _judge
from .drop_path import draw_masks
from .training import StackedTraining


def _loss_and_grads(training: StackedTraining, losses_of, masks, x, y, context):
    names = [n for n, p in training.params.items() if p.requires_grad]
    with context():
        loss = losses_of(training.params, masks, x, y).sum()
    grads = torch.autograd.grad(loss, [training.params[n] for n in names], allow_unused=True)
    return names, loss.detach().double(), [torch.zeros(1) if g is None else g.double() for g in grads]


def check_stacked_compiled(training: StackedTraining, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """The verdict on ``training.losses`` (compiled) against ``training.eager_losses``, as the bench records it."""
    started = time.perf_counter()
    x = torch.stack([b[0] for b in batches]).to(training.device)
    y = torch.stack([b[1] for b in batches]).to(training.device)
    streams = [torch.Generator(training.device) for _ in training.generators]
    for copy, generator in zip(streams, training.generators):
        copy.set_state(generator.get_state())  # the seeds' own streams stay where they are
    masks = draw_masks(training.network, training.drop_paths, x.shape[1], streams, training.device)
    names, ref_loss, ref = _loss_and_grads(training, training.eager_losses, masks, x, y, contextlib.nullcontext)
    _, eager_loss, eager = _loss_and_grads(training, training.eager_losses, masks, x, y, training.autocast)
    _, loss, grads = _loss_and_grads(training, training.losses, masks, x, y, training.autocast)
    worst = {"grad_error": 0.0, "grad_error_eager": 0.0, "worst_parameter": "", "reason": ""}
    _, _, why = _judge("loss", loss, eager_loss, ref_loss, FLOOR, FACTOR, CEILING)
    worst["reason"] = why
    for name, g, g_eager, g_ref in zip(names, grads, eager, ref):
        err, err_eager, why = _judge(f"gradient of {name}", g, g_eager, g_ref, FLOOR, FACTOR, CEILING)
        worst["reason"] = worst["reason"] or why
        if err > worst["grad_error"] or not worst["worst_parameter"]:
            worst.update(grad_error=err, grad_error_eager=err_eager, worst_parameter=name)
    return {"passed": not worst["reason"], **worst, "reason": worst["reason"] or "the compiled stack agrees with eager",
            "precision": training.precision, "seconds": round(time.perf_counter() - started, 2)}
