"""The baseline: MiDaS' scale-and-shift-invariant (SSI) loss on inverse depth.

Ranftl et al., "Towards Robust Monocular Depth Estimation" (MiDaS), with its
``batch-based`` reduction:

    (s, t)  = argmin sum m (s p + t - g)^2        per image, over the valid pixels m
    r       = m (s p + t - g)
    data    = sum r^2 / (2 sum m)                                  (over the batch)
    grad_k  = sum over pairs of horizontally or vertically adjacent valid pixels of
              |r_a - r_b|, on every 2^(k-1)-th row and column, / sum m at that scale
    total   = data + alpha * sum_k grad_k

``p`` is the predicted and ``g`` the ground-truth inverse depth (no conversion to depth).
The least-squares solve uses centred sums (numerically safer than MiDaS' 2x2 normal
equations, same solution); where the prediction is constant over the valid pixels, the
scale is 0 and the shift the mean of ``g`` (the least-squares fit; MiDaS returns s = t = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from loss.ops import masked_sum, safe_divide, select
from loss.output import LossOutput
from loss.validation import check_bool, check_inputs, check_non_negative, check_num_scales

__all__ = ["SSILoss"]


def _fit_residual(
    pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None, count: torch.Tensor
) -> torch.Tensor:
    """[B,1,H,W] residual ``s p + t - g`` of the per-image least-squares fit, 0 where
    invalid. pred, gt: finite everywhere; weight: [B,1,H,W] 0/1 valid pixels or None;
    count: [B,1,1,1] valid pixels per image."""
    pred_mean = safe_divide(masked_sum(pred, weight), count)
    pc = pred - pred_mean
    gc = gt - safe_divide(masked_sum(gt, weight), count)
    sxx = masked_sum(pc * pc, weight)
    sxy = masked_sum(pc * gc, weight)
    # A spread of the prediction at rounding level (relative to sum p^2) is no spread:
    # the prediction is constant and the fit is the mean of g.
    tiny = (4 * torch.finfo(pred.dtype).eps) ** 2
    spread = sxx > tiny * (sxx + count * pred_mean.square())
    scale = torch.where(spread, sxy / torch.where(spread, sxx, 1.0), 0.0)
    res = scale * pc - gc  # = s p + t - g with t = mean(g) - s mean(p)
    return res if weight is None else res * weight


def _gradient_sum(res: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """[B,1,h,w] -> []: sum of |differences| of neighbouring pixels that are both valid."""
    dx = (res[..., :, 1:] - res[..., :, :-1]).abs()
    dy = (res[..., 1:, :] - res[..., :-1, :]).abs()
    if weight is not None:
        dx = dx * (weight[..., :, 1:] * weight[..., :, :-1])
        dy = dy * (weight[..., 1:, :] * weight[..., :-1, :])
    return dx.sum() + dy.sum()


@dataclass(frozen=True)
class SSILoss:
    """MiDaS' scale-and-shift-invariant loss; immutable, a call changes nothing.

    Args:
        alpha: weight of the gradient-matching term, >= 0 (MiDaS: 0.5).
        num_scales: scales of the gradient-matching term, >= 1 (MiDaS: 4).
        sparse: method ``sparse-ssi``: only pixels with ``gt_inv > 0`` count.

    Metrics, in this order: ``ssi/data``, ``gradient/scale_1`` .. ``gradient/scale_K``,
    ``ssi/gradient`` (their sum), ``total_loss``.
    """

    alpha: float = 0.5
    num_scales: int = 4
    sparse: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_non_negative("alpha", self.alpha))
        check_num_scales(self.num_scales)
        check_bool("sparse", self.sparse)

    @property
    def method(self) -> str:
        """The packnet-style method name: ``ssi`` or ``sparse-ssi``."""
        return "sparse-ssi" if self.sparse else "ssi"

    def metric_names(self, with_mask: bool) -> tuple[str, ...]:
        """The metric names of a call, in order (the same with or without a mask)."""
        scales = (f"gradient/scale_{k}" for k in range(1, self.num_scales + 1))
        return ("ssi/data", *scales, "ssi/gradient", "total_loss")

    def __call__(
        self,
        pred_inv: torch.Tensor,
        gt_inv: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> LossOutput:
        """The loss of a batch.

        Args:
            pred_inv: [B,1,H,W] predicted inverse depth, > 0, float32 or float64.
            gt_inv: [B,1,H,W] ground-truth inverse depth, >= 0 (0 = no measurement).
            mask: [B,1,H,W] bool or 0/1, or None: pixels that count.

        Returns:
            ``LossOutput(total, metrics)`` with the metrics of the class docstring.

        Raises:
            ValueError: wrong shape, dtype, device or values.
        """
        pred, gt, valid = check_inputs(pred_inv, gt_inv, mask)
        if self.sparse:
            has_gt = gt > 0
            valid = has_gt if valid is None else valid & has_gt
        batch, _, height, width = pred.shape
        dtype, device = pred.dtype, pred.device
        if valid is None:
            weight = None
            count = torch.full((batch, 1, 1, 1), float(height * width), dtype=dtype, device=device)
        else:
            weight = valid.to(dtype)
            count = weight.sum(dim=(2, 3), keepdim=True)

        # Invalid pixels get a neutral 0 before any arithmetic (see loss.ops).
        res = _fit_residual(select(pred, valid, 0.0), select(gt, valid, 0.0), weight, count)
        metrics: dict[str, torch.Tensor] = {}
        data = safe_divide((res * res).sum(), 2 * count.sum())
        metrics["ssi/data"] = data

        gradient = torch.zeros((), dtype=dtype, device=device)
        for k in range(1, self.num_scales + 1):
            step = 2 ** (k - 1)
            res_k = res[..., ::step, ::step]
            weight_k = None if weight is None else weight[..., ::step, ::step]
            if weight_k is None:
                count_k = torch.full((), float(res_k.numel()), dtype=dtype, device=device)
            else:
                count_k = weight_k.sum()
            term = safe_divide(_gradient_sum(res_k, weight_k), count_k)
            metrics[f"gradient/scale_{k}"] = term
            gradient = gradient + term
        metrics["ssi/gradient"] = gradient

        total = data + self.alpha * gradient
        metrics["total_loss"] = total
        return LossOutput(total, {name: value.detach() for name, value in metrics.items()})
