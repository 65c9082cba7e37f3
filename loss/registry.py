"""``get_loss``: a loss from its packnet-style method name and parameters."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from loss.output import LossOutput
from loss.scale_adaptive import ScaleAdaptiveLoss
from loss.ssi import SSILoss

__all__ = ["LOSS_METHODS", "LossFunction", "get_loss", "loss_parameters"]

#: Valid method names. As in packnet-sfm, ``sparse-`` means "ground truth is sparse
#: (LiDAR): only pixels with ``gt_inv > 0`` count".
LOSS_METHODS: tuple[str, ...] = ("scale-adaptive", "sparse-scale-adaptive", "ssi", "sparse-ssi")

_SCALE_ADAPTIVE_PARAMS = ("lambda_sg", "epsilon", "num_scales", "use_absolute", "use_inv_depth")
_SSI_PARAMS = ("alpha", "num_scales")


class LossFunction(Protocol):
    """What ``get_loss`` returns: ``loss_fn(pred_inv, gt_inv, mask=None) -> LossOutput``."""

    @property
    def method(self) -> str: ...

    def metric_names(self, with_mask: bool) -> tuple[str, ...]: ...

    def __call__(
        self, pred_inv: torch.Tensor, gt_inv: torch.Tensor, mask: torch.Tensor | None = None
    ) -> LossOutput: ...


def loss_parameters(method: str) -> tuple[str, ...]:
    """The keyword parameters ``get_loss(method, ...)`` accepts."""
    _check_method(method)
    return _SSI_PARAMS if method.endswith("ssi") else _SCALE_ADAPTIVE_PARAMS


def _check_method(method: object) -> None:
    if method not in LOSS_METHODS:
        raise ValueError(f"unknown loss method {method!r}; valid: {', '.join(LOSS_METHODS)}")


def get_loss(method: str, **params: Any) -> LossFunction:
    """The loss called ``method`` with ``params``; parameters left out take their defaults.

    ``scale-adaptive`` / ``sparse-scale-adaptive``: ``ScaleAdaptiveLoss`` with
    ``lambda_sg``, ``epsilon``, ``num_scales``, ``use_absolute``, ``use_inv_depth``.
    ``ssi`` / ``sparse-ssi``: ``SSILoss`` with ``alpha``, ``num_scales``.

    Raises:
        ValueError: an unknown method or parameter (the message lists the valid ones),
            or a parameter value out of range.
    """
    valid = loss_parameters(method)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for loss {method!r}: {', '.join(unknown)}; "
            f"valid: {', '.join(valid)}"
        )
    sparse = method.startswith("sparse-")
    if method.endswith("ssi"):
        return SSILoss(**params, sparse=sparse)
    return ScaleAdaptiveLoss(**params, sparse=sparse)
