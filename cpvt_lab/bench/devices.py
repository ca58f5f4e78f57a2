"""What a measuring command runs on this device unless told otherwise (the bench, ``python -m cpvt_lab.compiled``):
on a CPU the smoke model at batch 64, eager; on a GPU ViT-Ti/4 (``scale=cifar``) at batch 1024, its bf16 autocast,
compiled. Run-config overrides, given before the command line's own."""
from __future__ import annotations

CPU_DEFAULTS = ("scale=smoke", "data.batch_size=64", "compile=false")
GPU_DEFAULTS = ("scale=cifar", "data.batch_size=1024", "compile=true")


def device_defaults(cuda: bool) -> tuple[str, ...]:
    return GPU_DEFAULTS if cuda else CPU_DEFAULTS
