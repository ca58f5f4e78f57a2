"""Stacked training is the separate runs' training: K = 3 seeds trained as one stacked network (torch.func) give
each seed the per-step losses and final weights (and EMA weights) of its separate run, in fp32 on a CPU.

The separate runs are the project's own path: ``peg`` through ``run_experiment`` itself, the others through the
same start (seed, data module, network, LightningModule, the run's Trainer with its clipping and the EMA callback)
without the evaluations and files, which change no weight. The stack gets the same configs. Two epochs of two
batches each: the schedule's warm-up and decay, each seed's own data order per epoch, clipping that bites, and an
EMA that moves.
"""
from __future__ import annotations

import io

import pytest
import pytorch_lightning as pl
import torch

from hydra.utils import instantiate

from conftest import Interrupted, fast_overrides_for
from cpvt_lab import build_model, compose, predictions
from cpvt_lab.ema import EMA
from cpvt_lab.fingerprint import run_id
from cpvt_lab.results import finished_rows
from cpvt_lab.stacked import StackedTraining, build_members
from cpvt_lab.stacked import runs as stacked_runs_lib
from cpvt_lab.stacked.compiled import check_stacked_compiled
from cpvt_lab.stacked import training as stacked_training
from cpvt_lab.stacked.loop import batches_per_epoch, train_epochs
from cpvt_lab.stacked.eligibility import stack_device, stackable_groups, stacking_on, why_not_stacked
from cpvt_lab.study.plan import PlannedRun, plan_grid
from cpvt_lab.study.runner import run_planned
from cpvt_lab.train import make_module, run_experiment

pytestmark = pytest.mark.usefixtures("single_thread")

SEEDS = (0, 1, 2)
# clipping at 0.5 bites on every step of the smoke model at init (its gradient norms are 1 to 3)
SETTINGS = ["trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.gradient_clip_val=0.5",
            "ema.enabled=true", "ema.decay=0.9", "model.drop_path=0.0", "data.eval_sizes=[32]"]
# fp32 on the CPU wherever the tests run (on a GPU machine too); the GPU's own comparison is the cuda case below
ON_THE_CPU = ["trainer.accelerator=cpu", "trainer.precision=32-true"]
TOLERANCE = dict(atol=1e-5, rtol=1e-4)
# fp32 on a GPU: cuDNN convolutions may run in TF32 (torch's default), batched otherwise in the stack
GPU_TOLERANCE = dict(atol=2e-3, rtol=2e-3)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


class Recorder(pl.Callback):
    """What a separate run trained: its loss at every step, its final weights and its EMA's."""

    def __init__(self):
        self.losses, self.weights, self.ema = [], None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))

    def on_train_end(self, trainer, pl_module):
        self.weights = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        ema = next(c for c in trainer.callbacks if isinstance(c, EMA))
        self.ema = {k: v.detach().clone() for k, v in ema.ema.module.state_dict().items()}


