"""Grid workers sharing one queue of runs, started together and stopped at a deadline."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import yaml

from ..grid import grid_file


def combined_grid(grids: Sequence[str], folder: Path) -> Path:
    """One grid file including the named grids, so that the workers share one queue of runs."""
    for name in grids:
        grid_file(name)  # an unknown grid fails here, with the valid names
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reproduce-grid.yaml"
    path.write_text(yaml.safe_dump({"include": [str(Path(g).resolve()) if g.endswith((".yaml", ".yml")) else g
                                                for g in grids]}))
    return path


def worker_command(grid: Path, overrides: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "cpvt_lab.grid", str(grid), *overrides]


def run_workers(command: list[str], parallel: int, deadline: float, log_dir: Path) -> list[int]:
    """Start ``parallel`` grid workers; stop any still running at ``deadline``; their exit codes."""
    procs = []
    # a SIGTERM to this process (a timeout, say) must stop the workers too: exit through the finally below
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        for i in range(parallel):
            with open(log_dir / f"worker{i}.log", "w") as log:
                procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            time.sleep(1.0)  # staggered: each claims a different first run
        for proc in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                break
    finally:
        for proc in procs:
            stop(proc)
        signal.signal(signal.SIGTERM, previous)
    return [proc.returncode for proc in procs]


def stop(proc: subprocess.Popen) -> None:
    """End a worker that is still running, and whatever it started (its own session), by its id."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
