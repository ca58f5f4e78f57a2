"""Compiled training must be the same training: compile a network, and check it against eager before it trains.

A compiled network is trusted only after ``check_compiled`` has compared it with the
same network run eagerly, from the same weights, on real batches: the training loss
and the gradient of every trainable parameter, under the run's precision. The yardstick
is an fp32 eager pass of the same batch: the compiled gradients may stray from it by
no more than a few times what eager itself strays at the run's precision (bf16 rounding
is no fault of the compiler), with a small floor for fp32 and a ceiling for every
precision. A compiler that computes a wrong gradient (the way compiled multi-PEG models
collapsed on a GPU) is off by order one, far outside that band. See docs/compile.md.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, ContextManager, Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

# Inductor settings every compiled network gets (where the running torch has them):
# - fallback_random: random ops (drop-path) draw from eager's generator, so the check
#   compares like with like and a compiled run draws the masks an eager run draws;
# - triton.mix_order_reduction off: inductor's fused mixed-order reductions (default on
#   since torch 2.10) have computed silently wrong gradients of biases and norm weights
#   (pytorch/pytorch#190796, #193061), the suspected cause of the multi-PEG collapse;
# - force_layout_optimization: inductor's heuristic gives up channels-last layouts in a graph with few convolutions
#   (a ViT's patch embedding and PEG), and its backward graph (which holds no forward convolution) never has them, so
#   it copies the PEG's gradient into a contiguous NCHW grid (torch 2.14; 2.11 does not); in bf16 on CUDA that sends
#   the depth-wise convolution's backward to torch's native depth-wise kernels instead of cuDNN's (docs/compile.md).
INDUCTOR_OPTIONS = {"fallback_random": True, "triton.mix_order_reduction": False, "force_layout_optimization": True}

# The band: compiled error <= min(CEILING, max(FLOOR, FACTOR x eager's own error)), all against fp32 eager.
FLOOR = 1e-3
FACTOR = 5.0
# Never more than this, whatever eager's own error: uncapped, a parameter on which bf16 eager is 0.2 off would
# let a zeroed gradient (off by 1.0) through. bf16 keeps 8 significant bits (one rounding is off by at most
# 2**-9, 0.002); bf16 eager's worst gradient error on the smoke peg_0to5 model at init is 0.02-0.034 (batches
# of 4 to 64), some fifteen roundings compounded through 12 blocks. 0.1 leaves that three times the room and
# is still ten times below the faults the guard is for (a gradient zeroed, or left from the step before, is off
# by order one). Where eager itself is off by more, the check cannot tell rounding from a fault and fails
# safe: the run trains eager.
CEILING = 0.1
CHECK_BATCHES = 3
# A grid trains many architectures in one process; past dynamo's default of 8 graphs per code object
# the next network silently runs eager (seen: the 9th ablation of a grid), so the project allows more.
RECOMPILE_LIMIT = 64


def inductor_options(overrides: Optional[dict] = None, project: bool = True) -> tuple[dict, list[str]]:
    """``INDUCTOR_OPTIONS`` (with ``overrides``; without the project's own options unless ``project``) split into
    those this torch's inductor knows, which it gets, and the names of those it does not (inductor refuses
    unknown options, so they are dropped and named)."""
    from torch._inductor import config

    known, wanted = config.get_config_copy(), {**(INDUCTOR_OPTIONS if project else {}), **(overrides or {})}
    return {k: v for k, v in wanted.items() if k in known}, sorted(k for k in wanted if k not in known)


def compile_settings(backend="inductor", options: Optional[dict] = None, project: bool = True) -> tuple[dict, dict]:
    """(``torch.compile``'s keyword arguments, the record a verdict keeps of them) for ``backend``; raises dynamo's
    recompile limit to ``RECOMPILE_LIMIT``. With ``project=False``, torch's defaults (plus only ``options``)."""
    kwargs, applied, unknown = {"backend": backend}, {}, []
    if backend == "inductor":
        applied, unknown = inductor_options(options, project)
        kwargs["options"] = applied or None
    dynamo = torch._dynamo.config
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # renamed in 2.7
    setattr(dynamo, limit, max(getattr(dynamo, limit), RECOMPILE_LIMIT))
    return kwargs, {"backend": getattr(backend, "__name__", str(backend)), "options_applied": applied,
                    "options_unknown": unknown}


def compile_in_place(model: nn.Module, backend: str = "inductor", options: Optional[dict] = None,
                     project: bool = True, **kwargs) -> nn.Module:
    """``model.compile()``: state-dict keys keep their names (no ``_orig_mod.``). With ``project=False``, torch's
    defaults (plus only ``options``), as a timm user compiles. The options given to inductor, and those dropped,
    stay on the model for ``check_compiled`` to record."""
    settings, model._compile_options = compile_settings(backend, options, project)
    model.compile(**settings, **kwargs)
    return model


def _eager_fallbacks() -> int:
    """How often dynamo has given up compiling a frame at its recompile limit (and run it eagerly)."""
    from torch._dynamo.utils import counters

    return sum(n for reason, n in counters["unimplemented"].items() if "recompile limit" in reason.lower()
               or "cache_size_limit" in reason)


def uncompile(model: nn.Module) -> None:
    """Undo ``compile_in_place``: ``nn.Module.compile`` keeps its compiled call in this one attribute."""
    model._compiled_call_impl = None


def is_compiled(model: nn.Module) -> bool:
    return getattr(model, "_compiled_call_impl", None) is not None


@dataclass
class CompileCheck:
    """The verdict of one check, as it goes into a result row."""
    passed: bool
    reason: str
    batches: int
    precision: str
    loss_error: float  # worst |loss - fp32 loss| / |fp32 loss| of the compiled network
    loss_error_eager: float  # the same for eager at the run's precision
    grad_error: float  # worst over parameters of |g - g_fp32| / |g_fp32|, compiled
    grad_error_eager: float  # eager's error on that same parameter
    worst_parameter: str
    seconds: float
    floor: float = FLOOR
    factor: float = FACTOR
    ceiling: float = CEILING
    backend: str = ""  # as compile_in_place was given it ("" if the network was compiled otherwise)
    options_applied: dict = field(default_factory=dict)  # the inductor options the network was compiled with
    options_unknown: list = field(default_factory=list)  # the project's options this torch does not know: dropped

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "CompileCheck":
        """A verdict as a row or a checkpoint keeps it (fields added since are left at their defaults)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})

    def options_said(self) -> str:
        """The compile settings, for the console: inductor's options, and any dropped as unknown to this torch."""
        if self.backend != "inductor":
            return f"backend {self.backend or 'unknown'}"
        applied = ", ".join(f"{k}={v}" for k, v in self.options_applied.items()) or "none"
        dropped = f"; NOT applied, unknown to torch {torch.__version__}: {', '.join(self.options_unknown)}"
        return f"inductor options {applied}" + (dropped if self.options_unknown else "")


def _loss_and_grads(model, params, x, y, context: Callable[[], ContextManager], seed: int):
    torch.manual_seed(seed)  # the same drop-path masks in every pass
    with context():
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y)
    return loss.detach().double(), [g.double() for g in torch.autograd.grad(loss, params)]


