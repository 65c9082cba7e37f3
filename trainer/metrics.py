"""Depth metrics as packnet-sfm evaluates them, raw, median-scaled and scale-and-shift
aligned (``compute_depth_metrics`` and the MiDaS/DPT evaluation).

Per image: the predicted depth is resized to the ground truth's size (bilinear,
``align_corners=True`` as packnet-sfm's ``scale_depth``); valid pixels are those with
``min_depth < gt < max_depth``, inside the Garg crop when asked. The prediction is then
aligned to the ground truth in one of four ways (:data:`ALIGNMENTS`):

- ``none``: as predicted (metric depth);
- ``median`` (suffix ``_med``): multiplied by ``median(gt) / median(pred)`` over the valid
  pixels (packnet-sfm's median scaling);
- ``scale_shift`` (suffix ``_align``): as MiDaS / DPT evaluate relative depth, in inverse
  depth: ``(s, t) = argmin sum (s / pred + t - 1 / gt)^2`` over the valid pixels (least
  squares, with ``s >= 0``: an inverted map fits as flat, ``s = 0``, instead of scoring
  like the right one), the aligned inverse depth ``s / pred + t`` clamped below at
  ``1 / max_depth`` (DPT caps non-positive disparity this way) and inverted back to depth;
- ``scale_shift_depth`` (suffix ``_align_depth``): the same fit in depth,
  ``(s, t) = argmin sum (s pred + t - gt)^2`` over the valid pixels, ``s >= 0``; the
  aligned depth ``s pred + t`` is clamped to ``[min_depth, max_depth]`` below.

Which alignment forgives what: the inverse-depth fit scores an error affine in inverse
depth (``1/pred = a/gt + b``, what an inverse-domain loss such as SSI leaves) as 0, but a
prediction exact up to a shift of 1 m in depth as 0.039 abs_rel (3 m: 0.092) on the
default spec's validation scenes; the depth fit scores any depth-affine error as 0 and
``1/pred = 0.5/gt + 0.02`` as 0.199. Neither is neutral between losses that work in depth
and in inverse depth, so both are reported (docs/BENCHMARKS.md, "The objective's
alignment"; README, "The objective").

Then the prediction is clamped to ``[min_depth, max_depth]`` and

- ``abs_rel = mean(|gt - pred| / gt)``, ``sq_rel = mean((gt - pred)^2 / gt)``,
- ``rmse = sqrt(mean((gt - pred)^2))``, ``rmse_log = sqrt(mean((log gt - log pred)^2))``,
- ``a1, a2, a3`` = fraction of pixels with ``max(gt/pred, pred/gt) < 1.25, 1.25^2, 1.25^3``.

Medians are ``torch.median``'s: the lower of the two middle values for an even count
(as in packnet-sfm; numpy would average them). The least-squares fit uses centred sums;
where the prediction is constant over the valid pixels the fit is ``s = 0`` and ``t`` the
mean of ``1 / gt`` (or of ``gt`` in depth; the aligned prediction is the same for every
least-squares solution).

Differences from packnet-sfm, on purpose: the batch average is over images that have
valid pixels (packnet-sfm skips such images but still divides by the batch size), and
everything is computed in float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from trainer.metric_names import ALIGNMENTS, METRIC_NAMES, Alignment, metric_keys

__all__ = [
    "ALIGNMENTS",
    "METRIC_NAMES",
    "Alignment",
    "DepthMetricAccumulator",
    "aligned_depth",
    "alignment_of",
    "depth_metrics_per_image",
    "garg_crop_mask",
    "metric_keys",
]

# Garg et al.'s crop of KITTI images, as fractions of the ground truth's height and width.
_GARG_ROWS = (0.40810811, 0.99189189)
_GARG_COLS = (0.03594771, 0.96405229)


def garg_crop_mask(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """[height,width] bool mask of the Garg crop.

    Rows ``int(0.40810811 H) .. int(0.99189189 H) - 1`` and columns
    ``int(0.03594771 W) .. int(0.96405229 W) - 1`` (truncated, as in packnet-sfm).
    """
    y1, y2 = int(_GARG_ROWS[0] * height), int(_GARG_ROWS[1] * height)
    x1, x2 = int(_GARG_COLS[0] * width), int(_GARG_COLS[1] * width)
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[y1:y2, x1:x2] = True
    return mask


class _Pixels(NamedTuple):
    """A batch ready for the metrics: ``[B,N]`` float64 each, ``mask`` bool."""

    pred: torch.Tensor  # predicted depth resized to the ground truth
    gt: torch.Tensor  # ground-truth depth
    mask: torch.Tensor  # valid pixels


def _pixels(
    pred_depth: torch.Tensor,
    gt_depth: torch.Tensor,
    min_depth: float,
    max_depth: float,
    garg_crop: bool,
) -> _Pixels:
    _check_shapes(pred_depth, gt_depth)
    if not 0.0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
    gt = gt_depth.detach().to(torch.float64)
    pred = pred_depth.detach().to(device=gt.device, dtype=torch.float64)
    height, width = gt.shape[-2:]
    if pred.shape[-2:] != gt.shape[-2:]:
        pred = F.interpolate(pred, size=(height, width), mode="bilinear", align_corners=True)
    gt, pred = gt.flatten(1), pred.flatten(1)  # [B,N]
    mask = (gt > min_depth) & (gt < max_depth)
    if garg_crop:
        mask &= garg_crop_mask(height, width, gt.device).flatten()
    return _Pixels(pred, gt, mask)


def _median_scaled(px: _Pixels) -> torch.Tensor:
    """[B,N] prediction times ``median(gt) / median(pred)`` over each image's valid pixels."""
    nan = torch.full_like(px.gt, math.nan)
    gt_median = torch.where(px.mask, px.gt, nan).nanmedian(dim=1, keepdim=True).values
    pred_median = torch.where(px.mask, px.pred, nan).nanmedian(dim=1, keepdim=True).values
    return px.pred * (gt_median / pred_median)


