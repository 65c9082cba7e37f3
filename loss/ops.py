"""Tensor building blocks of the losses: working domain, masked per-image statistics,
Sobel gradient magnitude, resizing. Pure functions, no state.

Invalid pixels: their input values are replaced with ``torch.where`` before any
arithmetic (``select``), so every tensor a loss computes is finite at every pixel and no
inf or NaN can arise there. Reductions over the valid pixels then weight by the 0/1 mask
in the working dtype (``weight``): that multiplies finite numbers only (never
``inf * 0``), and on CPU a float multiply is 10-20 times faster than ``torch.where`` on a
bool mask (0.1 ms against 1.4 ms for 4x192x640, torch 2.13; see docs/BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = [
    "downscale",
    "inv2depth",
    "masked_downscale",
    "masked_sum",
    "normalise",
    "safe_divide",
    "select",
    "sobel_l1",
    "sobel_l1_conv",
    "valid_window_sobel_l1",
]


def select(x: torch.Tensor, valid: torch.Tensor | None, fill: float) -> torch.Tensor:
    """[B,1,H,W]: ``x`` at valid pixels, ``fill`` elsewhere (``x`` itself when all valid).

    The gradient reaching ``x`` at an invalid pixel is exactly 0."""
    return x if valid is None else torch.where(valid, x, fill)


def inv2depth(inv: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] inverse depth -> depth: ``1 / x`` where ``x > 0``, else 0 (never inf)."""
    positive = inv > 0
    return torch.where(positive, torch.reciprocal(torch.where(positive, inv, 1.0)), 0.0)