def trained_as_a_run_starts(cfg, recorder):
    """``cpvt_lab.train._train_and_evaluate`` up to the end of ``fit``, without evaluations, logs or files."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    module = make_module(cfg, build_model(cfg), [cfg.data.train_size])
    trainer = instantiate(cfg.trainer, callbacks=[EMA(cfg.ema.decay), recorder], logger=False,
                          enable_checkpointing=False, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)


def separate(cfgs, whole_runs=False):
    recorders = []
    for cfg in cfgs:
        recorders.append(Recorder())
        if whole_runs:
            assert run_experiment(cfg, callbacks=[recorders[-1]])["status"] == "ok"
        else:
            trained_as_a_run_starts(cfg, recorders[-1])
    return recorders


def stacked(cfgs):
    device = stack_device(cfgs[0])
    members = build_members(cfgs, device)
    cfg = cfgs[0]
    per_epoch = batches_per_epoch(len(members[0].train_batches()), cfg.trainer.limit_train_batches)
    training = StackedTraining([m.model for m in members], [m.generator for m in members], cfg,
                               cfg.data.batch_size, per_epoch * cfg.trainer.max_epochs, cfg.trainer.max_epochs,
                               device, str(cfg.trainer.precision), ema_decay=cfg.ema.decay,
                               mixers=[m.mixup for m in members],
                               label_smoothing=[c.optim.label_smoothing for c in cfgs])
    losses, norms = [], []

    def after_step(epoch, index, step_losses):
        losses.append(step_losses.tolist())
        norms.append(training.last_norms.tolist())
    train_epochs(training, members, 0, cfg.trainer.max_epochs, per_epoch, after_step)
    stacked.drop_paths = training.drop_paths  # the drop-path branches whose masks the stack drew
    return losses, norms, training.state_dicts(), training.ema_state_dicts()


def configs(ablation, fast_overrides, extra=(), where=ON_THE_CPU):
    return [compose(ablation, fast_overrides + SETTINGS + list(where) + list(extra) + [f"seed={s}"]) for s in SEEDS]


def assert_same_training(runs, losses, weights, ema, tolerance=TOLERANCE):
    for k, run in enumerate(runs):
        assert [step[k] for step in losses] == pytest.approx(run.losses, abs=tolerance["atol"]), \
            f"seed {SEEDS[k]}: losses"
        for name, value in run.weights.items():
            torch.testing.assert_close(weights[k][name].cpu(), value.cpu(), **tolerance, msg=f"seed {SEEDS[k]}: {name}")
        for name, value in run.ema.items():
            torch.testing.assert_close(ema[k][name].cpu(), value.cpu(), **tolerance,
                                       msg=f"seed {SEEDS[k]}: EMA {name}")


MIXING = ["optim.mixup=0.8", "optim.cutmix=1.0"]  # timm's Mixup picks mix or cut per batch: both are drawn


@pytest.mark.parametrize("ablation, extra", [("learned", []), ("peg", []), ("peg_gap", []), ("rope_axial", []),
                                           ("peg", ["model.drop_path=0.1", "peg_lowering=taps"]), ("peg_gap", MIXING)],
                         ids=["learned", "peg", "peg_gap", "rope_axial", "peg_drop_path_taps", "peg_gap_mixup_cutmix"])
def test_three_stacked_seeds_train_as_their_three_separate_runs(ablation, extra, fast_overrides):
    cfgs = configs(ablation, fast_overrides, extra)
    runs = separate(cfgs, whole_runs=ablation == "peg" and not extra)
    losses, norms, weights, ema = stacked(cfgs)
    assert len(losses) == 4 and all(len(run.losses) == 4 for run in runs)
    assert len(stacked.drop_paths) == (22 if "model.drop_path=0.1" in extra else 0)  # blocks 1-11: two masks each
    assert all(n > 0.5 for step in norms for n in step)  # clipping bit on every step of every seed
    assert len({tuple(step) for step in losses}) == 4 and len(set(losses[0])) == 3  # seeds and steps differ
    assert_same_training(runs, losses, weights, ema)


# a sweep's settings, one seed each, differing in everything a member takes alone (eligibility.MEMBER_KEYS): its
# Mixup/CutMix, label smoothing, drop-path rate and augmentation; the first mixes, the others train on labels
OWN_SETTINGS = [["optim.mixup=0.8", "optim.cutmix=1.0", "model.drop_path=0.1"],
                ["optim.label_smoothing=0.0", "data.augment=trivialaugment", "data.random_erasing=0.5"],
                ["model.drop_path=0.2", "optim.label_smoothing=0.2", "data.flip=false", "data.crop_padding=2"]]


def own_settings(fast_overrides, extra=()):
    return [compose("peg_gap", fast_overrides + SETTINGS + ON_THE_CPU + own + list(extra) + [f"seed={seed}"])
            for seed, own in zip(SEEDS, OWN_SETTINGS)]


def test_members_with_settings_of_their_own_train_as_their_separate_runs(fast_overrides):
    cfgs = own_settings(fast_overrides)
    assert stackable_groups(own_settings(fast_overrides, ["stack=on"])) == [[0, 1, 2]]
    runs = separate(cfgs)
    losses, norms, weights, ema = stacked(cfgs)
    assert len(stacked.drop_paths) == 22  # the union of the members' branches: blocks 1-11, two masks each
    assert len({tuple(step) for step in losses}) == 4 and len(set(losses[0])) == 3
    assert_same_training(runs, losses, weights, ema)


def test_a_cap_on_the_stack_splits_a_group_into_stacks_of_near_equal_size(fast_overrides):
    def groups(seeds, cap):
        return stackable_groups([r.cfg for r in planned_seeds("peg", fast_overrides + [f"stack_max={cap}"], "on",
                                                              seeds)])
    assert groups(range(7), 3) == [[0, 1, 2], [3, 4], [5, 6]]  # not 3, 3 and one run alone
    assert groups(range(5), 2) == [[0, 1], [2, 3]]  # the fifth trains alone
    assert groups(range(5), 0) == [[0, 1, 2, 3, 4]]


def test_runs_that_differ_in_what_their_members_share_do_not_stack(fast_overrides):
    shared = [["optim.lr=2e-3"], ["data.batch_size=10"], ["trainer.max_epochs=3"], ["optim.warmup_epochs=0.3"],
              ["model.pos.kernel=5"], ["data.val_split=20"]]
    for change in shared:
        cfgs = own_settings(fast_overrides, ["stack=on"])
        cfgs[1] = compose("peg_gap", fast_overrides + SETTINGS + ON_THE_CPU + OWN_SETTINGS[1] + change
                          + ["stack=on", "seed=1"])
        assert stackable_groups(cfgs) == [[0, 2]], change


def initial_weights(cfg) -> dict:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    instantiate(cfg.data)
    return build_model(cfg).state_dict()


@pytest.mark.parametrize("lowering", ["conv", "taps"])  # the PEG as the paper's convolution and as its taps
@pytest.mark.parametrize("accelerator", ["cpu", pytest.param("gpu", marks=cuda)])
def test_under_bf16_autocast_three_stacked_seeds_stay_with_their_separate_runs(accelerator, lowering, fast_overrides):
    # a GPU's default precision, run by the CPU's autocast: the stack's autocast path. bf16 rounds batched products
    # otherwise, and AdamW turns a tiny gradient's rounding into a whole step, so single weights may differ by a
    # step; measured here: losses within 2.2e-4 (steps move them by 1e-2 to 4e-2), and the weights' distance from
    # the separate run 3% of their distance from the initial weights (fp32: 2e-6)
    cfgs = configs("peg_gap", fast_overrides,
                   where=[f"trainer.accelerator={accelerator}", "trainer.precision=bf16-mixed",
                          f"peg_lowering={lowering}"])
    runs = separate(cfgs)
    losses, _, weights, ema = stacked(cfgs)
    for k, (cfg, run) in enumerate(zip(cfgs, runs)):
        assert [step[k] for step in losses] == pytest.approx(run.losses, abs=1e-3)
        init = initial_weights(cfg)
        for got, expected in ((weights[k], run.weights), (ema[k], run.ema)):
            gap = torch.sqrt(sum(((got[n].cpu() - v.cpu()) ** 2).sum() for n, v in expected.items()))
            moved = torch.sqrt(sum(((v.cpu() - init[n]) ** 2).sum() for n, v in expected.items()))
            assert gap < 0.1 * moved, (float(gap), float(moved))


@cuda
@pytest.mark.parametrize("ablation, extra", [("peg", []), ("rope_axial", []), ("peg", ["model.drop_path=0.1"])],
                         ids=["peg", "rope_axial", "peg_drop_path"])
def test_on_a_gpu_in_fp32_three_stacked_seeds_train_as_their_separate_runs(ablation, extra, fast_overrides):
    # the drop-path masks here come from each seed's CUDA generator, as its separate run's do
    cfgs = configs(ablation, fast_overrides, extra, where=["trainer.accelerator=gpu", "trainer.precision=32-true"])
    runs = separate(cfgs)
    losses, _, weights, ema = stacked(cfgs)
    assert_same_training(runs, losses, weights, ema, GPU_TOLERANCE)


@pytest.fixture(scope="module")
def learned_runs(module_fast_overrides):
    cfgs = configs("learned", module_fast_overrides)
    return cfgs, separate(cfgs)


def test_the_comparison_fails_when_clipping_spans_the_stack(learned_runs, monkeypatch):
    # one norm over all three seeds' gradients, as clip_grad_norm_ over the stacked tensors would take it
    def across_the_stack(grads, max_norm):
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp(max=1.0))
        return total.expand(len(SEEDS))
    monkeypatch.setattr(stacked_training, "clip_per_model", across_the_stack)
    cfgs, runs = learned_runs
    losses, _, weights, ema = stacked(cfgs)
    with pytest.raises(AssertionError):
        assert_same_training(runs, losses, weights, ema)


# ---------------------------------------------------------------- a grid with stacking on
def planned_seeds(ablation, overrides, stack, seeds=SEEDS):
    cfgs = [compose(ablation, overrides + SETTINGS + ON_THE_CPU + ["data.eval_sizes=[32,48]", f"stack={stack}",
                                                                   f"seed={s}"]) for s in seeds]
    return [PlannedRun(ablation, s, cfg, run_id(cfg)) for s, cfg in zip(seeds, cfgs)]


def test_stacking_enters_no_run_id_and_is_off_on_a_cpu_unless_asked(fast_overrides):
    auto, on, off = (planned_seeds("peg", fast_overrides, stack) for stack in ("auto", "on", "off"))
    assert [r.run_id for r in auto] == [r.run_id for r in on] == [r.run_id for r in off]
    assert stackable_groups([r.cfg for r in on]) == [[0, 1, 2]] and stackable_groups([r.cfg for r in off]) == []
    assert stackable_groups([r.cfg for r in auto]) == []  # these runs train on the CPU
    on_a_gpu_if_any = compose("peg", fast_overrides + ["stack=auto"])
    assert stacking_on(on_a_gpu_if_any) is torch.cuda.is_available()
    finetuned = compose("interpolated", fast_overrides + ["stack=on"])
    assert why_not_stacked(finetuned) == "fine-tuning at other sizes"


def killed_after_the_first_epoch(train_epochs):
    def train(training, members, first_epoch, max_epochs, per_epoch, after_step=None, after_epoch=None):
        def then_killed(epoch):
            after_epoch(epoch)  # the epoch's curve point and the stack's resume point
            raise Interrupted()
        return train_epochs(training, members, first_epoch, max_epochs, per_epoch, after_step, then_killed)
    return train


@pytest.mark.parametrize("curve", [[], ["data.val_split=20"]], ids=["curve_on_test", "curve_on_validation"])
def test_a_grid_trained_stacked_and_resumed_writes_the_rows_and_checkpoints_of_its_separate_runs(
        curve, tiny_archive, tmp_path, monkeypatch):
    # two seeds (the stack's equality for three is shown above): this is about the runs' files and rows; the
    # learning curve on the test set, or on training images held out (as the CIFAR-10 study's runs have it)
    separate_runs = planned_seeds("peg_gap", fast_overrides_for(tiny_archive, tmp_path / "off") + curve, "off", (0, 1))
    stacked_runs = planned_seeds("peg_gap", fast_overrides_for(tiny_archive, tmp_path / "on") + curve, "on", (0, 1))
    printed = io.StringIO()
    run_planned("separate", separate_runs, out=io.StringIO())
    with monkeypatch.context() as patch:  # the stack is killed after its first epoch, then resumed
        patch.setattr(stacked_runs_lib, "train_epochs", killed_after_the_first_epoch(stacked_runs_lib.train_epochs))
        with pytest.raises(Interrupted):
            run_planned("stacked", stacked_runs, out=io.StringIO())
    assert not finished_rows(stacked_runs[0].cfg.results_dir)
    report = run_planned("stacked", stacked_runs, out=printed)
    assert len(report.trained) == 2 and "stack of 2" in printed.getvalue()
    assert "epoch 1/2" not in printed.getvalue() and "epoch 2/2" in printed.getvalue()  # resumed, not restarted
    assert_rows_as_separate(stacked_runs, separate_runs, {r.run_id: 2 for r in stacked_runs})
    for row in finished_rows(stacked_runs[0].cfg.results_dir):
        assert row["curve_split"] == ("validation" if curve else "test")
    again = run_planned("stacked", stacked_runs, out=io.StringIO())  # every seed has its row: nothing trains
    assert not again.trained and len(again.skipped) == 2


def assert_rows_as_separate(stacked_runs, separate_runs, stacked):
    """The rows, predictions and checkpoints of ``stacked_runs`` are those of ``separate_runs`` (the same runs
    trained one by one); ``stacked``: each run_id's stack size (0: trained alone)."""
    off = {r["run_id"]: r for r in finished_rows(separate_runs[0].cfg.results_dir)}
    on = {r["run_id"]: r for r in finished_rows(stacked_runs[0].cfg.results_dir)}
    assert set(on) == set(off) == {r.run_id for r in separate_runs} == set(stacked)
    for rid, row in on.items():
        alone = off[rid]
        assert row.get("stacked", 0) == stacked[rid] and "stacked" not in alone and row["seed"] == alone["seed"]
        assert row["top1"] == alone["top1"] and row["top1_ema"] == alone["top1_ema"]
        assert row["curve"]["top1"] == alone["curve"]["top1"] and row["curve"]["lr"] == alone["curve"]["lr"]
        assert row["curve"]["train_loss"] == pytest.approx(alone["curve"]["train_loss"], abs=2e-4)
        assert row["images_trained"] == alone["images_trained"] and row["unstable"] == alone["unstable"]
        for key in ("data_identity", "curve_split", "val_top1", "predictions"):  # what the tables pool and judge by
            assert row[key] == alone[key], key
        stored = [predictions.load(r["config"]["results_dir"], rid) for r in (row, alone)]
        assert all((stored[0].predicted[s] == stored[1].predicted[s]).all() for s in stored[1].predicted)
        if stacked[rid]:  # its share of the stack's time
            assert row["wall_seconds"] * stacked[rid] == pytest.approx(row["stack_wall_seconds"], abs=0.02)
        weights, expected = (torch.load(r["checkpoint"], weights_only=False)["state_dict"] for r in (row, alone))
        for name, value in expected.items():
            torch.testing.assert_close(weights[name], value, **TOLERANCE)


