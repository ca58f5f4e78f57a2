"""The compile guard: compiled training is checked against eager before it trains, and falls back when wrong.

The compiled functions here come from small dynamo backends that run dynamo's graph as it is
(``aot_eager`` or a plain callable), so the tests take seconds on a CPU; two of them are wrong on
purpose, one in the loss and one only in a gradient, so the guard can be seen to fail.
"""
from __future__ import annotations

import contextlib
import functools

import pytest
import torch
from omegaconf import OmegaConf

from torch._dynamo.backends.debugging import aot_eager

from conftest import Interrupted, bf16, model_and_batches, stop_after_training, stop_at_epoch
from cpvt_lab import build_model, compose
from cpvt_lab.compiled import guard as compile_guard
from cpvt_lab import module as module_lib
from cpvt_lab.compiled.guard import INDUCTOR_OPTIONS, check_compiled, compile_in_place, inductor_options, is_compiled
from cpvt_lab.fingerprint import run_id
from cpvt_lab.module import RESUMED
from cpvt_lab.results import append_row, find_success, finished_rows
from cpvt_lab.tables import write_tables
from cpvt_lab.train import run_dir, run_experiment

pytestmark = pytest.mark.usefixtures("single_thread", "fresh_dynamo")


def scaled_logits(graph, example_inputs):
    """A wrong compiler: logits 3% too large (so the loss and every gradient are off)."""
    def run(*args):
        out = graph.forward(*args)
        return (out[0] * 1.03, *out[1:]) if isinstance(out, (tuple, list)) else out * 1.03
    return run


class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 1.5


def wrong_gradient(graph, example_inputs):
    """A subtler wrong compiler: the forward is exact, every gradient 50% too large."""
    def run(*args):
        out = graph.forward(*args)
        return (_WrongBackward.apply(out[0]), *out[1:]) if isinstance(out, (tuple, list)) else _WrongBackward.apply(out)
    return run


@pytest.mark.parametrize("context, precision", [(None, "32-true"),
                                                pytest.param(bf16, "bf16-mixed", marks=pytest.mark.slow)])
def test_a_faithful_compilation_passes_with_drop_path_on(context, precision):
    model, batches = model_and_batches()
    assert any(getattr(b.drop_path1, "drop_prob", 0) > 0 for b in model.blocks)  # masks must match, not be off
    compile_in_place(model, backend="aot_eager")
    check = check_compiled(model, batches, context or contextlib.nullcontext, precision)
    assert check.passed, check.reason
    assert check.batches == 2 and check.grad_error <= max(check.floor, check.factor * check.grad_error_eager)


@pytest.mark.parametrize("ablation", [pytest.param("rope_axial", marks=pytest.mark.slow), "rope_mixed",
                                     pytest.param("peg_rope", marks=pytest.mark.slow)])  # rope_mixed holds the hook
def test_a_faithful_compilation_of_rope_passes(ablation):
    # under torch.compile the rotary tables are built inside the graph, not read from the eager cache
    model, batches = model_and_batches(ablation)
    compile_in_place(model, backend="aot_eager")
    check = check_compiled(model, batches)
    assert check.passed, check.reason


@pytest.mark.parametrize("backend, what", [(scaled_logits, ""), (wrong_gradient, "gradient of")])
@pytest.mark.parametrize("context", [None, bf16])
def test_a_wrong_compilation_fails_and_says_where(backend, what, context):
    model, batches = model_and_batches()
    compile_in_place(model, backend=backend)
    check = check_compiled(model, batches, context or contextlib.nullcontext)
    assert not check.passed
    assert check.reason.startswith("batch 1: " + what)


def test_the_check_changes_no_weight_no_gradient_and_no_random_stream():
    model, batches = model_and_batches()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compile_in_place(model, backend="aot_eager")
    torch.manual_seed(5)
    check_compiled(model, batches)
    after_check = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after_check, torch.rand(3))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_inductor_gets_the_projects_options_that_this_torch_knows_and_the_others_are_named():
    applied, unknown = inductor_options({"no_such_option": 1})
    assert applied["fallback_random"] is True and "no_such_option" not in applied
    assert set(applied) <= set(INDUCTOR_OPTIONS) and unknown == ["no_such_option"]


# ---------------------------------------------------------------- in a run
def with_backend(monkeypatch, backend):
    monkeypatch.setattr(module_lib, "compile_in_place", functools.partial(compile_in_place, backend=backend))