def _relative(a: torch.Tensor, ref: torch.Tensor) -> float:
    if not torch.isfinite(a).all():
        return math.inf
    return float((a - ref).norm() / ref.norm().clamp_min(1e-30))


def _judge(what: str, x: torch.Tensor, x_eager: torch.Tensor, x_ref: torch.Tensor,
           floor: float, factor: float, ceiling: float) -> tuple[float, float, str]:
    """One quantity (the loss, or the gradient of one parameter): (compiled's error, eager's error, why it fails
    or ""). Every parameter is judged on its own, whatever its size or shape: the known inductor faults corrupt
    one small gradient (a conv bias, a norm weight), which a loss or a global gradient norm does not show."""
    if not torch.isfinite(x_ref).all():
        return math.inf, math.inf, f"the fp32 eager reference of the {what} is not finite: nothing to check against"
    err, err_eager = _relative(x, x_ref), _relative(x_eager, x_ref)
    if err <= min(ceiling, max(floor, factor * err_eager)):
        return err, err_eager, ""
    capped = f", past the ceiling of {ceiling:g}" if factor * err_eager > ceiling else ""
    return err, err_eager, (f"{what} off by {err:.3g} (relative to fp32 eager; eager at this precision: "
                            f"{err_eager:.3g}{capped})")


