"""The Scale-Adaptive Loss of G2-MonoDepth, dense and sparse (see DESIGN.md, "The loss").

    d       = 1/(c x) (0 where x <= 0) = depth / max_depth,      c = max_depth
            or c x = inverse depth * min_depth with use_inv_depth,  c = min_depth
    m       = valid pixels: dense: all (or mask); sparse: gt_inv > 0 (and mask)
    n(d)    = (d - mu) / (s + epsilon), mu and s = mean and mean absolute deviation of d
              over the image's valid pixels
    r       = m * (n(pred) - n(gt))
    rel     = sum |r| / sum m                                      (over the batch)
    abs     = sum m |pred_d - gt_d| / sum m      when use_absolute and (mask or sparse)
    S_k     = sum(|Sobel_x r_k| + |Sobel_y r_k|),  r_k = r resized by 1/2^(k-1)
    g_k     = S_k / N_k,  loss_sg = mean_k g_k        gradient_normalization "per-scale"
    g_k     = S_k / N_1,  loss_sg = sum_k g_k         gradient_normalization "full-resolution"
    total   = rel + abs + lambda_sg * loss_sg

    N_k     = pixels at scale k (dense: B h_k w_k) or, sparse, sum m * h_k w_k / (H W)
              (the valid fraction carried to scale k); N_1 = B H W or sum m.

That is ``gradient_window`` "zero-filled" (the default, the seed's). With "valid" the
gradient term only sees valid neighbourhoods:

    r_k     = per 2^(k-1) x 2^(k-1) block, the mean of r over its valid pixels; m_k = the
              block holds one (avg_pool(r m) / avg_pool(m), valid where avg_pool(m) > 0)
    S_k     = sum(|Sobel_x r_k| + |Sobel_y r_k|) over the pixels whose whole 3x3 window
              is valid in m_k (no padding: windows past the border are left out too)
    V_k     = the number of such windows (over the batch)
    g_k     = S_k / V_k                                   "per-scale"
    g_k     = S_k / V_k * h_k w_k / (H W)                 "full-resolution"
              (a scale without a valid window adds 0)

Why: on sparse ground truth (LiDAR scan lines, one pixel in eight on a row) the zero-filled
residual has an edge at every measured pixel: Sobel there is about 16 |r| per isolated
pixel, so ``L_sg`` is about 16 times the relative term and ``lambda_sg`` re-weights that term
instead of weighing gradients (docs/BENCHMARKS.md, "Sparse ground truth"). With "valid" a
constant residual on the scan lines gives 0. The full-resolution scale of single scan
lines has no valid 3x3 window at all; the gradient then comes from the coarse scales,
where blocks gather points of several lines. On dense data with every pixel valid the two
agree away from the image border at scales 1 and 2 (a 2x2 block mean is the bilinear
half-size resize for even sizes); from scale 3 on, "valid" averages the whole block where
the bilinear resize reads 2x2 of its pixels.

Units (``loss.units``): the inputs are inverse depth in 1/m; the depth range
``[min_depth, max_depth]`` (m, default 1 and 80) puts the working domain ``d`` in
``[min_depth/max_depth, 1]``, so the absolute term is unit-free and ``lambda_sg`` means
the same in both modes and in every trainer. The relative and gradient terms do not
depend on it (up to ``epsilon``, which is added to the deviation of ``d``).
``max_depth = 1`` keeps depth in metres.

The mask decides which pixels count and whether the absolute term is on:

    method                  mask      valid pixels m       absolute term   N_k counts
    scale-adaptive          none      every pixel          off             pixels
    scale-adaptive          given     mask                 on              pixels
    sparse-scale-adaptive   none      gt_inv > 0           on              valid pixels
    sparse-scale-adaptive   given     gt_inv > 0 and mask  on              valid pixels

("on" with ``use_absolute``, the default.) Without a mask the dense method treats
``gt_inv = 0`` as depth 0, so it is for ground truth without holes. salsweep's trainer and
the packnet-sfm adapter (``loss.packnet``) both pass ``mask = gt_inv > 0``.

"per-scale" (the default) is the seed's: every scale is a mean over its own pixels and
the scales are averaged. "full-resolution" is the G2-MonoDepth authors' code
(``WeightedMSGradLoss``): the Sobel sums of all scales added and divided once by the
full-resolution count, not averaged over K, so scale k adds about 1/4^(k-1) of its
per-scale value and loss_sg grows with K but levels off (an untrained network on a
synthetic 64x192 batch, K = 1..5: 7.06, 8.54, 8.96, 9.10, 9.15; per-scale: 7.06, 6.49,
6.55, 7.20, 8.12, following the coarse scales' larger per-pixel gradients). With K = 1
the two agree.

Differences from the seed's code, on purpose (the seed's defects, see seed/README.md):
statistics over valid pixels only, the residual zeroed at invalid pixels before the
gradient operator, no NaN from ``1/0`` or ``inf * 0``, the absolute term reported only when
it is computed, no printing. On dense inputs without a mask the two agree (the depth
range changes nothing there but the weight of ``epsilon``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from loss.names import (
    GRADIENT_NORMALIZATIONS,
    GRADIENT_WINDOWS,
    GradientNormalization,
    GradientWindow,
    LossMethod,
    loss_metric_names,
)
from loss.ops import (
    downscale,
    inv2depth,
    masked_downscale,
    masked_sum,
    normalise,
    safe_divide,
    select,
    sobel_l1,
    valid_window_sobel_l1,
)
from loss.output import LossOutput
from loss.units import DEFAULT_MAX_DEPTH, DEFAULT_MIN_DEPTH, input_scale
from loss.validation import (
    check_bool,
    check_choice,
    check_depth_range,
    check_image_size,
    check_inputs,
    check_non_negative,
    check_num_scales,
)

__all__ = ["ScaleAdaptiveLoss"]


@dataclass(frozen=True)
class ScaleAdaptiveLoss:
    """Scale-Adaptive Loss ``L_sa + lambda_sg * L_sg``; immutable, a call changes nothing.

    Args:
        lambda_sg: weight of the multi-scale gradient term, >= 0.
        epsilon: added to the mean absolute deviation before dividing, >= 0.
        num_scales: scales K of the gradient term, >= 1 (and 2^(K-1) <= min(H, W)).
        use_absolute: add the mean absolute error of the working-domain values over the
            valid pixels; only with a mask or the sparse method (as in the seed; the
            table in the module docstring).
        use_inv_depth: work on inverse depth directly instead of depth.
        min_depth, max_depth: the data's depth range (m), 0 < min_depth < max_depth: the
            working domain is depth / max_depth, or inverse depth x min_depth with
            ``use_inv_depth`` (module docstring, "Units").
        gradient_normalization: ``"per-scale"`` (the seed's: mean over scales of each
            scale's Sobel sum over its own count N_k) or ``"full-resolution"`` (the
            authors' code: sum over scales of the Sobel sums over N_1); module docstring.
        gradient_window: ``"zero-filled"`` (the seed's: Sobel with replicate padding on
            the residual zeroed at invalid pixels, bilinear resizing) or ``"valid"``
            (Sobel only where the whole 3x3 window is valid, each scale a mean over those
            windows, coarse scales the mean of the valid pixels of each block); module
            docstring.
        sparse: method ``sparse-scale-adaptive``: only pixels with ``gt_inv > 0`` count,
            and ``N_k`` follows the valid count instead of the pixel count.

    Metrics, in this order: ``scale_adaptive/relative``, ``scale_adaptive/absolute``
    (only when the absolute term is active), ``gradient/scale_1`` .. ``gradient/scale_K``,
    ``total_loss``, ``loss_sa``, ``loss_sg``.
    """

    lambda_sg: float = 0.5
    epsilon: float = 1e-8
    num_scales: int = 4
    use_absolute: bool = True
    use_inv_depth: bool = False
    gradient_normalization: GradientNormalization = "per-scale"
    gradient_window: GradientWindow = "zero-filled"
    min_depth: float = DEFAULT_MIN_DEPTH
    max_depth: float = DEFAULT_MAX_DEPTH
    sparse: bool = False

    def __post_init__(self) -> None:
        # frozen: normalised values are written once, here, through object.__setattr__.
        object.__setattr__(self, "lambda_sg", check_non_negative("lambda_sg", self.lambda_sg))
        object.__setattr__(self, "epsilon", check_non_negative("epsilon", self.epsilon))
        check_num_scales(self.num_scales)
        check_bool("use_absolute", self.use_absolute)
        check_bool("use_inv_depth", self.use_inv_depth)
        check_choice("gradient_normalization", self.gradient_normalization, GRADIENT_NORMALIZATIONS)
        check_choice("gradient_window", self.gradient_window, GRADIENT_WINDOWS)
        min_depth, max_depth = check_depth_range(self.min_depth, self.max_depth)
        object.__setattr__(self, "min_depth", min_depth)
        object.__setattr__(self, "max_depth", max_depth)
        check_bool("sparse", self.sparse)

    @property
    def method(self) -> LossMethod:
        """The packnet-style method name: ``scale-adaptive`` or ``sparse-scale-adaptive``."""
        return "sparse-scale-adaptive" if self.sparse else "scale-adaptive"

    def metric_names(self, with_mask: bool) -> tuple[str, ...]:
        """The metric names of a call with (``with_mask``) or without a mask, in order
        (``loss.names.loss_metric_names``: torch-free, for the sweep spec's checks)."""
        return loss_metric_names(
            self.method,
            num_scales=self.num_scales,
            use_absolute=self.use_absolute,
            with_mask=with_mask,
        )

    def __call__(
        self,
        pred_inv: torch.Tensor,
        gt_inv: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> LossOutput:
        """The loss of a batch.

        Args:
            pred_inv: [B,1,H,W] predicted inverse depth (1/m), > 0, float32 or float64.
            gt_inv: [B,1,H,W] ground-truth inverse depth (1/m), >= 0 (0 = no measurement).
            mask: [B,1,H,W] bool or 0/1, or None: pixels that count (the module docstring
                says which terms each case turns on).

        Returns:
            ``LossOutput(total, metrics)``: ``total`` a [] tensor with autograd history,
            ``metrics`` detached [] tensors named as in the class docstring.

        Raises:
            ValueError: wrong shape, dtype, device or values, or ``num_scales`` too large
                for the image size.
        """
        pred, gt, valid = check_inputs(pred_inv, gt_inv, mask)
        check_image_size(self.num_scales, pred.shape)
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
        total_count = count.sum()

        # Invalid pixels get a neutral 1 before any arithmetic (see loss.ops); then the
        # unit-free domain (loss.units): the same multiply as the scaled inputs the trainer
        # used to pass, so values and gradients are those of that call, bit for bit.
        pred_d = select(pred, valid, 1.0)
        gt_d = select(gt, valid, 1.0)
        scale = input_scale(self.use_inv_depth, self.min_depth, self.max_depth)
        if scale != 1.0:
            pred_d = pred_d * scale
            gt_d = gt_d * scale
        if not self.use_inv_depth:
            pred_d = torch.reciprocal(pred_d)  # pred > 0: finite
            # Sparse: every valid pixel has gt > 0. Dense: gt = 0 means depth 0 (DESIGN).
            gt_d = torch.reciprocal(gt_d) if self.sparse else inv2depth(gt_d)

        # Normalised once and shared by the relative and the gradient terms.
        diff = normalise(pred_d, weight, count, self.epsilon)
        diff = diff - normalise(gt_d, weight, count, self.epsilon)
        residual = diff if weight is None else diff * weight

        metrics: dict[str, torch.Tensor] = {}
        relative = safe_divide(residual.abs().sum(), total_count)
        metrics["scale_adaptive/relative"] = relative
        loss_sa = relative
        if self.use_absolute and weight is not None:
            error = masked_sum((pred_d - gt_d).abs(), weight).sum()
            absolute = safe_divide(error, total_count)
            metrics["scale_adaptive/absolute"] = absolute
            loss_sa = relative + absolute

        full_resolution = self.gradient_normalization == "full-resolution"
        scale_terms = []
        for k in range(1, self.num_scales + 1):
            if self.gradient_window == "valid":
                term = self._valid_window_term(residual, weight, k, full_resolution)
                metrics[f"gradient/scale_{k}"] = term
                scale_terms.append(term)
                continue
            r_k = downscale(residual, k)
            h_k, w_k = r_k.shape[2], r_k.shape[3]
            if full_resolution:
                h_k, w_k = height, width  # N_1 for every scale
            if self.sparse:
                # sum(m) / 4^(k-1), written as the exact area ratio so that an all-valid
                # sparse batch equals the dense method also when H or W is not divisible.
                n_k = total_count * (h_k * w_k / (height * width))
            else:
                n_k = torch.full((), float(batch * h_k * w_k), dtype=dtype, device=device)
            term = safe_divide(sobel_l1(r_k), n_k)
            metrics[f"gradient/scale_{k}"] = term
            scale_terms.append(term)
        stacked = torch.stack(scale_terms)
        loss_sg = stacked.sum() if full_resolution else stacked.mean()

        total = loss_sa + self.lambda_sg * loss_sg
        metrics["total_loss"] = total
        metrics["loss_sa"] = loss_sa
        metrics["loss_sg"] = loss_sg
        return LossOutput(total, {name: value.detach() for name, value in metrics.items()})

    @staticmethod
    def _valid_window_term(
        residual: torch.Tensor, weight: torch.Tensor | None, k: int, full_resolution: bool
    ) -> torch.Tensor:
        """g_k of ``gradient_window`` "valid" (module docstring): residual [B,1,H,W], 0 at
        invalid pixels; weight [B,1,H,W] 0/1 or None (every pixel valid)."""
        r_k, weight_k = masked_downscale(residual, weight, k)
        total, windows = valid_window_sobel_l1(r_k, weight_k)
        if full_resolution:
            height, width = residual.shape[2], residual.shape[3]
            windows = windows * (height * width / (r_k.shape[2] * r_k.shape[3]))
        return safe_divide(total, windows)
