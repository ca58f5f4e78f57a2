"""Compiled against eager over whole training runs, side by side: ``python -m cpvt_lab.compiled``.

    python -m cpvt_lab.compiled [ablations=[peg,peg_0to5]|all] [variants=project|all|[a,b]]
        [steps=200] [results_dir=results/bench/compile_agreement] [KEY=VALUE...]

Every other KEY=VALUE is a run-config override for every run, after the device's defaults: the bench's
(``provenance.device_defaults``), on a GPU at the settings under which compiled multi-PEG models collapsed
(24 px, 12 epochs, 1 warm-up). ``ablation=`` and ``out=`` are the old names of ``ablations=`` and ``results_dir=``.

For each ablation, trains the run config eagerly and then once per compile variant, from
the same initial weights on the same batches (the real data path, the LightningModule, the
run's precision and schedule; training stops after ``steps`` steps, the schedule is the full
run's). The compile check is recorded but does not fall back to eager here: this command
shows what each compiled variant would train. Every (ablation, variant) result is appended
to ``<results_dir>/agreement.jsonl`` as soon as it is measured (under the results lock, with the
provenance every record carries), and ``<results_dir>/agreement.md`` is redrawn
from it: the guard's verdict, the loss at a few steps beside eager's, and the largest gap.
A result already in the file with the same settings is not measured again, so a call cut
short by a time limit resumes. Variants (``variants=all``) bisect a compiled failure:
which compile option, optimiser or precision makes compiled differ from eager.
"""
from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import pytorch_lightning as pl
import torch
import torch.nn as nn
from hydra.errors import HydraException
from hydra.utils import instantiate

from ..cli import UsageError, names_option, parse_words, run_command
from ..config import ConfigError, ablation_names, build_model, compose
from ..data import DataError
from ..provenance import device_defaults, now, stamp
from ..results import append_row, iter_rows
from ..train import make_module
from ..validation import validate
from .guard import compile_in_place

# the settings under which compiled multi-PEG models collapsed (issue: 12 epochs, 1 warm-up, 24 px, batch 1024)
COLLAPSED = ("data.train_size=24", "data.eval_sizes=[24]", "trainer.max_epochs=12", "optim.warmup_epochs=1")
OPTIONS = {"ablations": ["peg_0to5"], "variants": ["project"], "steps": 200,
           "results_dir": "results/bench/compile_agreement"}
ALIASES = {"ablation": "ablations", "out": "results_dir"}
RECORDS = "agreement.jsonl"


def torch_defaults(model: nn.Module, **options) -> nn.Module:
    """torch.compile with its defaults, plus only ``options`` (the project's own settings left out)."""
    return compile_in_place(model, options=options, project=False)


def compile_blocks_only(model: nn.Module) -> nn.Module:
    """Regional compilation: each transformer block compiled, position encodings and head eager."""
    for block in model.blocks:
        block.compile()
    return model


@dataclass(frozen=True)
class Variant:
    """One way to train: how the network is compiled (None: eager), and what else differs."""
    name: str
    compile_fn: Optional[Callable[[nn.Module], nn.Module]]
    overrides: tuple[str, ...] = ()
    fused_adamw: Optional[bool] = None  # None: the project's rule
    note: str = ""


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("project", compile_in_place, note="the project's compile (cpvt_lab.compiled.guard.INDUCTOR_OPTIONS)"),
    Variant("torch_defaults", torch_defaults, note="torch.compile defaults, as before the guard"),
    Variant("mix_order_off", lambda m: torch_defaults(m, **{"triton.mix_order_reduction": False}),
            note="defaults less inductor's mixed-order reductions"),
    Variant("fallback_random", lambda m: torch_defaults(m, fallback_random=True),
            note="defaults with eager's random numbers"),
    Variant("static_shapes", lambda m: (m.compile(dynamic=False), m)[1], note="defaults, dynamic=False"),
    Variant("unfused_adamw", torch_defaults, fused_adamw=False, note="defaults, foreach AdamW"),
    Variant("fp32", torch_defaults, overrides=("trainer.precision=32-true",), note="defaults, fp32"),
    Variant("aot_eager", lambda m: (m.compile(backend="aot_eager"), m)[1],
            note="dynamo and AOT autograd without inductor"),
    Variant("blocks_only", compile_blocks_only, note="defaults, blocks compiled, PEGs and head eager"),
)}
EAGER = Variant("eager", None)