class _Fit(NamedTuple):
    """A per-image least-squares line ``y = scale (x - x_mean) + y_mean``: [B,1] each."""

    scale: torch.Tensor
    x_mean: torch.Tensor
    y_mean: torch.Tensor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """[B,N] the fitted line at ``x`` (every pixel, not only the fitted ones)."""
        return self.scale * (x - self.x_mean) + self.y_mean  # = s x + t


def _least_squares(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> _Fit:
    """``(s, t) = argmin sum_mask (s x + t - y)^2`` per image, ``s`` held >= 0; ``x`` and
    ``y`` [B,N] finite where ``mask`` [B,N] (bool) holds (elsewhere they never enter)."""
    weight = mask.to(torch.float64)
    one = torch.ones_like(x)
    x, y = torch.where(mask, x, one), torch.where(mask, y, one)
    count = weight.sum(dim=1, keepdim=True).clamp(min=1.0)
    x_mean = (weight * x).sum(dim=1, keepdim=True) / count
    xc = x - x_mean
    y_mean = (weight * y).sum(dim=1, keepdim=True) / count
    sxx = (weight * xc * xc).sum(dim=1, keepdim=True)
    sxy = (weight * xc * (y - y_mean)).sum(dim=1, keepdim=True)
    # A spread at rounding level is no spread: a constant prediction fits as mean(y).
    spread = sxx > (4 * torch.finfo(torch.float64).eps) ** 2 * (weight * x**2).sum(
        dim=1, keepdim=True
    )
    # The scale is held non-negative: an inverted map (near drawn far) must not score as
    # well as the right one, so a negative fit becomes the best flat map, mean(y).
    scale = torch.where(spread, sxy / torch.where(spread, sxx, 1.0), 0.0).clamp(min=0.0)
    return _Fit(scale, x_mean, y_mean)


def _scale_shift_aligned(px: _Pixels, max_depth: float) -> torch.Tensor:
    """[B,N] depth ``1 / max(s / pred + t, 1 / max_depth)`` with ``(s, t)`` the per-image
    least-squares fit of ``1 / pred`` to ``1 / gt`` over the valid pixels."""
    # Invalid pixels (and a non-positive prediction there) never enter the sums.
    one = torch.ones_like(px.gt)
    pred_inv = 1.0 / torch.where(px.mask, px.pred, one)
    gt_inv = 1.0 / torch.where(px.mask, px.gt, one)
    fit = _least_squares(pred_inv, gt_inv, px.mask)
    # The fit applied to every pixel with a positive prediction (a preview shows the whole
    # image, trainer.previews); NaN where the prediction is not positive.
    every_inv = 1.0 / torch.where(px.pred > 0, px.pred, math.nan)
    return 1.0 / fit.apply(every_inv).clamp(min=1.0 / max_depth)


def _scale_shift_depth_aligned(px: _Pixels) -> torch.Tensor:
    """[B,N] depth ``s pred + t`` with ``(s, t)`` the per-image least-squares fit of
    ``pred`` to ``gt`` over the valid pixels, applied to every pixel (a preview shows the
    whole image); clamped to the range by the metrics."""
    return _least_squares(px.pred, px.gt, px.mask).apply(px.pred)


def _metric_values(
    pred: torch.Tensor, px: _Pixels, min_depth: float, max_depth: float
) -> torch.Tensor:
    """[B,7] metrics of the [B,N] aligned prediction ``pred``; NaN rows for images without
    a valid pixel."""
    mask = px.mask
    count = mask.sum(dim=1)  # [B]
    pred = pred.clamp(min_depth, max_depth)
    # Invalid pixels never enter arithmetic: they are replaced by a harmless 1 m and
    # zeroed before the sums.
    one = torch.ones_like(px.gt)
    gt, pred = torch.where(mask, px.gt, one), torch.where(mask, pred, one)
    diff = gt - pred
    ratio = torch.maximum(gt / pred, pred / gt)
    per_pixel = [
        diff.abs() / gt,
        diff**2 / gt,
        diff**2,
        (gt.log() - pred.log()) ** 2,
        (ratio < 1.25).to(torch.float64),
        (ratio < 1.25**2).to(torch.float64),
        (ratio < 1.25**3).to(torch.float64),
    ]
    zero = torch.zeros((), dtype=torch.float64, device=gt.device)
    denominator = count.clamp(min=1).to(torch.float64)
    means = torch.stack(
        [torch.where(mask, term, zero).sum(dim=1) / denominator for term in per_pixel], dim=1
    )  # [B,7]
    means[:, 2:4] = means[:, 2:4].sqrt()  # rmse, rmse_log
    return torch.where((count > 0)[:, None], means, torch.full_like(means, math.nan))


def _aligned(px: _Pixels, alignment: Alignment, max_depth: float) -> torch.Tensor:
    if alignment == "none":
        return px.pred
    if alignment == "median":
        return _median_scaled(px)
    if alignment == "scale_shift":
        return _scale_shift_aligned(px, max_depth)
    if alignment == "scale_shift_depth":
        return _scale_shift_depth_aligned(px)
    raise ValueError(f"unknown alignment {alignment!r}; valid: {', '.join(ALIGNMENTS)}")


def depth_metrics_per_image(
    pred_depth: torch.Tensor,
    gt_depth: torch.Tensor,
    *,
    min_depth: float,
    max_depth: float,
    garg_crop: bool = False,
    alignment: Alignment = "none",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Metrics of each image of a batch.

    Args:
        pred_depth: [B,1,h,w] predicted depth (m), > 0; resized to the ground truth's size.
        gt_depth: [B,1,H,W] ground-truth depth (m); 0 (or anything outside
            ``(min_depth, max_depth)``) = no measurement.
        min_depth, max_depth: evaluated depth range (m).
        garg_crop: only evaluate inside the Garg crop.
        alignment: ``none``, ``median`` (scale by ``median(gt) / median(pred)``),
            ``scale_shift`` (least-squares scale and shift in inverse depth) or
            ``scale_shift_depth`` (the same in depth); see the module docstring.

    Returns:
        values: [B,7] float64, columns in ``METRIC_NAMES`` order; rows of images without
            a valid pixel are NaN.
        valid: [B] bool, whether the image had at least one valid pixel.
    """
    px = _pixels(pred_depth, gt_depth, min_depth, max_depth, garg_crop)
    pred = _aligned(px, alignment, max_depth)
    return _metric_values(pred, px, min_depth, max_depth), px.mask.any(dim=1)


# ---------------------------------------------------------------- aligned predictions
# The prediction as a metric sees it, for the previews (trainer.previews).


def alignment_of(metric: str) -> Alignment:
    """The alignment of a metric by its name: ``val/abs_rel_align`` -> ``scale_shift``,
    ``val/rmse_med`` -> ``median``, anything else (``val/abs_rel``, ``train/...``) ->
    ``none``."""
    name = metric.rsplit("/", 1)[-1]
    for alignment, suffix in ALIGNMENTS.items():
        if suffix and name.endswith(suffix) and name.removesuffix(suffix) in METRIC_NAMES:
            return alignment
    return "none"


def aligned_depth(
    pred_depth: torch.Tensor,
    gt_depth: torch.Tensor,
    *,
    min_depth: float,
    max_depth: float,
    garg_crop: bool = False,
    alignment: Alignment = "none",
) -> torch.Tensor:
    """The prediction aligned to the ground truth as :func:`depth_metrics_per_image`
    aligns it before scoring (fitted on the same valid pixels, applied to every pixel),
    not yet clamped to ``[min_depth, max_depth]``.

    Args:
        pred_depth: [B,1,h,w] predicted depth (m), > 0; resized to the ground truth's size.
        gt_depth: [B,1,H,W] ground-truth depth (m), 0 = no measurement.

    Returns:
        [B,1,H,W] float64 depth (m) (``scale_shift``: NaN where the prediction is not
        positive).
    """
    px = _pixels(pred_depth, gt_depth, min_depth, max_depth, garg_crop)
    return _aligned(px, alignment, max_depth).reshape(gt_depth.shape)


class DepthMetricAccumulator:
    """Averages per-image depth metrics, raw, median-scaled and aligned, over many batches.

    ``compute()`` returns the seven ``METRIC_NAMES``, the same with a ``_med`` suffix
    (median-scaled), the same with an ``_align`` suffix (least-squares scale and shift in
    inverse depth), the same with an ``_align_depth`` suffix (least-squares scale and
    shift in depth) and ``num_images`` (images with at least one valid pixel), in the order
    of :func:`metric_keys`. Images without a valid pixel are skipped. When no image had
    one, every metric is NaN: the numbers are undefined, and raising would end a trial (or
    a whole sweep) over a validation split that merely lacks ground truth in range, where
    a NaN in the tracking UI with ``num_images == 0`` says what happened.
    """

    def __init__(self, min_depth: float, max_depth: float, garg_crop: bool = False) -> None:
        if not 0.0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.garg_crop = garg_crop
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        # Sums of per-image metrics (float64, CPU), one row per alignment.
        self._sums = torch.zeros(len(ALIGNMENTS), len(METRIC_NAMES), dtype=torch.float64)
        self._count = 0

    @property
    def num_images(self) -> int:
        """Images with at least one valid pixel seen so far."""
        return self._count

    def update(self, pred_depth: torch.Tensor, gt_depth: torch.Tensor) -> None:
        """Add a batch: pred_depth [B,1,h,w] (> 0) and gt_depth [B,1,H,W] in metres."""
        px = _pixels(pred_depth, gt_depth, self.min_depth, self.max_depth, self.garg_crop)
        valid = px.mask.any(dim=1)
        for row, alignment in enumerate(ALIGNMENTS):
            pred = _aligned(px, alignment, self.max_depth)
            values = _metric_values(pred, px, self.min_depth, self.max_depth)
            self._sums[row] += values[valid].sum(dim=0).cpu()
        self._count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        """Averages so far: ``{name: v, name_med: v, name_align: v, name_align_depth: v,
        "num_images": n}``."""
        result: dict[str, float] = {}
        for sums, suffix in zip(self._sums.tolist(), ALIGNMENTS.values(), strict=True):
            for name, total in zip(METRIC_NAMES, sums, strict=True):
                result[name + suffix] = total / self._count if self._count else math.nan
        result["num_images"] = float(self._count)
        return result


def _check_shapes(pred_depth: torch.Tensor, gt_depth: torch.Tensor) -> None:
    if pred_depth.dim() != 4 or pred_depth.shape[1] != 1:
        raise ValueError(f"pred_depth must be [B,1,h,w], got {list(pred_depth.shape)}")
    if gt_depth.dim() != 4 or gt_depth.shape[1] != 1:
        raise ValueError(f"gt_depth must be [B,1,H,W], got {list(gt_depth.shape)}")
    if pred_depth.shape[0] != gt_depth.shape[0]:
        raise ValueError(
            f"pred_depth and gt_depth hold different batch sizes: "
            f"{pred_depth.shape[0]} and {gt_depth.shape[0]}"
        )
