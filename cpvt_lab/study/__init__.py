"""The CIFAR-10 study as the harness's own first user: the paper's grids with several seeds, trained a few
whole runs at a time into one committed results folder, measured while the weights exist, and tabled.
(``cpvt_lab.studies`` is the paper's side: which ablations each published table compares.)"""
