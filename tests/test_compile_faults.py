"""The faults the compile guard exists for: one small gradient wrong, everything else right.

The known inductor bugs (pytorch/pytorch#190796, #193061: mixed-order reductions) corrupt the gradient
of ONE parameter, a conv bias or a norm weight, and leave the loss and every other gradient exact. The
wrong compilers here do just that: a dynamo backend that runs the graph as it is, but passes one chosen
parameter (a graph input, found by identity) through an autograd Function whose backward returns zero
(a gradient never written) or the gradient of the call before (one left from the previous step). A guard
that compared only the loss, a global gradient norm, or left out 1-D parameters would pass all of them:
the last tests here run such weakened guards and see them pass, so the tests before them can tell a real
guard from a weak one.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn as nn

from conftest import bf16, model_and_batches
from cpvt_lab import compose
from cpvt_lab.compiled import guard as compile_guard
from cpvt_lab import module as module_lib
from cpvt_lab.compiled.guard import CEILING, FACTOR, FLOOR, check_compiled, compile_in_place
from cpvt_lab.train import run_experiment

pytestmark = pytest.mark.usefixtures("single_thread", "fresh_dynamo")

PEG_BIAS = "pos_encoding.generators.0.fn.bias"  # the depth-wise conv of the PEG after block 0
NORM_WEIGHT = "blocks.1.norm1.weight"  # the LayerNorm that follows it


class _Zeroed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, memory):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad), None


class _Stale(torch.autograd.Function):
    """The gradient of the call before (the first call, having none, gets its own)."""
    @staticmethod
    def forward(ctx, x, memory):
        ctx.memory = memory
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        stale = ctx.memory.get("last", grad)
        ctx.memory["last"] = grad.clone()
        return stale, None


def one_gradient_wrong(target: torch.Tensor, fault: str):
    """A wrong compiler: dynamo's graph, exact, except that ``target``'s gradient is ``fault``."""
    wrong = {"zeroed": _Zeroed, "stale": _Stale}[fault]

    def backend(graph, example_inputs):
        [index] = [i for i, t in enumerate(example_inputs) if t is target]  # parameters are graph inputs
        memory: dict = {}

        def run(*args):
            args = list(args)
            args[index] = wrong.apply(args[index], memory)
            return graph.forward(*args)
        return run
    return backend


def compile_wrong(model: nn.Module, target: str, fault: str) -> nn.Module:
    return compile_in_place(model, backend=one_gradient_wrong(model.get_parameter(target), fault))


# zeroed: wrong from the first batch; stale: the first batch has no step before it and is right
FAULTS = [(PEG_BIAS, "zeroed", None, 1), (PEG_BIAS, "stale", bf16, 2),
          (NORM_WEIGHT, "zeroed", bf16, 1), (NORM_WEIGHT, "stale", None, 2)]


@pytest.mark.parametrize("target, fault, context, batch", FAULTS)
def test_one_small_gradient_wrong_fails_the_check_and_it_names_the_parameter(target, fault, context, batch):
    model, batches = model_and_batches()
    compile_wrong(model, target, fault)
    check = check_compiled(model, batches, context or contextlib.nullcontext)
    assert not check.passed
    assert check.reason.startswith(f"batch {batch}: gradient of {target} off by"), check.reason
    assert check.worst_parameter == target and check.loss_error <= max(FLOOR, FACTOR * check.loss_error_eager)


def test_a_run_whose_compiler_leaves_a_norm_weights_gradient_stale_trains_eager_and_says_why(
        fast_overrides, monkeypatch, capsys):
    monkeypatch.setattr(module_lib, "compile_in_place", lambda model: compile_wrong(model, NORM_WEIGHT, "stale"))
    row = run_experiment(compose("peg_0to5", fast_overrides + ["compile=true"]))
    assert row["status"] == "ok" and row["compiled"] is False
    assert row["compile_check"]["passed"] is False
    assert row["compile_check"]["reason"].startswith(f"batch 2: gradient of {NORM_WEIGHT} off by")
    assert "compile check FAILED, training eager instead" in capsys.readouterr().out


# ---------------------------------------------------------------- the ceiling, a reference that is not finite
class NearTie(nn.Module):
    """Logits near 1000 that differ by about 1: bf16 (a spacing of 4 there) cannot hold the differences, so
    eager at bf16 is far from fp32 on every gradient, and 5 x its error would let anything through."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 10)
        with torch.no_grad():
            self.fc.bias.fill_(1000.0)

    def forward(self, x):
        return self.fc(x)


def toy_batches(n=2):
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 8, generator=generator), torch.randint(0, 10, (16,), generator=generator))
            for _ in range(n)]


def test_where_eager_itself_is_far_off_the_band_stops_at_the_ceiling():
    torch.manual_seed(0)
    model = NearTie()
    compile_wrong(model, "fc.weight", "zeroed")
    check = check_compiled(model, toy_batches(), bf16, "bf16-mixed")
    assert not check.passed and f"past the ceiling of {CEILING:g}" in check.reason, check.reason
    assert check.grad_error_eager * FACTOR >= 1.0  # uncapped, the band would hold a zeroed gradient (off by 1)


class FiniteOnlyCompiled(nn.Module):
    """Stands for an fp32 eager reference that is not finite (weights gone to NaN) while the compiled
    network's numbers are: comparing with NaN is no check, whatever the compiled network gives."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.fc(x)
        return y if torch.compiler.is_compiling() else y * float("nan")


def test_a_reference_that_is_not_finite_fails_the_check():
    model = compile_in_place(FiniteOnlyCompiled(), backend="aot_eager")
    check = check_compiled(model, toy_batches(1))
    assert not check.passed
    assert check.reason == "batch 1: the fp32 eager reference of the loss is not finite: nothing to check against"


# ---------------------------------------------------------------- weakened guards pass these faults
def only_the_loss(judge):
    return lambda what, *args: judge(what, *args) if what == "loss" else (0.0, 0.0, "")


def without_1d_parameters(judge):
    return lambda what, x, *args: judge(what, x, *args) if what == "loss" or x.dim() > 1 else (0.0, 0.0, "")


def global_gradient_norm(model, batches) -> bool:
    """A weakened guard in full: passes if the global gradient norm agrees with fp32 eager's within FLOOR."""
    params = [p for p in model.parameters() if p.requires_grad]
    for count, (x, y) in enumerate(batches, start=1):
        with torch.compiler.set_stance("force_eager"):
            _, ref = compile_guard._loss_and_grads(model, params, x, y, contextlib.nullcontext, count)
        _, got = compile_guard._loss_and_grads(model, params, x, y, contextlib.nullcontext, count)
        norm, ref_norm = torch.cat([g.flatten() for g in got]).norm(), torch.cat([g.flatten() for g in ref]).norm()
        if abs(norm - ref_norm) > FLOOR * ref_norm:
            return False
    return True


@pytest.mark.parametrize("weakened", [only_the_loss, without_1d_parameters, global_gradient_norm])
@pytest.mark.parametrize("target, fault", [(PEG_BIAS, "zeroed"), (NORM_WEIGHT, "stale")])
def test_a_weakened_guard_passes_these_faults(weakened, target, fault, monkeypatch):
    """What the tests above rest on: each of them fails against a guard weakened so."""
    model, batches = model_and_batches()
    compile_wrong(model, target, fault)
    if weakened is global_gradient_norm:
        assert global_gradient_norm(model, batches)
    else:
        monkeypatch.setattr(compile_guard, "_judge", weakened(compile_guard._judge))
        assert check_compiled(model, batches).passed
