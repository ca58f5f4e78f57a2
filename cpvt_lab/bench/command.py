"""Training throughput against a plain timm ViT, measured in one process.

``python -m cpvt_lab.bench [ablation=peg[,learned,...]] [OVERRIDES...] [--json FILE]``

Three measurements, on the run configs that ``cpvt_lab.compose`` builds:

(a) a plain timm ``VisionTransformer`` train step with the same geometry and batch,
    eager and (when ``compile=true``) compiled;
(b) our model's train step for each named ablation, same harness;
(c) our end-to-end training through Lightning with the real data path (the CIFAR
    JPEG copy held in memory, or ``--synthetic`` images of the same shape); for the
    first ablation a second time with per-image augmentation on (``AUGMENTED``),
    unless the overrides already turn it on.

Each prints images/s, peak memory, the training FLOPs per image (forward and
backward, counted by ``torch.utils.flop_counter``) and the implied TFLOP/s, then
the ratios (b)/(a), (c)/(a) and augmented (c) over plain (c). Warm-up steps (and any compilation in them) are
timed apart and excluded. Defaults: on a CPU the smoke model, eager, few steps;
on a GPU ViT-Ti/4 at batch 1024, bf16 autocast, compiled.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn as nn
from hydra.errors import HydraException
from hydra.utils import instantiate
from timm.models.vision_transformer import VisionTransformer
from timm.optim import create_optimizer_v2
from torch.utils.flop_counter import FlopCounterMode

from ..compile_guard import check_compiled, compile_in_place
from ..config import ConfigError, build_model, compose, validate
from ..data import ArrayDataModule, Arrays, DataError, locate_jpeg_archive
from ..models import SIZES
from ..provenance import device_name, versions
from ..train import make_module

CPU_DEFAULTS = ("scale=smoke", "data.batch_size=64", "compile=false")
GPU_DEFAULTS = ("scale=cifar", "data.batch_size=1024", "compile=true")
ALIASES = {"batch_size": "data.batch_size"}  # the bench's own short names for run-config keys
# what augmentation costs end to end: TrivialAugment-Wide and DeiT's random erasing, on the device's batches
AUGMENTED = ("data.augment=trivialaugment", "data.random_erasing=0.25")


@dataclass
class Measurement:
    """One timed loop: ``images`` trained in ``seconds`` after ``warmup_seconds`` of untimed warm-up."""
    name: str
    what: str
    images: int
    seconds: float
    warmup_seconds: float
    flops_per_image: float
    peak_memory_mb: Optional[float]
    ablation: Optional[str] = None
    compiled: bool = False
    checkpoint_seconds: Optional[float] = None  # end to end only: one write of the run's checkpoint
    compile_check: Optional[dict] = None  # compiled only: the guard's verdict (cpvt_lab.compile_guard)
    images_per_second: float = field(init=False)
    tflops_per_second: float = field(init=False)

    def __post_init__(self):
        self.images_per_second = self.images / self.seconds
        self.tflops_per_second = self.flops_per_image * self.images_per_second / 1e12


# ---------------------------------------------------------------- pieces
def timm_baseline(cfg) -> nn.Module:
    """A plain timm ViT (learned table, class token) with the run's geometry."""
    geometry = {k: v for k, v in SIZES[cfg.model.size].items() if k != "img_size"}
    return VisionTransformer(img_size=cfg.data.train_size, num_classes=cfg.data.num_classes,
                             drop_path_rate=cfg.model.drop_path, **geometry)


