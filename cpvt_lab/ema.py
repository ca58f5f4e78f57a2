"""An exponential moving average of the weights (timm's ``ModelEmaV3``) as a Lightning callback."""
from __future__ import annotations

import copy
from typing import Any, Optional

import pytorch_lightning as pl
import torch.nn as nn
from timm.utils import ModelEmaV3


class EMA(pl.Callback):
    """Keeps an EMA of ``pl_module.model``, updated after every optimiser step.

    Its weights travel in the checkpoint (callback state), so a resumed run continues
    the same average. ``averaged()`` is a plain copy of the network to evaluate.
    """

    def __init__(self, decay: float):
        self.decay = decay
        self.ema: Optional[ModelEmaV3] = None
        self._restored: Optional[dict[str, Any]] = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after Lightning has restored the weights and this callback's state from a checkpoint
        self.ema = ModelEmaV3(pl_module.model, decay=self.decay)
        if self._restored is not None:
            self.ema.module.load_state_dict(self._restored)
            self._restored = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ema.update(pl_module.model, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.ema.module.state_dict()} if self.ema is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict.get("weights")

    def averaged(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` holding the averaged weights (also when the checkpoint had finished training)."""
        if self.ema is not None:
            return copy.deepcopy(self.ema.module)
        averaged = copy.deepcopy(model)
        averaged.load_state_dict(self._restored)
        return averaged
