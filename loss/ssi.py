"""The baseline: MiDaS' scale-and-shift-invariant (SSI) loss on inverse depth.

Ranftl et al., "Towards Robust Monocular Depth Estimation" (MiDaS), with the scale and
shift estimated by median and mean absolute deviation (their ``ssimae``; ``ssitrim``
without the trimming) and the ``batch-based`` reduction:

    t(x)    = median of x over the image's valid pixels m (the lower one of two)
    s(x)    = mean |x - t(x)| over the same pixels
    n(x)    = (x - t(x)) / s(x)                          (0 where s(x) = 0: x constant)
    r       = m (n(p) - n(g))
    data    = sum |r| / (2 sum m)                                  (over the batch)
    grad_k  = sum over pairs of horizontally or vertically adjacent valid pixels of
              |r_a - r_b|, on every 2^(k-1)-th row and column, / sum m at that scale
    total   = data + alpha * sum_k grad_k

``p`` is the predicted and ``g`` the ground-truth inverse depth (no conversion to depth).
Invariant to ``p -> a p + b`` and ``g -> a g + b`` for any ``a > 0`` (units included: the
trainer may feed inverse depth times ``max_depth``), not for ``a < 0``.

Why not MiDaS' least-squares fit ``(s, t) = argmin sum m (s p + t - g)^2`` (``ssimse`` in
MiDaS, and this module's first version)? With it, this project's small network trained from
scratch did not learn (docs/BENCHMARKS.md, "SSI baseline: why it did not learn"):

- The fitted scale is free to reach 0. On inverse depth in 1/m the gradient-matching term
  outweighs the data term about 17 to 1 at the start (0.034 against 0.002 for an untrained
  network), and while the prediction's fine structure does not match the ground truth's
  it is smallest at a fitted scale of 0: a flat fit, the image explained by the shift
  alone. There the data term's gradient, proportional to the fitted scale, vanishes, and
  the gradient term's stays small. Seed 1 of the benchmark stalled there from step 50 on
  (correlation of prediction and ground truth 0.00, fitted scales about 1e-3).
- The balance of the two terms depends on the units: the data term is quadratic in the
  residual, the gradient term linear. Times ``max_depth`` (80) the data term outweighs
  the gradient term instead (12.7 against 2.7), and the same network learns, but:
- The fitted scale may be negative: a network that learns depth instead of inverse depth
  (an inverted map) is fitted as well; median-scaled abs_rel then exceeds 1.

Median and MAD fix all three with the scale ``1 / s(p)``, which is positive and follows
the prediction's own spread instead of its agreement with the ground truth (aligned
abs_rel over 3 seeds: 0.336 +- 0.056 before, 0.254 +- 0.052 after, scale-adaptive
0.246 +- 0.019; untrained 0.408). Clamping the fitted scale at >= 0 alone does not
help: an image whose fit would be negative then gets no gradient at all. This is still
MiDaS' loss in spirit (their paper defines both estimators); G2-MonoDepth's relative term
is the same idea with mean instead of median, in depth by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from loss.names import LossMethod, loss_metric_names
from loss.ops import masked_sum, safe_divide, select
from loss.output import LossOutput
from loss.validation import check_bool, check_inputs, check_non_negative, check_num_scales

__all__ = ["SSILoss"]


def masked_median(x: torch.Tensor, valid: torch.Tensor | None, count: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] -> [B,1,1,1]: per-image lower median of ``x`` over the valid pixels.

    x: finite everywhere; valid: [B,1,H,W] bool or None (every pixel); count: [B,1,1,1]
    valid pixels per image. An image without a valid pixel gets 0. The gradient goes to
    the median pixel (as ``torch.median``'s).
    """
    flat = x.flatten(1)
    if valid is None:
        middle = torch.kthvalue(flat, (flat.shape[1] + 1) // 2, dim=1).values
        return middle.view(-1, 1, 1, 1)
    # Invalid pixels rank last; the k-th smallest of the n valid ones (k = ceil(n / 2)),
    # image by image: k differs between images, and this is 3-4x faster on CPU than one
    # sort of the batch. (One device synchronisation, for the k's.)
    flat = torch.where(valid.flatten(1), flat, torch.inf)
    n = count.flatten()
    ks = ((n + 1) // 2).to(torch.long).tolist()
    middle = torch.stack(
        [torch.kthvalue(row, max(k, 1)).values for row, k in zip(flat, ks, strict=True)]
    )
    return torch.where(n > 0, middle, 0.0).view(-1, 1, 1, 1)


def _normalise(
    x: torch.Tensor, valid: torch.Tensor | None, weight: torch.Tensor | None, count: torch.Tensor
) -> torch.Tensor:
    """[B,1,H,W] ``(x - t(x)) / s(x)``: median and mean absolute deviation over the valid
    pixels; finite everywhere (invalid pixels meaningless)."""
    centred = x - masked_median(x, valid, count)
    mad = safe_divide(masked_sum(centred.abs(), weight), count)
    # mad = 0 only when every valid value equals the median: centred is 0 there.
    return safe_divide(centred, mad)


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
    """MiDaS' scale-and-shift-invariant loss (median / MAD alignment, see the module
    docstring); immutable, a call changes nothing.

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
    def method(self) -> LossMethod:
        """The packnet-style method name: ``ssi`` or ``sparse-ssi``."""
        return "sparse-ssi" if self.sparse else "ssi"

    def metric_names(self, with_mask: bool) -> tuple[str, ...]:
        """The metric names of a call, in order (the same with or without a mask;
        ``loss.names.loss_metric_names``)."""
        return loss_metric_names(self.method, num_scales=self.num_scales, with_mask=with_mask)

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
        res = _normalise(select(pred, valid, 0.0), valid, weight, count)
        res = res - _normalise(select(gt, valid, 0.0), valid, weight, count)
        if weight is not None:
            res = res * weight
        metrics: dict[str, torch.Tensor] = {}
        data = safe_divide(res.abs().sum(), 2 * count.sum())
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
