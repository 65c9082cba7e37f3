"""Pure PyTorch depth losses: the Scale-Adaptive Loss of G2-MonoDepth (dense and sparse)
and MiDaS' scale-and-shift-invariant baseline, by packnet-style name via ``get_loss``.

    loss_fn = get_loss("sparse-scale-adaptive", lambda_sg=0.5, num_scales=4)
    out = loss_fn(pred_inv, gt_inv, mask)   # [B,1,H,W] each; out.total, out.metrics

Imports torch only.
"""

from __future__ import annotations

from loss.check import quick_check
from loss.output import LossOutput
from loss.registry import LOSS_METHODS, LossFunction, get_loss, loss_parameters
from loss.scale_adaptive import ScaleAdaptiveLoss
from loss.ssi import SSILoss

__all__ = [
    "LOSS_METHODS",
    "LossFunction",
    "LossOutput",
    "SSILoss",
    "ScaleAdaptiveLoss",
    "get_loss",
    "loss_parameters",
    "quick_check",
]
