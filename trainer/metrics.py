"""Depth metrics as packnet-sfm evaluates them (``compute_depth_metrics``).

Per image: the predicted depth is resized to the ground truth's size (bilinear,
``align_corners=True`` as packnet-sfm's ``scale_depth``); valid pixels are those with
``min_depth < gt < max_depth``, inside the Garg crop when asked; with median scaling the
prediction is multiplied by ``median(gt) / median(pred)`` over the valid pixels; then it
is clamped to ``[min_depth, max_depth]`` and

- ``abs_rel = mean(|gt - pred| / gt)``, ``sq_rel = mean((gt - pred)^2 / gt)``,
- ``rmse = sqrt(mean((gt - pred)^2))``, ``rmse_log = sqrt(mean((log gt - log pred)^2))``,
- ``a1, a2, a3`` = fraction of pixels with ``max(gt/pred, pred/gt) < 1.25, 1.25^2, 1.25^3``.

Medians are ``torch.median``'s: the lower of the two middle values for an even count
(as in packnet-sfm; numpy would average them).

Differences from packnet-sfm, on purpose: the batch average is over images that have
valid pixels (packnet-sfm skips such images but still divides by the batch size), and
everything is computed in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "METRIC_NAMES",
    "DepthMetricAccumulator",
    "depth_metrics_per_image",
    "garg_crop_mask",
]

METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")

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


def depth_metrics_per_image(
    pred_depth: torch.Tensor,
    gt_depth: torch.Tensor,
    *,
    min_depth: float,
    max_depth: float,
    garg_crop: bool = False,
    median_scaling: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Metrics of each image of a batch.

    Args:
        pred_depth: [B,1,h,w] predicted depth (m); resized to the ground truth's size.
        gt_depth: [B,1,H,W] ground-truth depth (m); 0 (or anything outside
            ``(min_depth, max_depth)``) = no measurement.
        min_depth, max_depth: evaluated depth range (m).
        garg_crop: only evaluate inside the Garg crop.
        median_scaling: scale each prediction by ``median(gt) / median(pred)``.

    Returns:
        values: [B,7] float64, columns in ``METRIC_NAMES`` order; rows of images without
            a valid pixel are NaN.
        valid: [B] bool, whether the image had at least one valid pixel.
    """
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
    count = mask.sum(dim=1)  # [B]
    valid = count > 0

    if median_scaling:
        nan = torch.full_like(gt, math.nan)
        gt_median = torch.where(mask, gt, nan).nanmedian(dim=1, keepdim=True).values
        pred_median = torch.where(mask, pred, nan).nanmedian(dim=1, keepdim=True).values
        pred = pred * (gt_median / pred_median)
    pred = pred.clamp(min_depth, max_depth)

    # Invalid pixels never enter arithmetic: they are replaced by a harmless 1 m and
    # zeroed before the sums.
    one = torch.ones_like(gt)
    gt, pred = torch.where(mask, gt, one), torch.where(mask, pred, one)
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
    values = torch.where(valid[:, None], means, torch.full_like(means, math.nan))
    return values, valid


class DepthMetricAccumulator:
    """Averages per-image depth metrics, raw and median-scaled, over many batches.

    ``compute()`` returns the seven ``METRIC_NAMES``, the same with a ``_med`` suffix
    (median-scaled), and ``num_images`` (images with at least one valid pixel). Images
    without a valid pixel are skipped. When no image had one, every metric is NaN: the
    numbers are undefined, and raising would end a trial (or a whole sweep) over a
    validation split that merely lacks ground truth in range, where a NaN in the
    tracking UI with ``num_images == 0`` says what happened.
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
        # Sums of per-image metrics (float64, CPU): raw, median-scaled.
        self._sums = (
            torch.zeros(len(METRIC_NAMES), dtype=torch.float64),
            torch.zeros(len(METRIC_NAMES), dtype=torch.float64),
        )
        self._count = 0

    @property
    def num_images(self) -> int:
        """Images with at least one valid pixel seen so far."""
        return self._count

    def update(self, pred_depth: torch.Tensor, gt_depth: torch.Tensor) -> None:
        """Add a batch: pred_depth [B,1,h,w] and gt_depth [B,1,H,W] in metres."""
        for sums, median_scaling in zip(self._sums, (False, True), strict=True):
            values, valid = depth_metrics_per_image(
                pred_depth,
                gt_depth,
                min_depth=self.min_depth,
                max_depth=self.max_depth,
                garg_crop=self.garg_crop,
                median_scaling=median_scaling,
            )
            sums += values[valid].sum(dim=0).cpu()
        self._count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        """Averages so far: ``{name: value, name_med: value, "num_images": n}``."""
        result: dict[str, float] = {}
        for sums, suffix in zip(self._sums, ("", "_med"), strict=True):
            for name, total in zip(METRIC_NAMES, sums.tolist(), strict=True):
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
