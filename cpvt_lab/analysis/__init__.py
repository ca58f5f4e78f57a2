"""Analyses of finished runs, in three rooms around the rows they read:

- here: result rows as frames (``frames``, ``settings``; ``folder`` reads a results folder once), how far from
  converged their curves end (``convergence``), top-1 against resolution (``resolution``), and the analyses by
  name (``kinds``, ``measured``);
- ``measures/``: what measures a trained model (equivariance, position probes, attention maps) and stores it;
- ``verdicts/``: what turns rows into intervals and verdicts (``stats``, ``claims``, ``test_set_term``);
- ``pages/``: what turns frames and verdicts into Markdown and figures (``report`` writes a tables folder).

Each module is imported on its own (``from cpvt_lab.analysis.verdicts import stats``); nothing heavy loads here.
"""
