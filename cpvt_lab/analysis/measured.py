"""What a measured analysis declares: its keys, how it measures a run's model, and the page of its table.

A measured analysis is one module (``equivariance``, ``probe``) ending in an ``ANALYSIS`` of this
shape, and one line in ``kinds.py``; the command (``python -m cpvt_lab.analyze``), the stored
measurements and ``python -m cpvt_lab.tables`` then know it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pandas as pd


def _no_check(options: dict[str, Any], size: Optional[int] = None, depth: Optional[int] = None) -> None:
    return None


@dataclass(frozen=True)
class MeasuredAnalysis:
    """One measured analysis.

    ``measure(model, images, labels, seed=..., **options)`` gives its long table for one run;
    ``options`` are its own command keys with their defaults; ``check(options, size, depth)``
    raises ``ValueError("key: problem")`` for options that cannot work (called with
    ``size=depth=None`` before any run is chosen, then with each run's test size and depth);
    ``render(lines of one setting)`` gives the Markdown of its table below ``title`` and
    ``explains``, one section per setting and ``sections_by`` keys.
    """
    name: str
    about: str
    options: dict[str, Any]
    measure: Callable[..., pd.DataFrame]
    title: str
    explains: str
    sections_by: tuple[str, ...]
    render: Callable[[pd.DataFrame], list[str]]
    check: Callable[..., None] = _no_check
