"""Whole files or none: write beside the target, then rename onto it."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it when the block ends without error.

    A reader never sees half a file, and a crash leaves the old file. The temporary name carries
    the process id, so two processes writing the same target (workers filling one cache) never
    write into each other's file; the last rename wins, and both wrote whole files.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
