"""Where a train step's time goes, kernel by kernel (torch.profiler), and what one step spends beyond another's.

A ratio of two rates says that one model is slower, not why: a compiled PEG model's step at 0.81x of the learned
table's, where eager it is at 0.98x, is one depth-wise convolution's worth of arithmetic apart. The kernels that the
slower step spends its extra time in name the cause. On a GPU a kernel's time is its device self time; on a CPU
the self time of each aten operator.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from .measurement import synchronize

SHOWN = 12  # kernels kept per measurement: the rest is a long tail of small ones
NAME_CHARACTERS = 100
# what differs between two compilations of one computation: a compiled graph's hash, a fused kernel's number
GRAPH_HASH = re.compile(r"(CompiledFxGraph) \w+")
KERNEL_NUMBER = re.compile(r"^(triton_\w+?)_\d+$")


def kernel_name(name: str) -> str:
    """A kernel's name as two models' steps can share it: without its graph's hash or its fused kernel's number."""
    return KERNEL_NUMBER.sub(r"\1", GRAPH_HASH.sub(r"\1", name))[:NAME_CHARACTERS]


def time_by_kernel(step: Callable[[], None], steps: int, device: torch.device) -> list[dict]:
    """The ``SHOWN`` costliest kernels of ``steps`` calls of ``step`` (already warm), each as its name, its
    milliseconds a step and its share of all kernel time; the step's whole kernel time first, as ``(all)``."""
    cuda = device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]) as profiler:
        for _ in range(steps):
            step()
        synchronize(device)
    self_time = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    kernels: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages():
        if self_time(event) > 0:
            kernels[kernel_name(event.key)] += self_time(event) / 1000 / steps
    total = sum(kernels.values())
    costliest = sorted(kernels.items(), key=lambda k: -k[1])[:SHOWN]
    return [{"name": "(all)", "ms_per_step": round(total, 4), "share": 1.0}] + [
        {"name": name, "ms_per_step": round(ms, 4), "share": round(ms / total, 4)} for name, ms in costliest]


def extra_time(slower: list[dict], faster: list[dict], shown: int = 6) -> list[tuple[str, float]]:
    """The kernels (of both lists' costliest) whose milliseconds a step ``slower`` exceeds ``faster``'s by most,
    as (name, extra ms); a kernel missing from one list counts 0 there. ``(all)`` is not among them."""
    before = {k["name"]: k["ms_per_step"] for k in faster}
    after = {k["name"]: k["ms_per_step"] for k in slower}
    extra = [(name, after.get(name, 0.0) - before.get(name, 0.0)) for name in {*before, *after} - {"(all)"}]
    return sorted((e for e in extra if e[1] > 0), key=lambda e: -e[1])[:shown]
