"""``get_loss``: a loss from its packnet-style method name and parameters."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from loss.names import LossMethod, is_sparse_method, is_ssi_method, method_params
from loss.output import LossOutput
from loss.scale_adaptive import ScaleAdaptiveLoss
from loss.ssi import SSILoss

__all__ = ["LossFunction", "get_loss"]


class LossFunction(Protocol):
    """What ``get_loss`` returns: ``loss_fn(pred_inv, gt_inv, mask=None) -> LossOutput``."""

    @property
    def method(self) -> LossMethod: ...

    def metric_names(self, with_mask: bool) -> tuple[str, ...]: ...

    def __call__(
        self, pred_inv: torch.Tensor, gt_inv: torch.Tensor, mask: torch.Tensor | None = None
    ) -> LossOutput: ...


def get_loss(method: str, **params: Any) -> LossFunction:
    """The loss called ``method`` with ``params``; parameters left out take their defaults.

    ``scale-adaptive`` / ``sparse-scale-adaptive``: ``ScaleAdaptiveLoss`` with
    ``lambda_sg``, ``epsilon``, ``num_scales``, ``use_absolute``, ``use_inv_depth``,
    ``gradient_normalization``, ``min_depth``, ``max_depth`` (the depth range in metres,
    default 1 and 80, that makes the absolute term unit-free: ``loss.units``).
    ``ssi`` / ``sparse-ssi``: ``SSILoss`` with ``alpha``, ``num_scales`` (invariant to
    units: no depth range). The names are ``loss.names.method_params(method)``.

    Inputs are inverse depth in 1/m as a network predicts it; which pixels and terms a
    mask turns on is in ``loss.scale_adaptive``'s docstring.

    Raises:
        ValueError: an unknown method or parameter (the message lists the valid ones),
            or a parameter value out of range.
    """
    valid = method_params(method)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for loss {method!r}: {', '.join(unknown)}; "
            f"valid: {', '.join(valid)}"
        )
    sparse = is_sparse_method(method)
    if is_ssi_method(method):
        return SSILoss(**params, sparse=sparse)
    return ScaleAdaptiveLoss(**params, sparse=sparse)
