"""Training throughput against a plain timm ViT (``python -m cpvt_lab.bench --help``)."""