def test_a_run_whose_compilation_is_wrong_trains_eager_and_its_row_says_why(fast_overrides, monkeypatch, capsys):
    with_backend(monkeypatch, wrong_gradient)
    row = run_experiment(compose("peg_0to5", fast_overrides + ["compile=true"]))
    assert row["status"] == "ok" and row["compiled"] is False
    assert row["compile_check"]["passed"] is False and "gradient of" in row["compile_check"]["reason"]
    assert "compile check FAILED, training eager instead" in capsys.readouterr().out


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_a_run_whose_compilation_is_faithful_trains_compiled(fast_overrides, monkeypatch):
    with_backend(monkeypatch, "aot_eager")
    row = run_experiment(compose("peg_0to5", fast_overrides + ["compile=true"]))
    assert row["compiled"] is True and row["compile_check"]["passed"] is True
    assert row["compile_check"]["precision"] == row["config"]["trainer"]["precision"]  # bf16-mixed on a GPU


def test_the_row_names_the_inductor_options_applied_and_those_this_torch_does_not_know(
        fast_overrides, monkeypatch, capsys):
    seen = []

    def inductor_without_code_generation(graph, example_inputs, config_patches=None, **kwargs):
        seen.append(config_patches)  # what inductor was given; aot_eager then stands in for its slow CPU code
        return aot_eager(graph, example_inputs)
    monkeypatch.setattr("torch._inductor.compile_fx.compile_fx", inductor_without_code_generation)
    monkeypatch.setattr(compile_guard, "INDUCTOR_OPTIONS", {**INDUCTOR_OPTIONS, "no_such_option": True})
    row = run_experiment(compose("peg", fast_overrides + ["compile=true"]))
    check = row["compile_check"]
    assert row["compiled"] is True and check["passed"] is True and check["backend"] == "inductor"
    assert check["options_applied"] == INDUCTOR_OPTIONS and check["options_unknown"] == ["no_such_option"]
    assert seen and all(INDUCTOR_OPTIONS.items() <= patches.items() for patches in seen)
    assert f"NOT applied, unknown to torch {torch.__version__}: no_such_option" in capsys.readouterr().out


def test_an_eager_run_records_no_check(fast_overrides):
    row = run_experiment(compose("peg", fast_overrides))
    assert row["compiled"] is False and row["compile_check"] is None


# ---------------------------------------------------------------- rows with no check: before the guard, or null
def test_rows_compiled_without_a_check_are_no_result_and_are_trained_again(fast_overrides, tmp_path):
    cfg = compose("peg", fast_overrides)
    good = run_experiment(cfg)
    results_dir = cfg.results_dir
    compiled = [compose("peg", [*fast_overrides, f"seed={seed}", "compile=true"]) for seed in (1, 2)]
    old, null = ({**good, "seed": c.seed, "run_id": run_id(c), "config": OmegaConf.to_container(c, resolve=True)}
                 for c in compiled)
    del old["compile_check"]  # a row from before the guard
    append_row(results_dir, old)
    append_row(results_dir, {**null, "compile_check": None})  # null is no check either
    assert [r["run_id"] for r in finished_rows(results_dir)] == [good["run_id"]]
    assert all(find_success(results_dir, r["run_id"]) is None for r in (old, null))  # so trained again
    write_tables(results_dir, tmp_path / "tables")
    index = (tmp_path / "tables" / "README.md").read_text()
    assert "2 rows set aside" in index and old["run_id"] in index and null["run_id"] in index
    assert "0 finished" not in index and good["run_id"] not in index


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_a_checked_compiled_row_counts(fast_overrides, monkeypatch):
    with_backend(monkeypatch, "aot_eager")
    cfg = compose("peg", fast_overrides + ["compile=true"])
    row = run_experiment(cfg)
    assert [r["run_id"] for r in finished_rows(cfg.results_dir)] == [row["run_id"]]
    assert is_compiled(build_model(cfg)) is False  # a fresh model is never compiled


# ---------------------------------------------------------------- resumed compiled runs
def interrupted_then_resumed(cfg, stop, change_checkpoint=None) -> dict:
    with pytest.raises(Interrupted):
        run_experiment(cfg, callbacks=[stop])
    if change_checkpoint:
        last = run_dir(cfg, run_id(cfg)) / "checkpoints" / "last.ckpt"
        torch.save(change_checkpoint(torch.load(last, weights_only=False)), last)
    return run_experiment(cfg)


def without_check(state: dict) -> dict:
    del state["compile_check"]  # a checkpoint written before checkpoints kept the verdict
    return state


