"""Pure PyTorch depth losses: the Scale-Adaptive Loss of G2-MonoDepth (dense and sparse)
and MiDaS' scale-and-shift-invariant baseline, by packnet-style name via ``get_loss``.

    loss_fn = get_loss("sparse-scale-adaptive", lambda_sg=0.5, num_scales=4)
    out = loss_fn(pred_inv, gt_inv, mask)   # [B,1,H,W] each; out.total, out.metrics

Inputs are inverse depth in 1/m; the scale-adaptive loss's ``min_depth`` / ``max_depth``
(default 1 and 80 m, ``loss.units``) make its absolute term unit-free, so the same call
means the same in any trainer. ``loss.packnet.register_packnet_loss`` adds the losses to
packnet-sfm without editing its files.

Imports torch only. The method and parameter names (``loss.names``) do not import torch;
the losses themselves are loaded on first use, so that ``import loss.names`` (or
``from loss import LOSS_METHODS``) stays light for configuration code and read-only
commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loss.names import (
    GRADIENT_NORMALIZATIONS,
    GRADIENT_WINDOWS,
    LOSS_METHODS,
    SCALE_ADAPTIVE_METHODS,
    SSI_METHODS,
    GradientNormalization,
    GradientWindow,
    LossMethod,
    check_method,
    is_sparse_method,
    is_ssi_method,
    method_params,
    ssi_counterpart,
)

if TYPE_CHECKING:
    from loss.check import quick_check
    from loss.output import LossOutput
    from loss.registry import LossFunction, get_loss
    from loss.scale_adaptive import ScaleAdaptiveLoss
    from loss.ssi import SSILoss

# Attribute -> module that defines it; those modules import torch (seconds).
_TORCH_NAMES = {
    "LossFunction": "loss.registry",
    "LossOutput": "loss.output",
    "SSILoss": "loss.ssi",
    "ScaleAdaptiveLoss": "loss.scale_adaptive",
    "get_loss": "loss.registry",
    "quick_check": "loss.check",
}


def __getattr__(name: str) -> Any:
    module = _TORCH_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'loss' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TORCH_NAMES))


__all__ = [
    "GRADIENT_NORMALIZATIONS",
    "GRADIENT_WINDOWS",
    "LOSS_METHODS",
    "SCALE_ADAPTIVE_METHODS",
    "SSI_METHODS",
    "GradientNormalization",
    "GradientWindow",
    "LossFunction",
    "LossMethod",
    "LossOutput",
    "SSILoss",
    "ScaleAdaptiveLoss",
    "check_method",
    "get_loss",
    "is_sparse_method",
    "is_ssi_method",
    "method_params",
    "quick_check",
    "ssi_counterpart",
]