# the recipe of scale=cifar, which the settings of the recipe sweep change (grid recipe30)
CIFAR_RECIPE = ["optim.mixup=0.8", "optim.cutmix=1.0", "optim.label_smoothing=0.1", "data.augment=trivialaugment",
                "data.random_erasing=0.25", "model.drop_path=0.1", "data.val_split=20"]


def test_a_sweeps_settings_train_as_one_stack_and_leave_the_rows_of_their_separate_runs(tiny_archive, tmp_path):
    def planned(where, stack):
        overrides = (fast_overrides_for(tiny_archive, tmp_path / where) + SETTINGS + CIFAR_RECIPE + ON_THE_CPU
                     + [f"stack={stack}"])
        runs = plan_grid("recipe30", overrides)
        return [r for r in runs if r.setting in ("nomix", "recipe", "nomix_lr2e-3", "crop_flip")]
    separate_runs, stacked_runs = planned("off", "off"), planned("on", "on")
    run_planned("separate", separate_runs, out=io.StringIO())
    printed = io.StringIO()
    report = run_planned("sweep", stacked_runs, out=printed)
    assert len(report.trained) == 4, printed.getvalue()
    assert "stack of 3: peg_gap (nomix) seed=0" in printed.getvalue()  # the lr is shared by a stack: not that one
    alone = {r.run_id: 0 if r.setting == "nomix_lr2e-3" else 3 for r in stacked_runs}
    assert_rows_as_separate(stacked_runs, separate_runs, alone)


