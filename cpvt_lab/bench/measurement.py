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
    compile_check: Optional[dict] = None  # compiled only: the guard's verdict (cpvt_lab.compiled.guard)
    kernels: Optional[list] = None  # with profile=N: where the step's time goes (bench.kernels.time_by_kernel)
    images_per_second: float = field(init=False)
    tflops_per_second: float = field(init=False)
    mfu: Optional[float] = field(init=False)  # model FLOP utilisation: of the device's dense bf16 peak

    def __post_init__(self):
        self.images_per_second = self.images / self.seconds
        self.tflops_per_second = self.flops_per_image * self.images_per_second / 1e12
        peak = peak_bf16_tflops()
        self.mfu = round(self.tflops_per_second / peak, 4) if peak else None


# Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, without sparsity), by device name.
PEAK_BF16_TFLOPS = {"H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0,
                    "H200": 989.4, "A100": 312.0, "L40S": 362.1, "B200": 2250.0}


def peak_bf16_tflops() -> Optional[float]:
    """The running GPU's dense bf16 peak, or None (a CPU, or a GPU missing from the table)."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


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
