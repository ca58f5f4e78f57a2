"""One timed loop's figures (``Measurement``) and the device clock and memory readings behind them."""
from __future__ import annotations

import platform
import resource
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch


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
