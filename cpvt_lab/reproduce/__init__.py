"""The CIFAR-10 tables trained within a wall-time budget (``python -m cpvt_lab.reproduce --help``)."""
