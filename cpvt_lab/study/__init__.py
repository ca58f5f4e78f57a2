"""Studies: the one way to run many runs. A study is grids x seeds x what the runs are x how they train x where
their rows go (``ablations/studies/``; ``cpvt_lab.ablations`` reads it); ``plan`` composes its runs (no data
needed), ``runner`` trains them whole within a budget, ``advance`` also measures, draws and tables them,
``standing`` says where a study stands and ``exchange`` carries its results folder between machines.
``python -m cpvt_lab.study`` runs a study file, ``python -m cpvt_lab.grid`` one grid as a study,
``python -m cpvt_lab.sweep`` a grid on a cluster. (``cpvt_lab.paper`` is the paper's side: its tables.)"""
