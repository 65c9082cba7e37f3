"""Helpers of the loss tests (loaded by conftest.py as the ``helpers`` fixture)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SOBEL = torch.tensor(
    [
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
        [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
    ]
).view(2, 1, 3, 3)


def random_inv(
    shape: tuple[int, ...],
    *,
    seed: int,
    dtype: torch.dtype = torch.float64,
    missing: float = 0.0,
) -> torch.Tensor:
    """Inverse depths uniform in [0.01, 0.11) (the seed's quick check), with a fraction
    ``missing`` of pixels set to 0 (no ground truth)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.1 + 0.01
    if missing > 0:
        x = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < missing, 0.0, x)
    return x.to(dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error ``|a - b| / |b|`` (norms for tensors); the absolute one if b is 0."""
    den = float(torch.linalg.vector_norm(b.detach().double()))
    num = float(torch.linalg.vector_norm(a.detach().double() - b.detach().double()))
    return num / den if den > 0 else num


def design_reference(
    pred_inv: torch.Tensor,
    gt_inv: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    sparse: bool,
    lambda_sg: float = 0.5,
    epsilon: float = 1e-8,
    num_scales: int = 4,
    use_absolute: bool = True,
    use_inv_depth: bool = False,
    min_depth: float = 1.0,
    max_depth: float = 80.0,
) -> dict[str, float]:
    """DESIGN.md's masked formulas, image by image with Python loops over the batch and
    boolean indexing, conv2d Sobel; float64. ``N_k = sum(m) / 4^(k-1)`` (sparse) literally,
    so only for H and W divisible by ``2^(K-1)``. The working domain is depth / max_depth,
    or inverse depth x min_depth with ``use_inv_depth`` (loss.units)."""
    pred_inv, gt_inv = pred_inv.double(), gt_inv.double()
    scale = min_depth if use_inv_depth else max_depth
    pred_inv, gt_inv = pred_inv * scale, gt_inv * scale
    if use_inv_depth:
        pd, gd = pred_inv, gt_inv
    else:
        pd = 1.0 / pred_inv
        gd = torch.zeros_like(gt_inv)
        gd[gt_inv > 0] = 1.0 / gt_inv[gt_inv > 0]
    m = torch.ones_like(pd, dtype=torch.bool) if mask is None else mask.bool()
    if sparse:
        m = m & (gt_inv > 0)

    def normalised(v: torch.Tensor) -> torch.Tensor:
        mu = v.mean()
        return (v - mu) / ((v - mu).abs().mean() + epsilon)

    r = torch.zeros_like(pd)
    for b in range(pd.shape[0]):
        mb = m[b]
        if mb.any():
            r[b][mb] = normalised(pd[b][mb]) - normalised(gd[b][mb])
    total_m = float(m.sum())
    out = {"scale_adaptive/relative": float(r.abs().sum()) / total_m if total_m else 0.0}
    loss_sa = out["scale_adaptive/relative"]
    if use_absolute and (mask is not None or sparse):
        absolute = float((pd - gd)[m].abs().sum()) / total_m if total_m else 0.0
        out["scale_adaptive/absolute"] = absolute
        loss_sa += absolute
    terms = []
    for k in range(1, num_scales + 1):
        r_k = r
        if k > 1:
            r_k = F.interpolate(
                r, scale_factor=0.5 ** (k - 1), mode="bilinear", align_corners=False
            )
        g = F.conv2d(F.pad(r_k, (1, 1, 1, 1), mode="replicate"), SOBEL.double())
        n_k = total_m / 4 ** (k - 1) if sparse else r_k.numel()
        terms.append(float(g.abs().sum()) / n_k if n_k else 0.0)
        out[f"gradient/scale_{k}"] = terms[-1]
    loss_sg = sum(terms) / num_scales
    out["total_loss"] = loss_sa + lambda_sg * loss_sg
    out["loss_sa"] = loss_sa
    out["loss_sg"] = loss_sg
    return out


def input_scale(use_inv_depth: bool, min_depth: float = 1.0, max_depth: float = 80.0) -> float:
    """The factor the loss multiplies its inverse-depth inputs by (written out, not
    ``loss.units.input_scale``): the seed's formulas on inputs times it are the loss's."""
    return min_depth if use_inv_depth else max_depth
