"""How many epochs per run a wall-time budget buys, from a bench report's rates or assumed ones.

The plan, stated: ``budget x 0.9 >= waves x overhead + runs x epochs x (50,000 / rate
+ epoch_end / parallel)``, where ``waves = ceil(runs / parallel)``, ``rate`` is the
end-to-end training rate (images/s), ``overhead`` the per-run cost outside the
epochs (start-up, data to the device, compilation, final evaluation at every size)
and ``epoch_end`` the host's work at each epoch's end (the checkpoint's rewrite).
All three come from a bench JSON when given (``python -m cpvt_lab.bench json=FILE``),
else from DEFAULT_RATE, DEFAULT_OVERHEAD and DEFAULT_EPOCH_END. Concurrent runs are assumed
to add no throughput, only to overlap their overheads; whether they do is measured by running
the same grid at ``parallel=1`` and ``parallel=3`` with ``epochs=`` fixed and comparing the
``wall_seconds`` in ``plan.json``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..bench.steps import train_flops_per_image
from ..config import ConfigError, build_model

TRAIN_IMAGES = 50_000
TEST_IMAGES = 10_000
BUDGET_SHARE = 0.9  # of the budget planned for training; the rest is slack and the tables
DEFAULT_RATE = 30_000.0  # images/s, eager ViT-Ti/4, 24 px, batch 1024, one H100: an assumption, not a measurement
DEFAULT_OVERHEAD = 20.0  # seconds per run outside its epochs, eager (an assumption)
STARTUP_SECONDS = 15.0  # a run process: imports, config checks, the cached arrays to the device
# host work at each epoch's end, mostly rewriting last.ckpt (ViT-Ti/4 with AdamW state: about 66 MB),
# when no bench report measured it; other workers keep the GPU busy meanwhile, so it is shared among them
DEFAULT_EPOCH_END = 0.5


@dataclass
class Plan:
    """What the budget buys: the numbers the epochs were derived from, and the result."""
    runs: int
    parallel: int
    budget_seconds: float
    rate: float  # end-to-end images/s at the grid's training size
    overhead_seconds: float
    epoch_end_seconds: float
    compile: bool
    epochs: int
    source: str  # where rate and overhead came from

    @property
    def waves(self) -> int:
        return math.ceil(self.runs / self.parallel)

    def predicted_seconds(self) -> float:
        return (self.waves * self.overhead_seconds
                + self.runs * self.epochs * epoch_seconds(self.rate, self.epoch_end_seconds, self.parallel))


def epoch_seconds(rate: float, epoch_end_seconds: float, parallel: int) -> float:
    """One epoch of one run: its images at ``rate``, plus its host-side end (shared among the workers)."""
    return TRAIN_IMAGES / rate + epoch_end_seconds / parallel


def epochs_that_fit(runs: int, parallel: int, budget_seconds: float, rate: float, overhead_seconds: float,
                    epoch_end_seconds: float = DEFAULT_EPOCH_END) -> int:
    """The most epochs per run with ``waves x overhead + runs x epochs x epoch_seconds`` within the budget share."""
    waves = math.ceil(runs / parallel)
    training_seconds = budget_seconds * BUDGET_SHARE - waves * overhead_seconds
    return max(0, math.floor(training_seconds / (runs * epoch_seconds(rate, epoch_end_seconds, parallel))))


def flops_per_image(cfg, train_size: int) -> float:
    images = torch.zeros(2, 3, train_size, train_size)
    return train_flops_per_image(build_model(cfg, img_size=train_size), images, torch.tensor([0, 1]))


def rates_from_bench(report: dict, cfg) -> dict[bool, tuple[float, float, float]]:
    """{compiled?: (images/s, overhead s, epoch-end s)} at ``cfg``'s training size, from a bench report.

    The bench times one ablation end to end at its own training size; a different
    size is scaled by the FLOPs per image, discounted by 0.8 (shorter sequences use
    the GPU less well). Eager figures follow from the step timings: the eager step's
    speed relative to the compiled one, and the compile time it saves.
    """
    by_name = {m["name"]: m for m in report["measurements"]}
    e2e = next((m for m in report["measurements"] if m["name"].startswith("end_to_end[")), None)
    if e2e is None:
        raise ConfigError("bench", "the bench report has no end-to-end measurement")
    bench_size, size = report["settings"]["train_size"], cfg.data.train_size
    scale = 1.0 if bench_size == size else 0.8 * flops_per_image(cfg, bench_size) / flops_per_image(cfg, size)
    eval_equivalent = sum((s / size) ** 2 for s in cfg.data.eval_sizes) * TEST_IMAGES / 3  # forward ~ 1/3 step
    rate = e2e["images_per_second"] * scale
    overhead = STARTUP_SECONDS + e2e["warmup_seconds"] + eval_equivalent / rate
    epoch_end = e2e.get("checkpoint_seconds") or DEFAULT_EPOCH_END
    options = {bool(e2e["compiled"]): (rate, overhead, epoch_end)}
    ablation = e2e["ablation"]
    eager, compiled = by_name.get(f"ours_eager[{ablation}]"), by_name.get(f"ours_step[{ablation}]")
    if e2e["compiled"] and eager is not None and compiled is not None:
        eager_rate = rate * eager["images_per_second"] / compiled["images_per_second"]
        saved = max(0.0, compiled["warmup_seconds"] - eager["warmup_seconds"])
        options[False] = (eager_rate, STARTUP_SECONDS + max(0.0, e2e["warmup_seconds"] - saved)
                          + eval_equivalent / eager_rate, epoch_end)
    return options


def make_plan(runs: int, parallel: int, budget_seconds: float, compile_mode: str,
              options: Optional[dict[bool, tuple[float, float, float]]], source: str) -> Plan:
    """The plan with the most epochs among the allowed compile modes."""
    if options is None:
        options = {False: (DEFAULT_RATE, DEFAULT_OVERHEAD, DEFAULT_EPOCH_END)}
        source = "assumed (no bench report)"
    allowed = {"auto": list(options), "true": [True], "false": [False]}[compile_mode]
    missing = [c for c in allowed if c not in options]
    if missing:
        raise ConfigError("compile_mode", f"compile_mode={compile_mode} but {source} has no "
                          f"{'compiled' if missing[0] else 'eager'} figures; use compile_mode=auto")
    plans = [Plan(runs, parallel, budget_seconds, *options[c], compile=c,
                  epochs=epochs_that_fit(runs, parallel, budget_seconds, *options[c]), source=source)
             for c in allowed]
    return max(plans, key=lambda p: (p.epochs, not p.compile))
