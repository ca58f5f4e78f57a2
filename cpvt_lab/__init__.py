"""cpvt_lab: the ablations of Conditional Positional Encodings for Vision Transformers, reproducible."""
import os

# OpenMP's threads wait for work by spinning unless told otherwise. On a laptop or workstation also doing
# something else, torch's spinning threads take the cores the other work needs, and the run itself slows
# several-fold (docs/cpu_study.md measures it). PASSIVE lets a waiting thread sleep; the arithmetic is the
# same. It is read once, when torch loads its OpenMP runtime, so it is set here, before anything imports
# torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import build_model, compose  # noqa: E402 - after the thread policy, which torch reads on import

__all__ = ["compose", "build_model"]
