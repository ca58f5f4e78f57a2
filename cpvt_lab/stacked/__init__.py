"""Stacked training: the seeds of one ablation trained as one stacked network (torch.func), each seed getting
exactly what its separate run gets. ``StackedTraining`` is the step; ``members`` builds the seeds' networks and
data as their separate runs do; docs/speed.md says what is equal and what is tested."""
from .members import Member, build_members
from .training import StackedTraining

__all__ = ["Member", "build_members", "StackedTraining"]
