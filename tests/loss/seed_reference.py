"""A literal implementation of the seed's formulas, the reference for tests and benchmarks.

Written from the formulas of the seed document (see ``shared/seed/README.md``), keeping its
structure on purpose: packnet's ``inv2depth`` (``1 / clamp(x, 1e-6)``), every statistic
over all pixels, the normalisation done twice (once for the relative term, once for the
gradient term), two separate Sobel convolutions per scale. It is only meaningful on dense
inputs (every ``gt_inv > 0``); that is where the project's loss must agree with it.

Also a brute-force reference of the SSI baseline (MiDaS' median / MAD alignment), image by
image in numpy.

Loaded by ``conftest.py`` (fixture ``seed_ref``) and by ``benchmarks/loss_bench.py``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
SOBEL_Y = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]


def packnet_inv2depth(inv_depth: torch.Tensor) -> torch.Tensor:
    """packnet-sfm's ``inv2depth``: ``1 / inv_depth.clamp(min=1e-6)``."""
    return 1.0 / inv_depth.clamp(min=1e-6)


def _normalize(depth: torch.Tensor, epsilon: float) -> torch.Tensor:
    mean = torch.mean(depth, dim=[2, 3], keepdim=True)
    mad = torch.mean(torch.abs(depth - mean), dim=[2, 3], keepdim=True)
    return (depth - mean) / (mad + epsilon)


def _sobel(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, padding=0)


def seed_scale_adaptive(
    pred_inv: torch.Tensor,
    gt_inv: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lambda_sg: float = 0.5,
    epsilon: float = 1e-8,
    num_scales: int = 4,
    use_absolute: bool = True,
    use_inv_depth: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The seed's loss: ``(total, metrics)`` with the seed's metric names.

    pred_inv, gt_inv: [B,1,H,W] inverse depth; mask: [B,1,H,W] 0/1 or None.
    """
    opts = {"dtype": pred_inv.dtype, "device": pred_inv.device}
    sobel_x = torch.tensor(SOBEL_X, **opts).view(1, 1, 3, 3)  # type: ignore[arg-type]
    sobel_y = torch.tensor(SOBEL_Y, **opts).view(1, 1, 3, 3)  # type: ignore[arg-type]
    metrics: dict[str, torch.Tensor] = {}
    if use_inv_depth:
        pred, gt = pred_inv, gt_inv
    else:
        pred, gt = packnet_inv2depth(pred_inv), packnet_inv2depth(gt_inv)

    # L_sa: relative over every pixel, absolute only with a mask.
    relative = torch.mean(torch.abs(_normalize(pred, epsilon) - _normalize(gt, epsilon)))
    absolute: torch.Tensor | float = 0.0
    if use_absolute and mask is not None:
        m = mask.to(pred.dtype)
        num_valid = torch.clamp(torch.sum(m, dim=[1, 2, 3], keepdim=True), min=1.0)
        error = torch.abs(pred * m - gt * m) * m
        absolute = torch.sum(error) / (torch.sum(num_valid) + epsilon)
    metrics["scale_adaptive/relative"] = relative
    if use_absolute:
        metrics["scale_adaptive/absolute"] = torch.as_tensor(absolute)
    loss_sa = relative + absolute

    # L_sg: normalised again, residual resized from full resolution at every scale.
    residual = _normalize(pred, epsilon) - _normalize(gt, epsilon)
    total_sg: torch.Tensor | float = 0.0
    for k in range(1, num_scales + 1):
        if k > 1:
            r_k = F.interpolate(
                residual, scale_factor=1.0 / (2 ** (k - 1)), mode="bilinear", align_corners=False
            )
        else:
            r_k = residual
        loss_k = torch.mean(torch.abs(_sobel(r_k, sobel_x)) + torch.abs(_sobel(r_k, sobel_y)))
        total_sg = total_sg + loss_k
        metrics[f"gradient/scale_{k}"] = loss_k
    loss_sg = torch.as_tensor(total_sg / num_scales)

    total = loss_sa + lambda_sg * loss_sg
    metrics["total_loss"] = total
    metrics["loss_sa"] = loss_sa
    metrics["loss_sg"] = loss_sg
    return total, metrics


def midas_ssi(
    pred_inv: torch.Tensor,
    gt_inv: torch.Tensor,
    valid: torch.Tensor,
    *,
    alpha: float = 0.5,
    num_scales: int = 4,
) -> dict[str, float]:
    """The SSI baseline by brute force, in float64 numpy.

    Per image, over the valid pixels: ``t`` = the lower median (``np.sort(v)[(n - 1) // 2]``),
    ``s`` = mean ``|v - t|``, ``n(v) = (v - t) / s`` (0 when ``s`` is 0), for prediction and
    ground truth; the data term is ``sum(valid * |n(p) - n(g)|) / (2 sum(valid))`` over the
    batch; the gradient term at scale k subsamples every ``2^(k-1)``-th row and column and
    sums the absolute forward differences of the masked residual where both neighbours are
    valid, divided by the valid count at that scale; the gradient terms are summed over
    scales.

    pred_inv, gt_inv: [B,1,H,W]; valid: [B,1,H,W] bool.
    """
    p = pred_inv.detach().double().cpu().numpy()[:, 0]
    g = gt_inv.detach().double().cpu().numpy()[:, 0]
    m = valid.detach().cpu().numpy()[:, 0].astype(bool)

    def normalised(v: np.ndarray) -> np.ndarray:
        t = np.sort(v)[(v.size - 1) // 2]
        s = np.abs(v - t).mean()
        return (v - t) / s if s > 0 else np.zeros_like(v)

    res = np.zeros_like(p)
    for b in range(p.shape[0]):
        if m[b].any():
            res[b][m[b]] = normalised(p[b][m[b]]) - normalised(g[b][m[b]])
    count = m.sum()
    out = {"ssi/data": float(np.abs(res).sum() / (2 * count)) if count else 0.0}
    grad_total = 0.0
    for k in range(1, num_scales + 1):
        step = 2 ** (k - 1)
        r, mk = res[:, ::step, ::step], m[:, ::step, ::step]
        gx = np.abs(r[:, :, 1:] - r[:, :, :-1]) * (mk[:, :, 1:] & mk[:, :, :-1])
        gy = np.abs(r[:, 1:, :] - r[:, :-1, :]) * (mk[:, 1:, :] & mk[:, :-1, :])
        n = mk.sum()
        value = float((gx.sum() + gy.sum()) / n) if n else 0.0
        out[f"gradient/scale_{k}"] = value
        grad_total += value
    out["ssi/gradient"] = grad_total
    out["total_loss"] = out["ssi/data"] + alpha * grad_total
    return out
