"""Training throughput against a plain timm ViT, measured in one process.

``python -m cpvt_lab.bench [ablations=[peg,learned,...]] [json=FILE] [steps=N] [warmup=N]
[synthetic=true] [end_to_end=false] [grid_epochs=N] [stack=K] [profile=N] [other_lowering=BOOL] [KEY=VALUE...]``

Four measurements, on the run configs that ``cpvt_lab.compose`` builds:

(a) a plain timm ``VisionTransformer`` train step with the same geometry and batch,
    eager and (when ``compile=true``) compiled;
(b) our model's train step for each named ablation, same harness;
(c) our end-to-end training through Lightning with the real data path (the CIFAR
    JPEG copy held in memory, or ``synthetic=true`` images of the same shape); for the
    first ablation a second time with per-image augmentation on (``AUGMENTED``), or off
    (``PLAIN``) when its config has it. ``end_to_end=false`` leaves (c) out;
(s) with ``stack=K`` (3 by default, 0 = off): K seeds of each ablation trained as one stacked network
    (``cpvt_lab.stacked``), one step for all (compiled and checked first when ``compile=true``); its images/s
    counts every seed's images, beside (b);
(l) with ``other_lowering=true`` (on a GPU by default, off on a CPU), after (b), (s) and (c) of every ablation: the
    step (b) once more with the PEG's other ``peg_lowering`` (``ours_step[peg,taps]``), for each ablation whose
    network has a depth-wise PEG convolution to lower (``models.lowering``, docs/compile.md);
(d) with ``grid_epochs=N`` (3 on a GPU, 0 = off on a CPU): the first three ablations trained N
    epochs each, back to back, as real runs, timed whole: the grid's effective images/s
    (everything included) and its ratio to (c)'s rate for the first ablation;
(e) with ``grid_epochs=N`` and ``stack=K``: the first ablation's K seeds trained N epochs as one stack
    (``stack=on``), as a study trains them: its training images/s (every seed's images over the stack's
    training time) and its effective images/s (everything included), each over (c)'s single run.

Each prints images/s, peak memory, the training FLOPs per image (forward and
backward, counted by ``torch.utils.flop_counter``) and the implied TFLOP/s, then
the ratios (b)/(a), (c)/(a) and augmented (c) over plain (c), and on a known GPU the model FLOP
utilisation (of its dense bf16 peak). Warm-up steps (and any compilation in them) are
timed apart and excluded. ``json=FILE`` also writes the figures to FILE, rewritten after every
measurement. ``steps`` timed steps follow ``warmup`` untimed ones (8 and 2 on a CPU, 50 and 10 on a GPU).
With ``profile=N`` (5 on a GPU, 0 = off on a CPU) N more steps of (a) and (b) are profiled (``bench.kernels``): each
step's costliest kernels, and the kernels in which each ablation's step spends more than the baseline's and than
``learned``'s (why one encoding's compiled step is slower than another's).
Every other KEY=VALUE is a run-config override (``batch_size=`` is short for ``data.batch_size=``), after the
device's defaults (``provenance.device_defaults``): on a CPU the smoke model, eager, few steps; on a GPU ViT-Ti/4 at
batch 1024, bf16 autocast, compiled. The (d) grid runs through the study runner, as ``python -m cpvt_lab.grid``.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import torch
from hydra.errors import HydraException

from ..cli import UsageError, names_option, parse_words, run_command
from ..compiled.guard import compile_in_place
from ..config import ConfigError, build_model, compose
from ..data import DataError
from ..data.archive import locate_jpeg_archive
from ..models.lowering import LOWERINGS, lowers
from ..provenance import device_defaults, now, stamp
from ..validation import validate
from .end_to_end import augmentation_on, measure_end_to_end
from .grid_timing import time_grid
from .measurement import Measurement
from .report import format_report, ratios
from .stacked_step import measure_stacked_step
from .steps import compile_as_timm_users_do, measure_step, timm_baseline

ALIASES = {"batch_size": "data.batch_size"}  # the bench's own short names for run-config keys
# what augmentation costs end to end: the first ablation is timed end to end a second time, with
# TrivialAugment-Wide and DeiT's random erasing on the device's batches if its config has none, without
# them if it has (scale=cifar's recipe does)
AUGMENTED = ("data.augment=trivialaugment", "data.random_erasing=0.25")
PLAIN = ("data.augment=null", "data.random_erasing=0.0")
OTHER_LOWERING = dict(zip(LOWERINGS, reversed(LOWERINGS)))  # conv <-> taps


def has_lowerable_peg(cfg) -> bool:
    """Whether the network of ``cfg`` has a PEG convolution that the lowerings compute differently."""
    with torch.device("meta"):
        return any(lowers(m) for m in build_model(cfg).pos_encoding.modules())


def options(cuda: bool) -> dict:
    """The bench's own words and their defaults, some of which depend on the device."""
    return {"ablations": ["peg"], "json": "", "steps": 50 if cuda else 8, "warmup": 10 if cuda else 2,
            "synthetic": False, "end_to_end": True, "grid_epochs": 3 if cuda else 0, "stack": 3,
            "profile": 5 if cuda else 0, "other_lowering": cuda}