def safe_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, else ``num`` unchanged (callers pass a zero ``num``
    there, so an empty image or batch gives 0, not NaN, and no NaN gradient either)."""
    return num / torch.where(den > 0, den, 1.0)


def masked_sum(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """[B,1,H,W] -> [B,1,1,1]: per-image sum of ``x`` over the valid pixels.

    x: finite everywhere; weight: [B,1,H,W] 1.0 at valid pixels, 0.0 elsewhere, or None
    when every pixel is valid.
    """
    if weight is not None:
        x = x * weight
    return x.sum(dim=(2, 3), keepdim=True)


def normalise(
    d: torch.Tensor, weight: torch.Tensor | None, count: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """Per-image ``(d - mu) / (s + epsilon)`` with mean ``mu`` and mean absolute deviation
    ``s`` over the valid pixels.

    d: [B,1,H,W] working-domain values, finite everywhere.
    weight: [B,1,H,W] 0/1 valid pixels in d's dtype, or None for every pixel.
    count: [B,1,1,1] valid pixels per image (0 allowed: that image gets ``mu = s = 0``).
    Returns [B,1,H,W]; values at invalid pixels are finite and meaningless.
    """
    mu = safe_divide(masked_sum(d, weight), count)
    centred = d - mu
    mad = safe_divide(masked_sum(centred.abs(), weight), count)
    # MAD + epsilon is 0 only when epsilon = 0 and every valid value is equal, i.e. the
    # centred values are all 0 there: any divisor gives 0, take 1 to stay finite.
    return safe_divide(centred, mad + epsilon)


def downscale(r: torch.Tensor, k: int) -> torch.Tensor:
    """[B,1,H,W] -> [B,1,floor(H/2^(k-1)),floor(W/2^(k-1))]: scale k of the gradient term.

    Bilinear, ``align_corners=False``, with the scale factor itself (not the output size)
    deciding where samples fall, as the seed's ``F.interpolate(scale_factor=...)`` does.
    """
    if k == 1:
        return r
    return F.interpolate(r, scale_factor=1.0 / 2 ** (k - 1), mode="bilinear", align_corners=False)


def _smooth_diff(p: torch.Tensor, smooth_dim: int, diff_dim: int) -> torch.Tensor:
    # Sobel is separable: [1,2,1] smoothing along one axis, central difference along the
    # other. Slices and adds instead of a convolution: on CPU about twice as fast as one
    # 2-output-channel conv2d (see docs/BENCHMARKS.md).
    n = p.shape[smooth_dim]
    s = torch.add(p.narrow(smooth_dim, 0, n - 2), p.narrow(smooth_dim, 1, n - 2), alpha=2.0)
    s += p.narrow(smooth_dim, 2, n - 2)
    m = s.shape[diff_dim]
    return s.narrow(diff_dim, 2, m - 2) - s.narrow(diff_dim, 0, m - 2)


def _smooth_diff_adjoint(
    sign: torch.Tensor, out: torch.Tensor, smooth_dim: int, diff_dim: int
) -> None:
    # Adds the adjoint of _smooth_diff applied to ``sign`` into ``out`` (the padded map's
    # gradient): the transposed difference, then the transposed [1,2,1] smoothing.
    shape = list(sign.shape)
    shape[diff_dim] += 2
    t = sign.new_zeros(shape, dtype=out.dtype)
    m = shape[diff_dim]
    t.narrow(diff_dim, 2, m - 2).add_(sign)
    t.narrow(diff_dim, 0, m - 2).sub_(sign)
    n = out.shape[smooth_dim]
    out.narrow(smooth_dim, 0, n - 2).add_(t)
    out.narrow(smooth_dim, 1, n - 2).add_(t, alpha=2.0)
    out.narrow(smooth_dim, 2, n - 2).add_(t)


def _unpad_replicate(grad_p: torch.Tensor) -> torch.Tensor:
    # Adjoint of F.pad(r, (1, 1, 1, 1), mode="replicate"): every padded pixel hands its
    # gradient back to the border pixel it copies (corners to the corner pixels).
    g = grad_p[..., 1:-1, 1:-1].clone()
    g[..., 0, :] += grad_p[..., 0, 1:-1]
    g[..., -1, :] += grad_p[..., -1, 1:-1]
    g[..., :, 0] += grad_p[..., 1:-1, 0]
    g[..., :, -1] += grad_p[..., 1:-1, -1]
    g[..., 0, 0] += grad_p[..., 0, 0]
    g[..., 0, -1] += grad_p[..., 0, -1]
    g[..., -1, 0] += grad_p[..., -1, 0]
    g[..., -1, -1] += grad_p[..., -1, -1]
    return g


class _SobelL1(torch.autograd.Function):
    """sum(|Sobel_x r| + |Sobel_y r|) with a hand-written backward.

    Autograd through the slices of ``_smooth_diff`` would allocate and zero one
    full-size gradient per slice (ten per scale); here the backward writes into two
    buffers, and only the signs of the gradients are kept (int8: 2 bytes a pixel).
    """

    @staticmethod
    def forward(ctx: Any, r: torch.Tensor) -> torch.Tensor:
        p = F.pad(r, (1, 1, 1, 1), mode="replicate")
        gx = _smooth_diff(p, smooth_dim=2, diff_dim=3)
        gy = _smooth_diff(p, smooth_dim=3, diff_dim=2)
        if ctx.needs_input_grad[0]:  # not under no_grad (validation)
            ctx.save_for_backward(torch.sign(gx).to(torch.int8), torch.sign(gy).to(torch.int8))
        return gx.abs().sum() + gy.abs().sum()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        sx, sy = ctx.saved_tensors
        batch, channels, height, width = sx.shape
        grad_p = grad.new_zeros((batch, channels, height + 2, width + 2))
        _smooth_diff_adjoint(sx, grad_p, smooth_dim=2, diff_dim=3)
        _smooth_diff_adjoint(sy, grad_p, smooth_dim=3, diff_dim=2)
        return _unpad_replicate(grad_p) * grad


# Both Sobel kernels as one 2-output-channel conv2d weight, by device and dtype.
_SOBEL_WEIGHTS: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


def _sobel_weight(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    weight = _SOBEL_WEIGHTS.get((device, dtype))
    if weight is None:
        weight = torch.tensor((_SOBEL_X, _SOBEL_Y), dtype=dtype, device=device).view(2, 1, 3, 3)
        _SOBEL_WEIGHTS[(device, dtype)] = weight
    return weight


def sobel_l1_conv(r: torch.Tensor) -> torch.Tensor:
    """`sobel_l1` as one conv2d over the replicate-padded map, differentiated by autograd.
    Always in ``r``'s dtype: autocast is off inside (the loss is a float32 computation)."""
    with torch.autocast(r.device.type, enabled=False):
        padded = F.pad(r, (1, 1, 1, 1), mode="replicate")
        return F.conv2d(padded, _sobel_weight(r.device, r.dtype)).abs().sum()