# ---------------------------------------------------------------- a compiled stack in a grid
def stand_in_compiler(scale):
    """``torch.compile`` stood in by a compiler that returns the function as it is (faithful) or scales its losses
    (wrong): what a study does with a compiled stack, without dynamo's minutes on a CPU (the real compile: below)."""
    def compile(fn, **settings):
        return fn if scale == 1 else (lambda *args: fn(*args) * scale)
    return compile


@pytest.mark.parametrize("scale", [1, 1.03], ids=["faithful", "wrong"])
def test_a_compiled_stack_is_checked_on_its_mixed_batches_and_a_wrong_one_trains_eager_and_resumes_eager(
        scale, tiny_archive, tmp_path, monkeypatch):
    mixed = fast_overrides_for(tiny_archive, tmp_path / "eager") + MIXING
    eager = planned_seeds("peg_gap", mixed, "on", (0, 1))
    run_planned("eager", eager, out=io.StringIO())
    compiled = planned_seeds("peg_gap", fast_overrides_for(tiny_archive, tmp_path / "compiled") + MIXING
                             + ["compile=true"], "on", (0, 1))
    assert [r.run_id for r in compiled] == [r.run_id for r in eager]  # how a run is trained enters no run_id
    printed = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(torch, "compile", stand_in_compiler(scale))
        patch.setattr(stacked_runs_lib, "train_epochs", killed_after_the_first_epoch(stacked_runs_lib.train_epochs))
        with pytest.raises(Interrupted):
            run_planned("compiled", compiled, out=printed)
        patch.undo()
        patch.setattr(torch, "compile", stand_in_compiler(scale))
        run_planned("compiled", compiled, out=printed)
    said = printed.getvalue()
    if scale == 1:
        assert said.count("compile check passed: the compiled stack agrees with the eager stack on 3 batches") == 2
    else:  # failed once, before the first step; resumed, the stack goes on eager without a new check
        assert said.count("compile check FAILED, training the stack eager instead: ") == 2
        assert "eager instead: batch 1: loss off by" in said
        assert "eager instead: as checked before the resume point: batch 1: loss off by" in said
    before = {r["run_id"]: r for r in finished_rows(eager[0].cfg.results_dir)}
    for row in finished_rows(compiled[0].cfg.results_dir):
        assert row["compiled"] is (scale == 1) and row["compile_check"]["passed"] is (scale == 1)
        assert row["compile_check"]["batches"] == 3 and row["compile_check"]["precision"] == "32-true"
        assert torch.load(row["checkpoint"], weights_only=False)["compile_check"] == row["compile_check"]
        # the check read the seeds' batches and drew their Mixup from copies: each trained as the eager stack did
        assert row["top1"] == before[row["run_id"]]["top1"]
        assert row["curve"]["train_loss"] == before[row["run_id"]]["curve"]["train_loss"]
    assert len(finished_rows(compiled[0].cfg.results_dir)) == 2