def autocast_for(precision: str, device: torch.device):
    """The autocast Lightning's ``precision`` setting would use, or none."""
    if str(precision).startswith("bf16-mixed"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if str(precision).startswith("16-mixed"):
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def train_flops_per_image(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Forward + backward FLOPs of one image, counted on an eager copy.

    The copy lives on the meta device (shapes only, no arithmetic), and its
    attention runs as two matrix products, which every device counts alike.
    """
    probe = copy.deepcopy(model).train().to("meta")
    for module in probe.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(probe(images.to("meta")), labels.to("meta")).backward()
    return counter.get_total_flops() / len(images)


def make_train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str,
                    lr: float = 1e-3) -> Callable[[], None]:
    """forward, loss, backward and AdamW step on a fixed batch, as the LightningModule does it."""
    device = images.device
    optimizer = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=0.05,
                                     **({"fused": True} if device.type == "cuda" else {}))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step():
        with autocast_for(precision, device):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset, or the process's peak resident memory on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def time_loop(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """(timed seconds, warm-up seconds) of ``steps`` calls after ``warmup`` calls.

    CUDA events on a GPU (no host wait inside the loop), perf_counter on a CPU.
    """
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize(device)
    warmup_seconds = time.perf_counter() - started
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000, warmup_seconds
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started, warmup_seconds


def compile_as_timm_users_do(model: nn.Module) -> nn.Module:
    """The baseline: torch.compile's defaults, none of this project's settings."""
    model.compile()
    return model


def measure_step(name: str, what: str, model: nn.Module, cfg, device: torch.device, steps: int, warmup: int,
                 compile_fn: Optional[Callable[[nn.Module], nn.Module]] = None,
                 ablation: Optional[str] = None) -> Measurement:
    """Time the train step of ``model`` (compiled by ``compile_fn`` if given) on a fixed random batch.

    A compiled model is first checked against eager on that batch (which also compiles it, so
    compilation stays out of the warm-up time); the verdict goes beside the speed.
    """
    batch, size = cfg.data.batch_size, cfg.data.train_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    labels = torch.randint(0, cfg.data.num_classes, (batch,), generator=generator).to(device)
    model = model.to(device).train()
    flops = train_flops_per_image(model, images[:2], labels[:2])
    check = None
    if compile_fn is not None:
        check = check_compiled(compile_fn(model), [(images, labels)],
                               lambda: autocast_for(cfg.trainer.precision, device), cfg.trainer.precision).as_dict()
    reset_peak_memory(device)
    seconds, warmup_seconds = time_loop(make_train_step(model, images, labels, cfg.trainer.precision),
                                        steps, warmup, device)
    return Measurement(name, what, batch * steps, seconds, warmup_seconds, flops, peak_memory_mb(device),
                       ablation, compile_fn is not None, compile_check=check)


# ---------------------------------------------------------------- end to end, through Lightning
class WindowTimer(pl.Callback):
    """Times training batches ``warmup`` .. ``warmup + steps - 1``, counted across epochs."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        self.warmup, self.steps, self.device = warmup, steps, device
        self.seen, self.images = 0, 0
        self.fit_started = self.started = self.seconds = self.warmup_seconds = None

    def on_train_start(self, trainer, pl_module):
        self.fit_started = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.seen == self.warmup:
            synchronize(self.device)
            self.started = time.perf_counter()
            self.warmup_seconds = self.started - self.fit_started
            reset_peak_memory(self.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen > self.warmup:
            self.images += len(batch[1])
        if self.seen == self.warmup + self.steps:
            synchronize(self.device)
            self.seconds = time.perf_counter() - self.started


class SyntheticData(ArrayDataModule):
    """The in-memory data path on random uint8 images, for when no archive is at hand."""

    name = "synthetic"

    def __init__(self, num_images: int = 50_000, **kwargs):
        super().__init__(**kwargs)
        self.num_images = num_images

    @classmethod
    def from_config(cls, data_cfg, num_images: int) -> "SyntheticData":
        accepted = inspect.signature(ArrayDataModule.__init__).parameters
        return cls(num_images, **{k: v for k, v in data_cfg.items() if k in accepted})

    def load_arrays(self) -> Arrays:
        rng = np.random.default_rng(0)
        n_test = 10 * self.num_classes

        def images(n):
            return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)

        def labels(n):
            return np.arange(n) % self.num_classes

        return Arrays(images(self.num_images), labels(self.num_images), images(n_test), labels(n_test),
                      [str(c) for c in range(self.num_classes)])

    def describe(self) -> str:
        return "synthetic uint8 images"


def measure_end_to_end(cfg, device: torch.device, steps: int, warmup: int, synthetic: bool,
                       flops_per_image: float, label: str = "end_to_end") -> Measurement:
    """Lightning ``fit`` on the real data module and LightningModule; validation and checkpoints off."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = SyntheticData.from_config(cfg.data, cfg.data.subset or 50_000) if synthetic else instantiate(cfg.data)
    module = make_module(cfg, build_model(cfg), list(cfg.data.eval_sizes))
    timer = WindowTimer(warmup, steps, device)
    trainer = instantiate(cfg.trainer, max_steps=warmup + steps, max_epochs=-1, limit_val_batches=0,
                          num_sanity_val_steps=0, enable_checkpointing=False, logger=False,
                          enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, datamodule=datamodule)
    if timer.seconds is None:
        raise RuntimeError(f"end-to-end run stopped after {timer.seen} of {warmup + steps} batches")
    with tempfile.TemporaryDirectory() as folder:  # what a run pays at each epoch's end
        started = time.perf_counter()
        trainer.save_checkpoint(Path(folder) / "last.ckpt")
        checkpoint_seconds = time.perf_counter() - started
    augmented = f", {cfg.data.augment}, erasing {cfg.data.random_erasing}" if augmentation_on(cfg) else ""
    return Measurement(f"{label}[{cfg.ablation_name}]",
                       f"Lightning fit, {datamodule.describe()}{augmented}, {cfg.trainer.precision}",
                       timer.images, timer.seconds, timer.warmup_seconds, flops_per_image, peak_memory_mb(device),
                       cfg.ablation_name, module.compiled, checkpoint_seconds,
                       module.compile_check.as_dict() if module.compile_check else None)


def augmentation_on(cfg) -> bool:
    return bool(cfg.data.get("augment") or cfg.data.get("random_erasing"))


# ---------------------------------------------------------------- ratios and report
def ratios(measurements: Sequence[Measurement], baseline: str) -> dict[str, float]:
    """images/s of every other measurement over the baseline's, of each ablation over ``learned``, and of
    end to end with augmentation over without."""
    by_name = {m.name: m for m in measurements}
    base = by_name[baseline].images_per_second
    out = {f"{m.name}/{baseline}": m.images_per_second / base for m in measurements if m.name != baseline}
    for kind in ("ours_step", "end_to_end"):
        ref = by_name.get(f"{kind}[learned]")
        for m in measurements:
            if ref is not None and m.name.startswith(f"{kind}[") and m is not ref:
                out[f"{m.name}/{ref.name}"] = m.images_per_second / ref.images_per_second
    for m in measurements:
        plain = by_name.get(m.name.replace("end_to_end_augmented[", "end_to_end["))
        if m.name.startswith("end_to_end_augmented[") and plain is not None:
            out[f"{m.name}/{plain.name}"] = m.images_per_second / plain.images_per_second
    return {k: round(v, 4) for k, v in out.items()}


def format_report(report: dict) -> str:
    s = report["settings"]
    lines = [f"bench on {report['device']}: {s['model_size']}, batch {s['batch_size']}, {s['train_size']} px, "
             f"{s['precision']}, compile={s['compile']}, {s['steps']} timed steps after {s['warmup']} warm-up",
             f"{'measurement':<28}{'images/s':>12}{'TFLOP/s':>10}{'GFLOP/img':>11}{'peak MB':>10}{'warm-up s':>11}"]
    for m in report["measurements"]:
        memory = "-" if m["peak_memory_mb"] is None else f"{m['peak_memory_mb']:.0f}"
        lines.append(f"{m['name']:<28}{m['images_per_second']:>12,.0f}{m['tflops_per_second']:>10.3f}"
                     f"{m['flops_per_image'] / 1e9:>11.3f}{memory:>10}{m['warmup_seconds']:>11.1f}")
    lines += [f"{m['name']}: one checkpoint write takes {m['checkpoint_seconds']:.2f} s"
              for m in report["measurements"] if m["checkpoint_seconds"] is not None]
    lines += [f"{m['name']}: compile check {'passed' if c['passed'] else 'FAILED (timed eager)'}, worst gradient "
              f"error {c['grad_error']:.2g} (eager's {c['grad_error_eager']:.2g}, {c['worst_parameter']})"
              for m in report["measurements"] if (c := m.get("compile_check"))]
    lines.append(f"ratios (images/s), baseline {report['baseline']}:")
    lines += [f"  {k:<56}{v:>7.3f}" for k, v in report["ratios"].items()]
    if s["device_kind"] == "cpu":
        lines.append(f"  (peak MB on a CPU is the process's peak resident memory so far; host load average "
                     f"{report['load_average'][0]:.1f} over the last minute)")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cpvt_lab.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="run-config overrides, e.g. ablation=peg,learned "
                        "model.size=vit_ti4 data.batch_size=1024 compile=true")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default: 8 on a CPU, 50 on a GPU)")
    parser.add_argument("--warmup", type=int, help="untimed warm-up steps (default: 2 on a CPU, 10 on a GPU)")
    parser.add_argument("--synthetic", action="store_true", help="end-to-end on random images instead of CIFAR")
    parser.add_argument("--skip-end-to-end", action="store_true", help="time the train steps only")
    return parser.parse_intermixed_args(argv)  # overrides may come before or after the options


def split_overrides(overrides: Sequence[str], cuda: bool) -> tuple[list[str], list[str]]:
    """(ablation names, config overrides with the device's defaults first)."""
    ablations, rest = ["peg"], list(GPU_DEFAULTS if cuda else CPU_DEFAULTS)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(item, "expected KEY=VALUE")
        if key == "ablation":
            ablations = [a for a in value.split(",") if a]
        else:
            rest.append(f"{ALIASES.get(key, key)}={value}")
    if not ablations:
        raise ConfigError("ablation", "name at least one ablation")
    return ablations, rest


def run_bench(ablations: Sequence[str], overrides: Sequence[str], steps: int, warmup: int,
              synthetic: bool = False, end_to_end: bool = True, json_path: Optional[Path] = None) -> dict:
    """Compose, check and measure; returns the report.

    ``json_path`` is rewritten after every measurement, so a run cut short (a
    time limit on a lent GPU) keeps what it measured. The first ablation is
    measured completely (eager step, step, end to end) before the next begins.
    """
    configs = [compose(a, overrides) for a in ablations]  # every config is checked before any timing
    in_memory = "augment" in configs[0].data  # ImageFolder augments in its workers, its own way
    augmented = (compose(ablations[0], [*overrides, *AUGMENTED]) if in_memory and not augmentation_on(configs[0])
                 else None)
    for cfg in [*configs, augmented] if augmented is not None else configs:
        validate(cfg)
    if end_to_end and not synthetic and configs[0].data._target_.endswith("Cifar10JpegDataModule"):
        locate_jpeg_archive(configs[0].data.archive)  # a missing archive fails here, not after minutes
    cfg = configs[0]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    measurements: list[Measurement] = []
    baseline = "timm_compiled" if cfg.compile else "timm_eager"
    report = {
        "device": device_name(device),
        "settings": {"device_kind": device.type, "ablations": list(ablations), "model_size": cfg.model.size,
                     "batch_size": cfg.data.batch_size, "train_size": cfg.data.train_size,
                     "precision": cfg.trainer.precision, "compile": bool(cfg.compile), "steps": steps,
                     "warmup": warmup, "end_to_end_data": "synthetic" if synthetic else "run config data",
                     "overrides": list(overrides)},
        "versions": versions(),
        "command": " ".join(["python -m cpvt_lab.bench", *sys.argv[1:]]),
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
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2) + "\n")
        return m

    record(measure_step("timm_eager", "plain timm VisionTransformer train step", timm_baseline(cfg), cfg, device,
                        steps, warmup))
    if cfg.compile:
        record(measure_step("timm_compiled", "plain timm VisionTransformer train step, compiled",
                            timm_baseline(cfg), cfg, device, steps, warmup, compile_as_timm_users_do))
    for c in configs:
        if c.compile:  # eager too, so that a planner can weigh compile time against speed
            record(measure_step(f"ours_eager[{c.ablation_name}]", "our model's train step, eager", build_model(c),
                                c, device, steps, warmup, ablation=c.ablation_name))
        step = record(measure_step(f"ours_step[{c.ablation_name}]", "our model's train step", build_model(c), c,
                                   device, steps, warmup, compile_in_place if c.compile else None,
                                   ablation=c.ablation_name))
        if end_to_end:  # the same network as the step, so the same FLOPs per image
            record(measure_end_to_end(c, device, steps, warmup, synthetic, step.flops_per_image))
            if c is cfg and augmented is not None:
                record(measure_end_to_end(augmented, device, steps, warmup, synthetic, step.flops_per_image,
                                          label="end_to_end_augmented"))
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # the report is the output
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    cuda = torch.cuda.is_available()
    steps = args.steps if args.steps is not None else (50 if cuda else 8)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    try:
        if steps < 1 or warmup < 1:
            raise ConfigError("--steps/--warmup", f"must be >= 1, got {steps}/{warmup}")
        if args.json is not None and not args.json.parent.exists():
            raise ConfigError("--json", f"folder {args.json.parent} does not exist")
        ablations, overrides = split_overrides(args.overrides, cuda)
        report = run_bench(ablations, overrides, steps, warmup, args.synthetic, not args.skip_end_to_end, args.json)
    except (ConfigError, DataError, HydraException) as err:  # a clear line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json is not None:
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