def sobel_l1(r: torch.Tensor) -> torch.Tensor:
    """[B,1,h,w] -> []: ``sum(|Sobel_x r| + |Sobel_y r|)`` with replicate padding.

    The 3x3 Sobel kernels ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and its transpose, as a
    cross-correlation (``conv2d``) over the replicate-padded map. Differentiable once
    (the gradient of ``|x|`` at 0 is 0, as autograd's).

    Two implementations of one formula, each the faster on its device (docs/BENCHMARKS.md):
    on the CPU, separable slices with a hand-written backward (2.2x faster there than
    conv2d); on CUDA, where a call is bound by kernel launches, one conv2d
    (`sobel_l1_conv`: 1.9x faster there than the slices).
    """
    if r.is_cuda:
        return sobel_l1_conv(r)
    out: torch.Tensor = _SobelL1.apply(r)
    return out


# --- the gradient term over valid windows only (gradient_window "valid") --------------------


def masked_downscale(
    r: torch.Tensor, weight: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scale k of a residual that only knows its valid pixels: each ``f x f`` block
    (``f = 2^(k-1)``, floor of the size as :func:`downscale`) becomes the mean of its valid
    pixels, and is valid when it holds at least one.

    r: [B,1,H,W], 0 at invalid pixels; weight: [B,1,H,W] 0/1 valid pixels in r's dtype, or
    None for every pixel. Returns ``(r_k, weight_k)``: [B,1,H//f,W//f] each (``weight_k``
    None when ``weight`` is). ``avg_pool(r m) / avg_pool(m)``: an area mean, so a coarse
    pixel sees every valid pixel of its block (bilinear resizing by 1/f reads 2x2 of them).
    """
    if k == 1:
        return r, weight
    factor = 2 ** (k - 1)
    pooled = F.avg_pool2d(r, factor)
    if weight is None:
        return pooled, None
    share = F.avg_pool2d(weight, factor)  # fraction of the block that is valid
    # r is 0 at invalid pixels, so an empty block has pooled = 0: safe_divide keeps it 0.
    return safe_divide(pooled, share), (share > 0).to(r.dtype)


def valid_window_sobel_l1(
    r: torch.Tensor, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """[B,1,h,w] -> ``(sum, count)``: ``sum(|Sobel_x r| + |Sobel_y r|)`` over the pixels
    whose whole 3x3 window is valid, and the number of such pixels (both [] tensors).

    No padding: a window that reaches past the image border or touches an invalid pixel
    is left out, so that a residual zero-filled at missing pixels (scan lines) shows no
    edge that is not in the data. ``weight``: 0/1 valid pixels in r's dtype, or None for
    every pixel. Away from the border and on an all-valid map this is :func:`sobel_l1`.
    """
    batch, _, height, width = r.shape
    if height < 3 or width < 3:
        zero = r.new_zeros(())
        return zero * r.sum(), zero  # keeps the graph: the gradient is 0, not missing
    magnitude = (
        _smooth_diff(r, smooth_dim=2, diff_dim=3).abs()
        + _smooth_diff(r, smooth_dim=3, diff_dim=2).abs()
    )
    if weight is None:
        count = r.new_full((), float(batch * (height - 2) * (width - 2)))
        return magnitude.sum(), count
    # A window is valid when its smallest weight is 1: minus the max pool of minus weight.
    window = -F.max_pool2d(-weight, kernel_size=3, stride=1)
    return (magnitude * window).sum(), window.sum()
