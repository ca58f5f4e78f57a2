"""The throughput bench: its pieces on the smoke model, its report and its errors (no timing assertions)."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from cpvt_lab import compose
from cpvt_lab.bench.command import main, options, with_device_defaults
from cpvt_lab.bench.end_to_end import SyntheticData
from cpvt_lab.bench.kernels import extra_time, kernel_name, time_by_kernel
from cpvt_lab.bench.measurement import Measurement, time_loop
from cpvt_lab.bench.report import format_report, ratios
from cpvt_lab.bench.steps import measure_step, timm_baseline, train_flops_per_image
from cpvt_lab.cli import UsageError, parse_words
from cpvt_lab.compiled.guard import compile_in_place
from cpvt_lab.config import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


def flops(model):
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return train_flops_per_image(model, images, torch.tensor([0, 1]))


def test_flop_count_is_positive_equal_for_identical_models_and_counts_extra_work():
    cfg = compose("learned", ["scale=smoke"])
    timm_flops = flops(timm_baseline(cfg))
    assert timm_flops > 0
    # our learned-table model does exactly the plain timm ViT's arithmetic; a PEG adds a convolution
    assert flops(build_model(cfg)) == timm_flops
    peg = build_model(compose("peg", ["scale=smoke"]))
    before = {k: v.clone() for k, v in peg.state_dict().items()}
    assert flops(peg) > timm_flops
    # counted on a copy: the model keeps its weights, has no gradients, keeps its fused attention
    assert all(torch.equal(before[k], v) for k, v in peg.state_dict().items())
    assert all(p.grad is None for p in peg.parameters()) and all(b.attn.fused_attn for b in peg.blocks)


def measurement(name, images, seconds):
    return Measurement(name, "", images, seconds, 0.0, 1e9, None)


def test_ratios_divide_images_per_second_by_the_baseline_and_by_learned():
    ms = [measurement("timm_compiled", 1000, 1.0), measurement("ours_step[learned]", 900, 1.0),
          measurement("ours_step[peg]", 450, 0.5), measurement("end_to_end[peg]", 800, 2.0)]
    assert ms[2].images_per_second == 900 and ms[0].tflops_per_second == pytest.approx(1.0)
    r = ratios(ms, "timm_compiled")
    assert r == {"ours_step[learned]/timm_compiled": 0.9, "ours_step[peg]/timm_compiled": 0.9,
                 "end_to_end[peg]/timm_compiled": 0.4, "ours_step[peg]/ours_step[learned]": 1.0}


def test_time_loop_runs_the_warmup_then_the_timed_steps():
    calls = []
    seconds, warmup_seconds = time_loop(lambda: calls.append(1), steps=3, warmup=2, device=torch.device("cpu"))
    assert len(calls) == 5 and seconds >= 0 and warmup_seconds >= 0


def test_overrides_keep_the_device_defaults_first_and_the_ablations_are_the_bench_own_word():
    args, overrides = parse_words(["ablations=[peg,learned]", "batch_size=8", "model.size=vit_ti4", "steps=3"],
                                  options(cuda=False))
    assert (args["ablations"], args["steps"], args["warmup"]) == (["peg", "learned"], 3, 2)
    assert parse_words(["ablation=peg,learned"], options(cuda=False))[0]["ablations"] == "peg,learned"  # old name
    rest = with_device_defaults(overrides, cuda=False)
    assert rest[0] == "scale=smoke" and rest[-2:] == ["data.batch_size=8", "model.size=vit_ti4"]
    assert {"scale=cifar", "data.batch_size=1024", "compile=true"} <= set(with_device_defaults([], cuda=True))
    assert options(cuda=True)["steps"] == 50
    with pytest.raises(UsageError):
        parse_words(["compile"], options(cuda=False))


def test_synthetic_data_feeds_the_same_batches_as_the_archive():
    data = SyntheticData.from_config(compose("peg", ["scale=smoke", "data.batch_size=8"]).data, num_images=40)
    data.setup()
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.max() < 10
    assert len(data.train_dataloader()) == 5


def test_the_bench_reports_every_measurement_and_writes_json(tiny_archive, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["ablations=[peg,learned]", "data.batch_size=4", f"data.archive={tiny_archive}",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.subset=null", "data.test_subset=null",
                 "steps=2", "warmup=1", "profile=1", "other_lowering=true", f"json={out}"])
    assert code == 0
    report = json.loads(out.read_text())
    names = [m["name"] for m in report["measurements"]]
    # the first ablation completely, then the next, then the PEG's step under its other lowering
    assert names == ["timm_eager", "ours_step[peg]", "stacked[peg]", "end_to_end[peg]", "end_to_end_augmented[peg]",
                     "ours_step[learned]", "stacked[learned]", "end_to_end[learned]", "ours_step[peg,taps]"]
    by_name = {m["name"]: m for m in report["measurements"]}
    assert all(m["images_per_second"] > 0 and m["flops_per_image"] > 0 for m in by_name.values())
    assert by_name["end_to_end[peg]"]["images"] == 8 and by_name["end_to_end[peg]"]["checkpoint_seconds"] > 0
    assert by_name["ours_step[peg]"]["flops_per_image"] == by_name["end_to_end[peg]"]["flops_per_image"]
    assert report["baseline"] == "timm_eager" and report["settings"]["device_kind"] == "cpu"
    assert set(report["ratios"]) == {f"{n}/timm_eager" for n in names[1:]} | {
        "ours_step[peg]/ours_step[learned]", "end_to_end[peg]/end_to_end[learned]",
        "end_to_end_augmented[peg]/end_to_end[peg]", "stacked[peg]/ours_step[peg]",
        "stacked[learned]/ours_step[learned]", "stacked[peg]/stacked[learned]",
        "ours_step[peg,taps]/ours_step[peg]", "ours_step[peg,taps]/ours_step[learned]"}
    assert by_name["stacked[peg]"]["images"] == 3 * 4 * 2  # three seeds' batches of 4, two timed steps
    assert "trivialaugment" in by_name["end_to_end_augmented[peg]"]["what"]
    ratio = by_name["end_to_end[peg]"]["images_per_second"] / by_name["timm_eager"]["images_per_second"]
    assert report["ratios"]["end_to_end[peg]/timm_eager"] == pytest.approx(ratio, abs=1e-4)
    printed = capsys.readouterr().out
    assert "end_to_end[peg]/timm_eager" in printed and "images/s" in printed
    # the steps of (a) and (b) profiled: what peg's step spends beyond timm's and beyond learned's
    assert {n for n, m in by_name.items() if m["kernels"]} == {"timm_eager", "ours_step[peg]", "ours_step[learned]",
                                                              "ours_step[peg,taps]"}
    assert "ours_step[peg,taps] over ours_step[learned]:" in printed
    # one network, one count: the counter sees no pointwise taps, so both lowerings are counted as convolutions
    assert by_name["ours_step[peg,taps]"]["flops_per_image"] == by_name["ours_step[peg]"]["flops_per_image"]
    assert "ours_step[peg] over ours_step[learned]:" in printed and "ours_step[peg] over timm_eager:" in printed


@pytest.mark.parametrize("args, message", [
    (["ablation=no_such_thing"], "unknown ablation"),
    (["model.size=huge"], "model.size"),
    (["model.kernel=3"], "model.kernel"),
    (["json=/no/such/folder/bench.json"], "json:"),
    (["data.archive=/no/such/archive.tar.gz"], "not found"),
    (["steps=0"], "steps:"),
    (["stack=1"], "stack:"),
    (["profile=-1"], "profile:"),
    (["steps=many"], "steps:"),
    (["synthetic=maybe"], "synthetic:"),
    (["--steps", "2"], "--steps:"),
])
def test_bad_input_exits_2_with_a_message_before_any_timing(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr()
    assert message in err.err and "images/s" not in err.out


def test_a_config_with_augmentation_is_timed_again_without_it(tiny_archive, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["ablations=[peg]", "data.batch_size=4", f"data.archive={tiny_archive}", "data.augment=trivialaugment",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.subset=null", "data.test_subset=null",
                 "steps=2", "warmup=1", f"json={out}"]) == 0
    report = json.loads(out.read_text())
    names = [m["name"] for m in report["measurements"]]
    assert names[-2:] == ["end_to_end[peg]", "end_to_end_plain[peg]"]
    assert "end_to_end[peg]/end_to_end_plain[peg]" in report["ratios"]
    assert "trivialaugment" in report["measurements"][-2]["what"] and "trivialaugment" not in report["measurements"][-1]["what"]


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_a_short_grid_is_timed_whole_beside_the_single_run(tiny_archive, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["ablations=[peg,none]", "data.batch_size=4", f"data.archive={tiny_archive}", "grid_epochs=1",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.subset=null", "data.test_subset=null",
                 "steps=2", "warmup=1", f"json={out}"]) == 0
    grid, printed = json.loads(out.read_text())["grid"], capsys.readouterr().out
    assert grid["runs"] == 2 and grid["ablations"] == ["peg", "none"] and grid["epochs"] == 1
    assert grid["images"] == 2 * 120 and grid["wall_seconds"] > 0  # 120 tiny images, full batches of 4
    assert grid["over_single_run_end_to_end"] > 0 and "grid: 2 runs x 1 epochs" in printed
    assert not list(tmp_path.glob("**/runs.jsonl"))  # its rows were written to a scratch folder
    stacked = json.loads(out.read_text())["stacked_grid"]  # stack=3, the default: peg's seeds 0-2 as one stack
    assert stacked["ablations"] == ["peg"] and stacked["seeds"] == [0, 1, 2] and stacked["stacked"] == [3, 3, 3]
    assert stacked["images"] == 3 * 120 and stacked["over_single_run_end_to_end"] > 0
    assert "stack: 3 seeds of peg x 1 epochs as one stack" in printed


def test_bad_grid_epochs_is_refused(capsys):
    assert main(["grid_epochs=-1"]) == 2 and "grid_epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_the_gpu_check_dry_run_leaves_its_files_in_out(tiny_archive, tmp_path):
    import os
    import subprocess

    from cpvt_lab.provenance import REPO_ROOT

    env = {**os.environ, "ARCHIVE": str(tiny_archive), "CPVT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "OUT": str(tmp_path / "OUT"), "GPU_CHECK_DRY": "1"}
    out = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "gpu_check.sh")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    assert {"gpu_check.log", "bench.json"} <= {p.name for p in (tmp_path / "OUT").iterdir()}
    assert "ours_step[peg]/timm_eager" in (tmp_path / "OUT" / "gpu_check.log").read_text()


def test_a_failed_compile_check_says_that_the_compiled_step_was_timed(monkeypatch):
    # the bench times the step it checked whatever the verdict: the report must not call that rate eager's
    def scaled_outputs(graph, example_inputs):  # a wrong compiler (every output 3% too large): the check fails
        def run(*args):
            out = graph.forward(*args)
            return [o * 1.03 for o in out] if isinstance(out, (tuple, list)) else out * 1.03
        return run
    torch._dynamo.reset()
    cfg = compose("learned", ["scale=smoke", "data.batch_size=4"])
    m = measure_step("timm_compiled", "timm, compiled", timm_baseline(cfg), cfg, torch.device("cpu"), 1, 1,
                     lambda model: compile_in_place(model, backend=scaled_outputs))
    torch._dynamo.reset()
    report = {"device": "cpu", "baseline": "timm_compiled", "ratios": {}, "measurements": [asdict(m)],
              "load_average": [0.0], "settings": {"model_size": "smoke", "batch_size": 4, "train_size": 32,
                                                  "precision": "32-true", "compile": True, "steps": 1,
                                                  "warmup": 1, "device_kind": "cpu"}}
    line = next(s for s in format_report(report).splitlines() if "compile check" in s)
    assert m.compiled and not m.compile_check["passed"]
    assert "timed eager" not in line and "the rate above is of the compiled step" in line
    assert f"compiled and checked in {m.compile_check['seconds']:.1f} s" in line  # the compile time, said apart


def test_the_profile_names_the_kernels_a_step_spends_its_time_in_and_what_one_step_adds_over_another():
    weight, images = torch.randn(64, 64), torch.randn(256, 64)
    conv, grid = torch.nn.Conv2d(16, 16, 3, padding=1), torch.randn(32, 16, 16, 16)
    plain = time_by_kernel(lambda: images @ weight, 2, torch.device("cpu"))
    with_conv = time_by_kernel(lambda: (images @ weight, conv(grid)), 2, torch.device("cpu"))
    assert plain[0]["name"] == "(all)" and "aten::mm" in [k["name"] for k in plain]
    assert plain[0]["ms_per_step"] >= sum(k["ms_per_step"] for k in plain[1:]) - 1e-4 * len(plain)  # each rounded
    assert all(0 < k["share"] <= 1 for k in with_conv)
    assert any("conv" in name for name, _ in extra_time(with_conv, plain))


def test_extra_time_lists_only_the_kernels_that_cost_more_most_first():
    faster = [{"name": "(all)", "ms_per_step": 3.0}, {"name": "mm", "ms_per_step": 2.0},
              {"name": "cat", "ms_per_step": 1.0}]
    slower = [{"name": "(all)", "ms_per_step": 5.5}, {"name": "mm", "ms_per_step": 2.5},
              {"name": "conv", "ms_per_step": 2.0}, {"name": "cat", "ms_per_step": 1.0}]
    assert extra_time(slower, faster) == [("conv", 2.0), ("mm", 0.5)]


def test_kernel_names_drop_what_differs_between_two_compilations_of_one_computation():
    assert kernel_name("## Call CompiledFxGraph f2hkoq7fsj62j47 ##") == "## Call CompiledFxGraph ##"
    assert kernel_name("triton_per_fused_native_layer_norm_12") == "triton_per_fused_native_layer_norm"
    assert kernel_name("aten::convolution_backward") == "aten::convolution_backward"