# ---------------------------------------------------------------- the bench's compiled stack
@pytest.mark.slow  # two compilations of a 12-block stack: a minute or two on a CPU
@pytest.mark.usefixtures("fresh_dynamo")
def test_the_compiled_stack_is_checked_against_the_eager_stack_and_a_wrong_one_fails():
    def scaled_outputs(graph, example_inputs):  # a wrong compiler: every output 3% too large
        def run(*args):
            out = graph.forward(*args)
            return [o * 1.03 for o in out] if isinstance(out, (tuple, list)) else out * 1.03
        return run

    def stack():
        cfg = compose("peg", ["scale=smoke", "data.batch_size=4", "model.drop_path=0.1"])
        models = []
        for seed in range(3):
            torch.manual_seed(seed)
            models.append(build_model(cfg))
        generators = [torch.Generator().manual_seed(s) for s in range(3)]
        return StackedTraining(models, generators, cfg, 4, 10, 1, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(3)]
    verdicts = []
    for backend in ("aot_eager", scaled_outputs):
        training = stack()
        streams = [gen.get_state() for gen in training.generators]
        training.compile(backend=backend)
        verdicts.append(check_stacked_compiled(training, [batches]))
        assert all(torch.equal(s, gen.get_state()) for s, gen in zip(streams, training.generators))
        assert all(p.grad is None for p in training.params.values())
    assert verdicts[0].passed, verdicts[0].reason
    assert not verdicts[1].passed and verdicts[1].reason.startswith("batch 1: loss off by")
