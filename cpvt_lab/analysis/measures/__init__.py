"""What measures a trained model: its weights loaded, its test images taken, equivariance, position probes and
attention maps measured, each run's measurements stored beside its row (``store``)."""
