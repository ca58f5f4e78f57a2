"""How a PEG's depth-wise convolution runs, not what it computes: ``peg_lowering`` (docs/compile.md).

``conv`` (the default) leaves ``nn.Conv2d`` to torch, which sends a depth-wise convolution to cuDNN or to its
own depth-wise kernels. ``taps`` computes the same k x k depth-wise convolution as k*k shifted multiply-adds
of the token grid: pointwise work that a compiler fuses with the residual around it, and whose weight
gradient is a plain reduction, with no convolution kernel and no layout for it to choose. The parameters,
their names and their initial values are the convolution's, so a checkpoint, a run_id and a row are the same
either way; only the order of the float sums differs (tests/test_lowering.py holds the two to float
tolerance, a layer and a whole training run).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LOWERINGS = ("conv", "taps")
MAX_TAPS_KERNEL = 7  # a larger kernel (the 27 x 27 PEG) would unroll into hundreds of terms: it stays a convolution


class DepthwiseTaps(nn.Conv2d):
    """A depth-wise ``nn.Conv2d`` (stride 1, no dilation) computed tap by tap."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        device = x.device.type  # meta (FLOP counting) has no autocast
        if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)  # compute in the dtype autocast gives a convolution
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), mode="circular" if self.padding_mode == "circular" else "constant")
        rows, cols = x.shape[-2] - kh + 1, x.shape[-1] - kw + 1
        out = None
        for i in range(kh):
            for j in range(kw):
                term = x[..., i:i + rows, j:j + cols] * weight[:, 0, i, j, None, None]
                out = term if out is None else out + term
        return out if bias is None else out + bias[:, None, None]


def lowers(conv: nn.Module) -> bool:
    """Whether ``taps`` can compute ``conv``: a depth-wise k x k convolution, k <= MAX_TAPS_KERNEL."""
    return (isinstance(conv, nn.Conv2d) and conv.groups == conv.in_channels == conv.out_channels
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and isinstance(conv.padding, tuple)
            and max(conv.kernel_size) <= MAX_TAPS_KERNEL)


def as_lowered(conv: nn.Conv2d, lowering: str) -> nn.Conv2d:
    """The same layer, holding the same parameter objects, computed as ``lowering`` says. Built on the meta device
    so that it draws nothing from the random generator (a run's later draws stay those of its twin)."""
    kind = DepthwiseTaps if lowering == "taps" else nn.Conv2d
    if type(conv) is kind:
        return conv
    layer = kind(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding, groups=conv.groups,
                 bias=conv.bias is not None, padding_mode=conv.padding_mode, device="meta")
    layer.weight, layer.bias = conv.weight, conv.bias
    return layer


def lower_pegs(model: nn.Module, lowering: str) -> nn.Module:
    """``model`` with every depth-wise convolution of its position encoding computed as ``lowering`` says."""
    if lowering not in LOWERINGS:
        raise ValueError(f"peg_lowering must be one of {', '.join(LOWERINGS)}, got {lowering!r}")
    for parent in list(model.pos_encoding.modules()):
        for name, child in parent.named_children():
            if lowers(child):
                setattr(parent, name, as_lowered(child, lowering))
    return model
