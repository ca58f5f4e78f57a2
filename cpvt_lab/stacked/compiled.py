"""The compiled stack, checked against the eager stack as ``cpvt_lab.compiled.guard`` checks a compiled network.

On the seeds' first training batches (``CHECK_BATCHES`` steps), from the same weights and with the same drop-path
masks, three passes: the eager stack in fp32 (the yardstick), the eager stack at the run's precision, the compiled
stack at the run's precision. The loss and every stacked parameter's gradient must be within the guard's band
(``FLOOR``, ``FACTOR``, ``CEILING``). Nothing changes: no weight, no ``.grad``, no seed's drop-path stream. A stack
whose check fails trains eager, and its rows say why.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import time
from typing import Optional, Sequence

import torch

from ..compiled.guard import CHECK_BATCHES, CompileCheck, judge_batch, no_errors_yet
from ..module import RESUMED
from .training import StackedTraining

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]  # one batch per seed: one step of the stack


def _loss_and_grads(training: StackedTraining, losses_of, masks, x, y, context):
    names = [n for n, p in training.params.items() if p.requires_grad]
    with context():
        loss = losses_of(training.params, masks, x, y).sum()
    grads = torch.autograd.grad(loss, [training.params[n] for n in names], allow_unused=True)
    return names, loss.detach().double(), [torch.zeros(1) if g is None else g.double() for g in grads]


def check_stacked_compiled(training: StackedTraining, steps: Sequence[Batches]) -> CompileCheck:
    """The verdict on ``training.losses`` (compiled) against ``training.eager_losses`` over ``steps``."""
    started = time.perf_counter()
    streams = [torch.Generator(training.device) for _ in training.generators]
    for stream, generator in zip(streams, training.generators):
        stream.set_state(generator.get_state())  # the seeds' own streams stay where they are
    worst = no_errors_yet()
    for count, batches in enumerate(steps, start=1):
        x, y = (t.to(training.device) for t in training.stack_batches(batches))
        masks = training.draw_masks(x.shape[1], streams)
        names, ref_loss, ref = _loss_and_grads(training, training.eager_losses, masks, x, y, contextlib.nullcontext)
        _, eager_loss, eager = _loss_and_grads(training, training.eager_losses, masks, x, y, training.autocast)
        _, loss, grads = _loss_and_grads(training, training.losses, masks, x, y, training.autocast)
        judge_batch(worst, count, names, (loss, eager_loss, ref_loss), (grads, eager, ref))
    count = len(steps)
    return CompileCheck(
        passed=not worst["reason"], batches=count,
        reason=worst["reason"] or f"the compiled stack agrees with the eager stack on {count} batches",
        precision=training.precision, loss_error=worst["loss"], loss_error_eager=worst["loss_eager"],
        grad_error=worst["grad"], grad_error_eager=worst["grad_eager"], worst_parameter=worst["name"],
        seconds=round(time.perf_counter() - started, 2), **training.compile_options)


def first_steps(members, epoch: int, count: int = CHECK_BATCHES) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """The stack's first ``count`` steps of ``epoch`` as it will train them, mixed where the runs mix (the compiled
    graph takes Mixup's soft targets), leaving every stream where it was: each seed's loader starts an epoch afresh
    from (seed, epoch), and its Mixup draws here from a copy of its numpy state."""
    steps = []
    for member in members:
        member.clock.current_epoch = epoch
        mix = copy.copy(member.mixup)  # shares timm's Mixup (which keeps no state); its own copy of the stream
        batches = itertools.islice(member.train_batches(), count)
        steps.append([mix(x.clone(), y) if mix is not None else (x, y) for x, y in batches])  # Mixup works in place
    return [list(step) for step in zip(*steps)]


def compile_checked(training: StackedTraining, members, epoch: int, resumed: Optional[dict], out=None,
                    carry: bool = False) -> CompileCheck:
    """Compile the stack and check it before it trains; eager where the check fails. Resumed (``resumed``: the
    verdict its resume point keeps), a stack goes on as it went: eager if its check failed, else checked again on
    the resumed weights; ``carry``: nothing is left to train, the resume point's verdict stands."""
    if resumed and (carry or not resumed["passed"]):
        check = CompileCheck.from_dict(resumed)
        check.reason = check.reason if check.reason.startswith(RESUMED) else f"{RESUMED}{check.reason}"
    else:
        training.compile()
        check = check_stacked_compiled(training, first_steps(members, epoch))
    said = f"{check.reason}; {check.options_said()}"
    if check.passed:
        print(f"compile check passed: {said} (worst gradient error {check.grad_error:.2g}, "
              f"eager's {check.grad_error_eager:.2g})", file=out, flush=True)
    else:
        training.uncompile()
        print(f"compile check FAILED, training the stack eager instead: {said}", file=out, flush=True)
    return check
