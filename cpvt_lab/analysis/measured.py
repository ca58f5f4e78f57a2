"""What an analysis declares. A measured one: its keys, how it measures a run's model, and the page of its table.
A computed one: its keys and how it writes its files from a results folder's rows (and what is stored beside them).

An analysis is one module (``equivariance``, ``probe``; ``claims_page``, ``resolution``) ending in an ``ANALYSIS``
of one of these shapes, and one line in ``kinds.py``; the command (``python -m cpvt_lab.analyze``), the stored
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
    ``explains``, one section per setting and ``sections_by`` keys; ``headline(lines of runs measured at their
    training size)`` gives the few numbers per run a paper table shows beside its top-1 (``headlines``): columns
    ``run_id``, ``measure`` (its label), ``value`` and ``images`` (the images a share was scored on, else NaN).
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
    headline: Optional[Callable[[pd.DataFrame], pd.DataFrame]] = None


@dataclass(frozen=True)
class ComputedAnalysis:
    """One analysis computed from a results folder: ``write(folder, out_dir, **options)`` writes its files into
    ``out_dir`` from ``folder`` (an ``analysis.folder.ResultsFolder``: the rows read once, their frames) and
    returns them; ``options`` are its own command keys with their defaults. ``in_tables``: written by
    ``python -m cpvt_lab.tables`` too (not so an analysis that needs the runs' weights)."""
    name: str
    about: str
    options: dict[str, Any]
    write: Callable[..., list]
    in_tables: bool = True
