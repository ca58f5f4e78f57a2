"""The analyses by name. Measured ones are measured on a run's weights and stored beside its row; computed ones
are written from a results folder's rows (and what is stored beside them). Adding one is its module (in
``measures/`` for a measured one, ending in an ``ANALYSIS``, ``measured.py``) and a line here: ``python -m cpvt_lab.analyze NAME``, its ``--help`` and
``python -m cpvt_lab.tables`` then know it."""
from __future__ import annotations

from .measures import attention, attention_maps, equivariance, probe
from .pages import claims_page, longer_training
from . import resolution
from .measured import ComputedAnalysis, MeasuredAnalysis

MEASURED: dict[str, MeasuredAnalysis] = {a.name: a for a in (equivariance.ANALYSIS, probe.ANALYSIS, attention_maps.ANALYSIS)}
COMPUTED: dict[str, ComputedAnalysis] = {a.name: a for a in (resolution.ANALYSIS, claims_page.ANALYSIS, attention.ANALYSIS,
                                                        longer_training.ANALYSIS)}