class StepLosses(pl.Callback):
    """The training loss of every step (one host read per step: fine for a check, not for a bench);
    stops training after ``steps``. (A plain class: Hydra's instantiate would read a dataclass as a config.)"""

    def __init__(self, steps: int):
        self.steps, self.losses = steps, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        if len(self.losses) >= self.steps:
            trainer.should_stop = True


def train_steps(cfg, variant: Variant, steps: int) -> dict:
    """Train ``cfg`` under ``variant`` for ``steps`` steps; the losses, the compile check, the time."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg)
    recorder = StepLosses(steps)
    module = make_module(cfg, model, list(cfg.data.eval_sizes))
    module.fused_adamw = variant.fused_adamw
    if variant.compile_fn is not None:
        variant.compile_fn(model)
        module.compiled = True
        module.compile_fallback = False  # record the check, keep training what the variant compiled
    trainer = instantiate(cfg.trainer, limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
                          logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder])
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - started
    check = module.compile_check.as_dict() if module.compile_check else None
    return {"losses": recorder.losses, "compile_check": check, "seconds": round(seconds, 1)}


def settings_key(cfg, steps: int) -> dict:
    return {"model_size": cfg.model.size, "batch_size": cfg.data.batch_size, "train_size": cfg.data.train_size,
            "precision": cfg.trainer.precision, "epochs": cfg.trainer.max_epochs,
            "warmup_epochs": cfg.optim.warmup_epochs, "seed": cfg.seed, "steps": steps,
            "dataset": cfg.data._target_.rsplit(".", 1)[-1]}


def gap(losses: Sequence[float], reference: Sequence[float], window: int = 10) -> float:
    """The largest difference of the two loss curves, each smoothed over ``window`` steps."""
    n = min(len(losses), len(reference))
    if n == 0:
        return float("nan")
    w = max(1, min(window, n))

    def smooth(xs):
        return [sum(xs[i:i + w]) / w for i in range(n - w + 1)]

    return max(abs(a - b) for a, b in zip(smooth(losses[:n]), smooth(reference[:n])))


def markdown(records: Sequence[dict]) -> str:
    """The table of every (ablation, variant) beside eager of the same settings."""
    eager = {(r["ablation"], json.dumps(r["settings"], sort_keys=True)): r for r in records if r["variant"] == "eager"}
    lines = ["# Compiled against eager, training side by side", "",
             "Made by `python -m cpvt_lab.compiled` (the command of each row below); do not edit by hand. "
             "Loss: the training loss at that step (mean of the 10 steps up to it); gap: the largest difference of "
             "the two smoothed curves. Check: the compile guard's verdict before the first step (worst gradient "
             "error against fp32 eager, eager's own in brackets).", ""]
    for settings in sorted({json.dumps(r["settings"], sort_keys=True) for r in records}):
        mine = [r for r in records if json.dumps(r["settings"], sort_keys=True) == settings]
        s = json.loads(settings)
        marks = sorted({m for m in (s["steps"] // 4, s["steps"] // 2, s["steps"]) if m >= 1})
        lines += [f"## {s['model_size']}, batch {s['batch_size']}, {s['train_size']} px, {s['precision']}, "
                  f"{s['steps']} steps of a {s['epochs']}-epoch schedule, seed {s['seed']}, {s['dataset']}", "",
                  f"Device: {mine[0]['device']}; versions: {mine[0]['versions']}; command: `{mine[0]['command']}`", "",
                  "| ablation | variant | check | " + " | ".join(f"loss@{m}" for m in marks) + " | gap to eager |",
                  "|---|---|---|" + "---|" * len(marks) + "---|"]
        for r in sorted(mine, key=lambda r: (r["ablation"], r["variant"] != "eager", r["variant"])):
            c = r["compile_check"]
            check = "—" if c is None else (f"{'pass' if c['passed'] else 'FAIL'} {c['grad_error']:.2g} "
                                           f"({c['grad_error_eager']:.2g})")
            losses = r["losses"]
            at = [f"{sum(losses[max(0, m - 10):m]) / len(losses[max(0, m - 10):m]):.3f}" if len(losses) >= m else "—"
                  for m in marks]
            ref = eager.get((r["ablation"], settings))
            diff = "—" if r["variant"] == "eager" or ref is None else f"{gap(losses, ref['losses']):.3f}"
            lines.append(f"| {r['ablation']} | {r['variant']} | {check} | " + " | ".join(at) + f" | {diff} |")
        lines.append("")
    return "\n".join(lines)


def parse(argv: Sequence[str], cuda: bool) -> tuple[list[str], list[Variant], int, Path, list[str]]:
    """(ablations, variants, steps, results folder, run-config overrides with the device's defaults first)."""
    options, overrides = parse_words(argv, OPTIONS, ALIASES)
    ablations = options["ablations"]
    ablations = ablation_names() if ablations == "all" else names_option(ablations, "ablations")
    variants = options["variants"]
    names = list(VARIANTS) if variants == "all" else names_option(variants or [], "variants")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise UsageError("variants", f"unknown {unknown}; valid: all, {', '.join(VARIANTS)}")
    if options["steps"] < 1:
        raise UsageError("steps", f"must be an integer >= 1, got {options['steps']}")
    overrides = [*device_defaults(cuda), *(COLLAPSED if cuda else ()), *overrides]
    return ablations, [VARIANTS[n] for n in names], options["steps"], Path(options["results_dir"] or "."), overrides


def run(argv: Sequence[str]) -> Path:
    cuda = torch.cuda.is_available()
    ablations, variants, steps, out, overrides = parse(argv, cuda)
    configs = [compose(a, overrides + ["compile=false"]) for a in ablations]  # every config checked first
    for cfg in configs:
        validate(cfg)
    out.mkdir(parents=True, exist_ok=True)
    records, table = list(iter_rows(out, RECORDS)), out / "agreement.md"  # read once; each new one added
    for cfg in configs:
        key = settings_key(cfg, steps)  # a variant's own overrides (fp32) are in its name, not its settings
        for variant in [EAGER, *variants]:
            if any(r["ablation"] == cfg.ablation_name and r["variant"] == variant.name and r["settings"] == key
                   for r in records):
                print(f"{cfg.ablation_name} {variant.name}: already measured", flush=True)
                continue
            run_cfg = compose(cfg.ablation_name, overrides + list(variant.overrides) + ["compile=false"])
            result = train_steps(run_cfg, variant, steps)
            record = {"ablation": cfg.ablation_name, "variant": variant.name, "note": variant.note,
                      "settings": key, **result, **stamp(), "finished_at": now()}
            append_row(out, record, RECORDS)
            records.append(record)
            table.write_text(markdown(records))
            last = result["losses"][-10:]
            print(f"{cfg.ablation_name} {variant.name}: loss {sum(last) / len(last):.3f} after {len(result['losses'])} "
                  f"steps ({result['seconds']} s)", flush=True)
    return table


def main(argv: Optional[Sequence[str]] = None) -> int:
    def agreement(argv: list[str]) -> None:
        logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="pytorch_lightning")
        print(f"written: {run(argv)}")

    doc = __doc__ + "\nvariants: " + "; ".join(f"{v.name}: {v.note}" for v in VARIANTS.values())
    return run_command(agreement, doc, argv, errors=(ConfigError, DataError, HydraException))


if __name__ == "__main__":
    sys.exit(main())
