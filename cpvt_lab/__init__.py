"""cpvt_lab: the ablations of Conditional Positional Encodings for Vision Transformers, reproducible."""
from .config import build_model, compose

__all__ = ["compose", "build_model"]