def no_errors_yet() -> dict:
    """The worst errors of a check before its first batch (``judge_batch`` updates them)."""
    return dict(loss=0.0, loss_eager=0.0, grad=0.0, grad_eager=0.0, name="", reason="")


def judge_batch(worst: dict, count: int, names: list[str], losses: tuple, grads: tuple,
                floor: float = FLOOR, factor: float = FACTOR, ceiling: float = CEILING) -> None:
    """Judge batch ``count``'s loss and each parameter's gradient, each given as (compiled, eager at the run's
    precision, fp32 eager reference), into ``worst``: the first reason to fail, the largest errors."""
    err, err_eager, why = _judge("loss", *losses, floor, factor, ceiling)
    worst["reason"] = worst["reason"] or (why and f"batch {count}: {why}")
    worst["loss"], worst["loss_eager"] = max(worst["loss"], err), max(worst["loss_eager"], err_eager)
    for name, g, g_eager, g_ref in zip(names, *grads):
        err, err_eager, why = _judge(f"gradient of {name}", g, g_eager, g_ref, floor, factor, ceiling)
        worst["reason"] = worst["reason"] or (why and f"batch {count}: {why}")
        if err > worst["grad"] or not worst["name"]:
            worst.update(grad=err, grad_eager=err_eager, name=name)


def check_compiled(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   context: Callable[[], ContextManager] = contextlib.nullcontext, precision: str = "32-true",
                   floor: float = FLOOR, factor: float = FACTOR, ceiling: float = CEILING) -> CompileCheck:
    """Compare the compiled ``model`` with itself run eagerly on ``batches``, in train mode.

    ``context`` makes the run's precision context (Lightning's ``forward_context``, an
    autocast). Nothing changes: no weight, no ``.grad``, and the random number streams are
    restored, so a checked run trains exactly as an unchecked one would.
    """
    started = time.perf_counter()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names, tensors = [n for n, _ in params], [p for _, p in params]
    worst = no_errors_yet()
    was_training = model.training
    model.train()
    fallbacks = _eager_fallbacks()
    # torch.manual_seed seeds every CUDA device too: fork them all wherever CUDA is up, whatever the model's device
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []):
        count = 0
        for count, (x, y) in enumerate(batches, start=1):
            seed = 1_000 + count
            with torch.compiler.set_stance("force_eager"):
                ref_loss, ref = _loss_and_grads(model, tensors, x, y, contextlib.nullcontext, seed)
                eager_loss, eager = _loss_and_grads(model, tensors, x, y, context, seed)
            loss, grads = _loss_and_grads(model, tensors, x, y, context, seed)
            judge_batch(worst, count, names, (loss, eager_loss, ref_loss), (grads, eager, ref), floor, factor, ceiling)
    model.train(was_training)
    if count == 0:
        raise ValueError("check_compiled needs at least one batch")
    if _eager_fallbacks() > fallbacks:  # "compiled" would be eager compared with eager: no check at all
        worst["reason"] = ("torch.compile ran the network eagerly: dynamo hit its recompile limit "
                           f"(torch._dynamo.config.recompile_limit; the project sets {RECOMPILE_LIMIT})")
    passed = not worst["reason"]
    return CompileCheck(
        passed=passed, reason=worst["reason"] or f"compiled agrees with eager on {count} batches", batches=count,
        precision=precision, loss_error=worst["loss"], loss_error_eager=worst["loss_eager"],
        grad_error=worst["grad"], grad_error_eager=worst["grad_eager"], worst_parameter=worst["name"],
        seconds=round(time.perf_counter() - started, 2), floor=floor, factor=factor, ceiling=ceiling,
        **getattr(model, "_compile_options", {}))
