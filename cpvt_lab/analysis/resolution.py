"""Top-1 against test resolution for each encoding, from the runs already in ``runs.jsonl``.

Nothing is trained or evaluated here: every run records top-1 at each of its
evaluation sizes (the ``top1`` map of its row), so the curve is those figures,
pooled over seeds within one setting (``settings``: one setting id).
"""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd

from ..studies import STUDY_BY_ID, T1, T2
from .frames import with_setting

# the encodings the paper compares across resolutions (Tables 1 and 2), in its order
ENCODINGS = list(dict.fromkeys(STUDY_BY_ID[T1].ablations + STUDY_BY_ID[T2].ablations))


def curve(runs: pd.DataFrame, ablations: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per-seed top-1 at each test size of the chosen ablations, with a ``setting`` label per line."""
    return with_setting(runs, list(ablations) if ablations is not None else ENCODINGS)