@pytest.mark.parametrize("change_checkpoint", [None, without_check])
def test_a_compiled_run_resumed_with_nothing_left_to_train_still_has_a_check(change_checkpoint, fast_overrides,
                                                                               monkeypatch):
    with_backend(monkeypatch, "aot_eager")
    cfg = compose("peg", fast_overrides + ["compile=true"])
    row = interrupted_then_resumed(cfg, stop_after_training(), change_checkpoint)
    assert row["compiled"] is True and row["compile_check"]["passed"] is True
    assert row["compile_check"]["reason"].startswith(RESUMED) is (change_checkpoint is None)  # else checked now
    assert [r["run_id"] for r in finished_rows(cfg.results_dir)] == [row["run_id"]]


def test_a_compiled_run_resumed_mid_training_is_checked_again(fast_overrides, monkeypatch):
    with_backend(monkeypatch, "aot_eager")
    row = interrupted_then_resumed(compose("peg", fast_overrides + ["compile=true", "trainer.max_epochs=2"]),
                                   stop_at_epoch(1))
    assert row["compiled"] is True and row["compile_check"]["passed"] is True
    assert not row["compile_check"]["reason"].startswith(RESUMED)


def test_a_run_whose_check_failed_resumes_eager_whatever_a_new_check_would_say(fast_overrides, monkeypatch):
    with_backend(monkeypatch, wrong_gradient)
    cfg = compose("peg", fast_overrides + ["compile=true", "trainer.max_epochs=2"])
    with pytest.raises(Interrupted):
        run_experiment(cfg, callbacks=[stop_at_epoch(1)])
    with_backend(monkeypatch, "aot_eager")  # would pass: but the run trained its first epoch eager
    row = run_experiment(cfg)
    assert row["compiled"] is False and row["compile_check"]["passed"] is False
    assert row["compile_check"]["reason"].startswith(RESUMED + "batch 1: gradient of")


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_a_network_that_dynamo_leaves_eager_at_its_recompile_limit_does_not_pass():
    first, batches = model_and_batches("peg")
    second, _ = model_and_batches("none")
    compile_in_place(first, backend="aot_eager")
    compile_in_place(second, backend="aot_eager")
    assert check_compiled(first, batches[:1]).passed
    with torch._dynamo.config.patch(recompile_limit=1):  # (monkeypatch would delete the config entry on undo)
        check = check_compiled(second, batches[:1])
    assert not check.passed and "recompile limit" in check.reason


def test_compiling_raises_dynamos_recompile_limit_for_grids():
    with torch._dynamo.config.patch(recompile_limit=8):
        compile_in_place(model_and_batches("peg")[0], backend="aot_eager")
        assert torch._dynamo.config.recompile_limit >= 64


def test_the_check_of_a_run_resumed_with_nothing_left_to_train_runs_on_its_device(fast_overrides, monkeypatch):
    # the check carried into on_fit_end runs after Lightning's teardown has moved the module to the CPU; on a
    # GPU it met batches on the GPU (Input type (torch.cuda.FloatTensor) and weight type (torch.FloatTensor)).
    # On a CPU both are the CPU, so this pins the rule; on a GPU it is the regression test
    with_backend(monkeypatch, "aot_eager")
    seen, real = [], module_lib.check_compiled

    def spy(model, batches, *args, **kwargs):
        seen.append(({p.device for p in model.parameters()}, {x.device for x, _ in batches}))
        return real(model, batches, *args, **kwargs)
    monkeypatch.setattr(module_lib, "check_compiled", spy)
    cfg = compose("peg", fast_overrides + ["compile=true"])
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    row = interrupted_then_resumed(cfg, stop_after_training(), without_check)
    assert row["compile_check"]["passed"] and not row["compile_check"]["reason"].startswith(RESUMED)
    assert len(seen) == 2 and all(params == batches == {expected} for params, batches in seen)


def test_an_evaluation_that_raises_leaves_the_compiler_stance_as_it_was(fast_overrides, monkeypatch):
    # evaluation runs eager by torch.compiler's stance; set for a whole evaluation, it stayed force_eager for
    # the rest of the process when one raised, and later compiled runs were silently eager
    from torch._dynamo import eval_frame
    import pytorch_lightning as pl

    class FailsInEvaluation(pl.Callback):
        def on_validation_batch_end(self, *args, **kwargs):
            raise RuntimeError("an evaluation that fails")
    with_backend(monkeypatch, "aot_eager")
    with pytest.raises(RuntimeError, match="an evaluation that fails"):
        run_experiment(compose("peg", fast_overrides + ["compile=true"]), callbacks=[FailsInEvaluation()])
    assert eval_frame._stance.stance == "default"