def with_device_defaults(overrides: Sequence[str], cuda: bool) -> list[str]:
    """The run-config overrides after the device's defaults, the bench's short names spelt out."""
    return [*device_defaults(cuda),
            *(f"{ALIASES.get(key, key)}={value}" for key, _, value in (o.partition("=") for o in overrides))]


def run_bench(ablations: Sequence[str], overrides: Sequence[str], steps: int, warmup: int,
              synthetic: bool = False, end_to_end: bool = True, json_path: Optional[Path] = None,
              grid_epochs: int = 0, stack: int = 0, profile: int = 0, other_lowering: bool = False) -> dict:
    """Compose, check and measure; returns the report.

    ``json_path`` is rewritten after every measurement, so a run cut short (a
    time limit on a GPU slot) keeps what it measured. The first ablation is
    measured completely (eager step, step, end to end) before the next begins.
    """
    configs = [compose(a, overrides) for a in ablations]  # every config is checked before any timing
    relowered = [compose(c.ablation_name, [*overrides, f"peg_lowering={OTHER_LOWERING[c.peg_lowering]}"])
                 for c in configs if other_lowering and has_lowerable_peg(c)]
    other, other_label = None, None
    if "augment" in configs[0].data:  # ImageFolder augments in its workers, its own way
        on = augmentation_on(configs[0])
        other = compose(ablations[0], [*overrides, *(PLAIN if on else AUGMENTED)])
        other_label = "end_to_end_plain" if on else "end_to_end_augmented"
    for cfg in [*configs, *relowered, *([other] if other is not None else [])]:
        validate(cfg)
    if end_to_end and not synthetic and configs[0].data._target_.endswith("Cifar10JpegDataModule"):
        locate_jpeg_archive(configs[0].data.archive)  # a missing archive fails here, not after minutes
    cfg = configs[0]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    measurements: list[Measurement] = []
    baseline = "timm_compiled" if cfg.compile else "timm_eager"
    report = {
        **stamp(device),
        "settings": {"device_kind": device.type, "ablations": list(ablations), "model_size": cfg.model.size,
                     "batch_size": cfg.data.batch_size, "train_size": cfg.data.train_size,
                     "precision": cfg.trainer.precision, "compile": bool(cfg.compile), "steps": steps,
                     "warmup": warmup, "stack": stack, "profile": profile, "other_lowering": other_lowering,
                     "end_to_end_data": "synthetic" if synthetic else "run config data",
                     "overrides": list(overrides)},
        "baseline": baseline,
    }

    def record(m: Measurement) -> Measurement:
        measurements.append(m)
        print(f"measured {m.name}: {m.images_per_second:,.0f} images/s ({m.warmup_seconds:.1f} s warm-up)",
              flush=True)
        report.update(
            measurements=[asdict(x) for x in measurements],
            ratios=ratios(measurements, baseline) if baseline in {x.name for x in measurements} else {},
            load_average=[round(x, 2) for x in os.getloadavg()],  # 1, 5, 15 min: other work skews timings
            finished_at=now())
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2) + "\n")
        return m

    record(measure_step("timm_eager", "plain timm VisionTransformer train step", timm_baseline(cfg), cfg, device,
                        steps, warmup, profile_steps=0 if cfg.compile else profile))
    if cfg.compile:
        record(measure_step("timm_compiled", "plain timm VisionTransformer train step, compiled",
                            timm_baseline(cfg), cfg, device, steps, warmup, compile_as_timm_users_do,
                            profile_steps=profile))
    for c in configs:
        if c.compile:  # eager too, so that a planner can weigh compile time against speed
            record(measure_step(f"ours_eager[{c.ablation_name}]", "our model's train step, eager", build_model(c),
                                c, device, steps, warmup, ablation=c.ablation_name, profile_steps=profile))
        step = record(measure_step(f"ours_step[{c.ablation_name}]", "our model's train step", build_model(c), c,
                                   device, steps, warmup, compile_in_place if c.compile else None,
                                   ablation=c.ablation_name, profile_steps=profile))
        if stack:  # the same network K times, so the same FLOPs per image
            record(measure_stacked_step(c, device, stack, steps, warmup, step.flops_per_image))
        if end_to_end:  # the same network as the step, so the same FLOPs per image
            record(measure_end_to_end(c, device, steps, warmup, synthetic, step.flops_per_image))
            if c is cfg and other is not None:
                record(measure_end_to_end(other, device, steps, warmup, synthetic, step.flops_per_image,
                                          label=other_label))
    for c in relowered:  # after every ablation's own measurements: a job cut short loses this one first
        record(measure_step(f"ours_step[{c.ablation_name},{c.peg_lowering}]",
                            f"our model's train step, peg_lowering={c.peg_lowering}", build_model(c), c, device, steps,
                            warmup, compile_in_place if c.compile else None, ablation=c.ablation_name,
                            profile_steps=profile))
    if grid_epochs:
        grid = time_grid(ablations[:3], overrides, grid_epochs)
        single = next((m for m in measurements if m.name == f"end_to_end[{ablations[0]}]"), None)
        grid["over_single_run_end_to_end"] = (round(grid["effective_images_per_second"] / single.images_per_second, 4)
                                              if single else None)
        report["grid"] = grid
        print(f"measured grid of {grid['runs']} runs x {grid_epochs} epochs: {grid['effective_images_per_second']:,.0f} "
              f"images/s in all ({grid['wall_seconds']} s wall)", flush=True)
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2) + "\n")
        if stack:
            report["stacked_grid"] = stacked = time_grid(
                ablations[:1], [*overrides, "stack=on"], grid_epochs, range(cfg.seed, cfg.seed + stack))
            for key, rate in (("over_single_run_end_to_end", "training_images_per_second"),
                              ("effective_over_single_run_end_to_end", "effective_images_per_second")):
                stacked[key] = round(stacked[rate] / single.images_per_second, 4) if single and stacked[rate] else None
            print(f"measured stack of {stack} {ablations[0]} seeds x {grid_epochs} epochs: "
                  f"{stacked['training_images_per_second'] or 0:,.0f} images/s training, "
                  f"{stacked['effective_images_per_second']:,.0f} in all ({stacked['wall_seconds']} s wall); "
                  f"over the single run end to end: {stacked['over_single_run_end_to_end']}", flush=True)
            if json_path is not None:
                json_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    def bench(argv: list[str]) -> None:
        logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # the report is the output
        warnings.filterwarnings("ignore", module="pytorch_lightning")
        cuda = torch.cuda.is_available()
        args, overrides = parse_words(argv, options(cuda))
        for key in ("steps", "warmup"):
            if args[key] < 1:
                raise UsageError(key, f"must be >= 1, got {args[key]}")
        if args["profile"] < 0:
            raise UsageError("profile", f"must be >= 0 (0: no profile), got {args['profile']}")
        json_path = Path(args["json"]) if args["json"] else None
        if json_path is not None and not json_path.parent.exists():
            raise UsageError("json", f"folder {json_path.parent} does not exist")
        ablations = names_option(args["ablations"], "ablations")
        if args["stack"] < 0 or args["stack"] == 1:
            raise UsageError("stack", f"must be 0 (no stacked measurement) or at least 2 seeds, got {args['stack']}")
        if args["grid_epochs"] < 0:
            raise UsageError("grid_epochs", f"must be >= 0 (0: no grid timing), got {args['grid_epochs']}")
        report = run_bench(ablations, with_device_defaults(overrides, cuda), args["steps"], args["warmup"],
                           args["synthetic"], args["end_to_end"], json_path, args["grid_epochs"],
                           args["stack"], args["profile"], args["other_lowering"])
        print(format_report(report))
        if json_path is not None:
            print(f"written to {json_path}")

    return run_command(bench, __doc__, argv, errors=(ConfigError, DataError, HydraException))


if __name__ == "__main__":
    sys.exit(main())
