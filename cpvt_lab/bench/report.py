"""A bench report's ratios (images/s over the baseline's) and its printed table."""
from __future__ import annotations

from typing import Sequence

from .kernels import extra_time
from .measurement import Measurement


def ratios(measurements: Sequence[Measurement], baseline: str) -> dict[str, float]:
    """images/s of every other measurement over the baseline's, of each ablation over ``learned``, and of
    end to end with augmentation over without."""
    by_name = {m.name: m for m in measurements}
    base = by_name[baseline].images_per_second
    out = {f"{m.name}/{baseline}": m.images_per_second / base for m in measurements if m.name != baseline}
    for m in measurements:  # K seeds stacked over one seed's step
        if m.name.startswith("stacked[") and (single := by_name.get(m.name.replace("stacked[", "ours_step["))):
            out[f"{m.name}/{single.name}"] = m.images_per_second / single.images_per_second
    for m in measurements:  # a step under the PEG's other lowering over the same ablation's own step
        if m.name.startswith("ours_step[") and "," in m.name and (own := by_name.get(m.name.split(",")[0] + "]")):
            out[f"{m.name}/{own.name}"] = m.images_per_second / own.images_per_second
    for kind in ("ours_step", "stacked", "end_to_end"):
        ref = by_name.get(f"{kind}[learned]")
        for m in measurements:
            if ref is not None and m.name.startswith(f"{kind}[") and m is not ref:
                out[f"{m.name}/{ref.name}"] = m.images_per_second / ref.images_per_second
    for m in measurements:  # augmented over plain, whichever of the two the run config is
        if m.name.startswith("end_to_end_augmented[") and (plain := by_name.get(
                m.name.replace("end_to_end_augmented[", "end_to_end["))):
            out[f"{m.name}/{plain.name}"] = m.images_per_second / plain.images_per_second
        if m.name.startswith("end_to_end_plain[") and (augmented := by_name.get(
                m.name.replace("end_to_end_plain[", "end_to_end["))):
            out[f"{augmented.name}/{m.name}"] = augmented.images_per_second / m.images_per_second
    return {k: round(v, 4) for k, v in out.items()}


def verdict_said(measurement: dict, check: dict) -> str:
    """A compile check's verdict with what was timed: the bench times the step it checked, compiled, whatever
    the verdict (a run whose check fails trains eager, so its rate would be the eager step's)."""
    if check["passed"]:
        return "passed"
    timed = "compiled" if measurement["compiled"] else "eager"
    return f"FAILED ({check['reason']}; the rate above is of the {timed} step all the same, a run would train eager)"


def kernel_lines(measurements: Sequence[dict], baseline: str) -> list[str]:
    """Each profiled step's costliest kernels, then what each of our steps spends beyond ``learned``'s step of
    its kind (eager or as run), and our run steps beyond the baseline's, kernel by kernel."""
    profiled = {m["name"]: m["kernels"] for m in measurements if m.get("kernels")}
    lines = [f"{name}: {kernels[0]['ms_per_step']:.2f} ms of kernel time a step, costliest: "
             + "; ".join(f"{k['name']} {k['ms_per_step']:.2f} ({k['share']:.0%})" for k in kernels[1:6])
             for name, kernels in profiled.items()]
    for name, kernels in profiled.items():
        kind = name.split("[")[0]
        for ref in (baseline if kind == "ours_step" else None, f"{kind}[learned]"):
            if ref == name or ref not in profiled or not name.startswith("ours_"):
                continue
            extra = extra_time(kernels, profiled[ref])
            lines.append(f"{name} over {ref}: {kernels[0]['ms_per_step'] - profiled[ref][0]['ms_per_step']:+.2f} ms "
                         "a step; more in " + ("; ".join(f"{k} +{ms:.2f}" for k, ms in extra) or "no kernel"))
    return lines


def format_report(report: dict) -> str:
    s = report["settings"]
    lines = [f"bench on {report['device']}: {s['model_size']}, batch {s['batch_size']}, {s['train_size']} px, "
             f"{s['precision']}, compile={s['compile']}, {s['steps']} timed steps after {s['warmup']} warm-up",
             f"{'measurement':<28}{'images/s':>12}{'TFLOP/s':>10}{'GFLOP/img':>11}{'peak MB':>10}{'warm-up s':>11}"]
    for m in report["measurements"]:
        memory = "-" if m["peak_memory_mb"] is None else f"{m['peak_memory_mb']:.0f}"
        lines.append(f"{m['name']:<28}{m['images_per_second']:>12,.0f}{m['tflops_per_second']:>10.3f}"
                     f"{m['flops_per_image'] / 1e9:>11.3f}{memory:>10}{m['warmup_seconds']:>11.1f}")
    lines += [f"{m['name']}: model FLOP utilisation {m['mfu']:.1%} of the device's dense bf16 peak"
              for m in report["measurements"] if m.get("mfu")]
    if grid := report.get("grid"):
        ratio = grid["over_single_run_end_to_end"]
        lines.append(f"grid: {grid['runs']} runs x {grid['epochs']} epochs in {grid['wall_seconds']} s wall, "
                     f"{grid['effective_images_per_second']:,.0f} images/s in all"
                     + (f", {ratio:.3f} of the single run's end-to-end rate" if ratio else ""))
    if stacked := report.get("stacked_grid"):
        ratio = stacked["over_single_run_end_to_end"]
        lines.append(f"stack: {stacked['runs']} seeds of {stacked['ablations'][0]} x {stacked['epochs']} epochs as one "
                     f"stack in {stacked['wall_seconds']} s wall, {stacked['training_images_per_second'] or 0:,.0f} "
                     f"images/s training, {stacked['effective_images_per_second']:,.0f} in all"
                     + (f"; training {ratio:.3f} of the single run's end-to-end rate" if ratio else ""))
    lines += [f"{m['name']}: one checkpoint write takes {m['checkpoint_seconds']:.2f} s"
              for m in report["measurements"] if m["checkpoint_seconds"] is not None]
    lines += [f"{m['name']}: compiled and checked in {c['seconds']:.1f} s (outside the warm-up), compile check "
              f"{verdict_said(m, c)}, worst gradient error {c['grad_error']:.2g} (eager's {c['grad_error_eager']:.2g}, "
              f"{c['worst_parameter']})"
              + (f"; inductor options NOT applied, unknown to this torch: {', '.join(c['options_unknown'])}"
                 if c.get("options_unknown") else "")
              for m in report["measurements"] if (c := m.get("compile_check"))]
    lines += kernel_lines(report["measurements"], report["baseline"])
    lines.append(f"ratios (images/s), baseline {report['baseline']}:")
    lines += [f"  {k:<56}{v:>7.3f}" for k, v in report["ratios"].items()]
    if s["device_kind"] == "cpu":
        lines.append(f"  (peak MB on a CPU is the process's peak resident memory so far; host load average "
                     f"{report['load_average'][0]:.1f} over the last minute)")
    return "\n".join(lines)
