"""Analyses of finished runs: attention maps, translation equivariance, position probes, statistics.

Each module is imported on its own (``from cpvt_lab.analysis import stats``); nothing heavy loads here.
"""
