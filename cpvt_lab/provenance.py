"""Where a number comes from: the device, the library versions, the commit and the command that made it; and what a
measuring command (the bench, ``python -m cpvt_lab.compiled``) runs on this device unless told otherwise."""
from __future__ import annotations

import hashlib
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import timm
import torch
import torchmetrics

REPO_ROOT = Path(__file__).resolve().parents[1]
# run-config overrides a measuring command gives before the command line's own: on a CPU the smoke model at batch
# 64, eager; on a GPU ViT-Ti/4 (scale=cifar) at batch 1024, its bf16 autocast, compiled
CPU_DEFAULTS = ("scale=smoke", "data.batch_size=64", "compile=false")
GPU_DEFAULTS = ("scale=cifar", "data.batch_size=1024", "compile=true")


def device_defaults(cuda: bool) -> tuple[str, ...]:
    return GPU_DEFAULTS if cuda else CPU_DEFAULTS


def device_name(device: Optional[torch.device] = None) -> str:
    """``cuda: <GPU name>`` when training on a GPU, else ``cpu: <processor>, <threads> threads``."""
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "pytorch_lightning": pl.__version__, "torchmetrics": torchmetrics.__version__}


def git_commit() -> Optional[str]:
    """HEAD of the checkout the code runs from, ``-dirty`` when tracked files of the package differ (a study's own
    rows, written into the checkout as it runs, are no change to the code); None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "cpvt_lab"],
                               cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def code_diff() -> Optional[str]:
    """The sha256 (12 hex digits) of the uncommitted changes to the package (``git diff HEAD -- cpvt_lab``), None
    where there are none: a row made from a changed checkout says so, and which change, beside its commit."""
    try:
        diff = subprocess.run(["git", "diff", "HEAD", "--", "cpvt_lab"], cwd=REPO_ROOT, capture_output=True,
                              check=True).stdout
        new = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--", "cpvt_lab"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    for name in new:  # files not yet added to git are changes too
        diff += name.encode() + (REPO_ROOT / name).read_bytes()
    return hashlib.sha256(diff).hexdigest()[:12] if diff else None


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    script = Path(sys.argv[0])
    if script.parent.name == "cpvt_lab":
        return shlex.join(["python", "-m", f"cpvt_lab.{script.stem}", *sys.argv[1:]])
    if script.name == "__main__.py" and script.parent.parent.name == "cpvt_lab":  # a package: bench, study, ...
        return shlex.join(["python", "-m", f"cpvt_lab.{script.parent.name}", *sys.argv[1:]])
    return shlex.join(["python", *sys.argv])


def now() -> str:
    """The time a record is written, as every record gives it (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stamp(device: Optional[torch.device] = None) -> dict[str, Any]:
    """What every record says of where it comes from: device, versions, commit and command."""
    return {"device": device_name(device), "versions": versions(), "git_commit": git_commit(), "code_diff": code_diff(),
            "command": command_line()}
