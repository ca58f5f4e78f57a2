"""The measured analyses by name: adding one is its module (ending in an ``ANALYSIS``) and a line here."""
from __future__ import annotations

from . import attention_maps, equivariance, probe
from .measured import MeasuredAnalysis

MEASURED: dict[str, MeasuredAnalysis] = {a.name: a for a in (equivariance.ANALYSIS, probe.ANALYSIS, attention_maps.ANALYSIS)}
