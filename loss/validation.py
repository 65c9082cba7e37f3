"""Checks of loss parameters and inputs; every failure is a ``ValueError`` naming the
parameter and the accepted range, so that a bad sweep value fails at once and clearly
instead of producing a NaN some epochs later."""

from __future__ import annotations

import math

import torch

__all__ = [
    "check_bool",
    "check_choice",
    "check_depth_range",
    "check_image_size",
    "check_inputs",
    "check_non_negative",
    "check_num_scales",
]

FLOAT_DTYPES = (torch.float32, torch.float64)
MASK_DTYPES = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
)


def check_non_negative(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number >= 0, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_depth_range(min_depth: object, max_depth: object) -> tuple[float, float]:
    """``(min_depth, max_depth)`` as floats if both are finite numbers > 0 (metres) with
    ``min_depth < max_depth``, else ``ValueError``."""
    bounds = []
    for name, value in (("min_depth", min_depth), ("max_depth", max_depth)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"{name} must be a finite number > 0 (metres), got {value!r}")
        bounds.append(float(value))
    lo, hi = bounds
    if lo >= hi:
        raise ValueError(f"max_depth ({hi}) must be larger than min_depth ({lo})")
    return lo, hi


def check_num_scales(value: object) -> int:
    """``value`` if it is an integer >= 1 (not a bool), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"num_scales must be an integer >= 1, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool, else ``ValueError`` (0/1 or strings are not accepted)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """``ValueError`` listing ``choices`` unless ``value`` is one of them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_shape(name: str, tensor: object, shape: torch.Size | None) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [B,1,H,W], got {type(tensor)}")
    if shape is None:
        if tensor.dim() != 4 or tensor.shape[1] != 1 or tensor.numel() == 0:
            raise ValueError(
                f"{name} must have shape [B,1,H,W] with B, H, W >= 1, got {tuple(tensor.shape)}"
            )
    elif tensor.shape != shape:
        raise ValueError(
            f"{name} must have the shape of pred_inv {tuple(shape)}, got {tuple(tensor.shape)}"
        )
    return tensor


def check_image_size(num_scales: int, shape: torch.Size) -> None:
    """``ValueError`` unless the coarsest of ``num_scales`` bilinear scales keeps a pixel.

    Scale k has ``floor(H / 2^(k-1)) x floor(W / 2^(k-1))`` pixels.
    """
    height, width = shape[-2], shape[-1]
    coarse = 2 ** (num_scales - 1)
    if height // coarse < 1 or width // coarse < 1:
        largest = 1 + int(math.log2(min(height, width)))
        raise ValueError(
            f"num_scales={num_scales} is too large for {height}x{width} images: scale "
            f"{num_scales} would have {height // coarse}x{width // coarse} px; "
            f"accepted 1..{largest}"
        )


def check_inputs(
    pred_inv: object,
    gt_inv: object,
    mask: object,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Checks a loss call's arguments and returns ``(pred_inv, gt_inv, mask as bool)``.

    pred_inv: [B,1,H,W] float32/float64, finite and > 0.
    gt_inv: [B,1,H,W] same dtype and device, finite and >= 0 (0 = no measurement).
    mask: None or [B,1,H,W] on the same device, bool or numbers that are all 0 or 1.

    The value checks cost one device synchronisation per call (one small transfer).
    """
    pred = _check_shape("pred_inv", pred_inv, None)
    gt = _check_shape("gt_inv", gt_inv, pred.shape)
    if pred.dtype not in FLOAT_DTYPES:
        # Half precision is refused: the sums over ~1e5 pixels overflow float16.
        raise ValueError(f"pred_inv dtype must be float32 or float64, got {pred.dtype}")
    if gt.dtype != pred.dtype:
        raise ValueError(f"gt_inv dtype must be that of pred_inv ({pred.dtype}), got {gt.dtype}")
    if gt.device != pred.device:
        raise ValueError(f"gt_inv must be on pred_inv's device ({pred.device}), got {gt.device}")
    checks = []
    lo, hi = torch.aminmax(pred.detach())  # NaN propagates, so it fails both comparisons
    checks += [lo > 0, hi < math.inf]
    lo, hi = torch.aminmax(gt.detach())
    checks += [lo >= 0, hi < math.inf]
    valid: torch.Tensor | None = None
    if mask is not None:
        m = _check_shape("mask", mask, pred.shape)
        if m.device != pred.device:
            raise ValueError(f"mask must be on pred_inv's device ({pred.device}), got {m.device}")
        if m.dtype == torch.bool:
            valid = m
        elif m.dtype not in MASK_DTYPES:
            raise ValueError(f"mask dtype must be bool or a real number type, got {m.dtype}")
        else:
            valid = m != 0
            checks.append(((m == 0) | (m == 1)).all())
    ok = torch.stack(checks).tolist()
    if not (ok[0] and ok[1]):
        raise ValueError("pred_inv must be finite and > 0 everywhere (inverse depth)")
    if not (ok[2] and ok[3]):
        raise ValueError("gt_inv must be finite and >= 0 everywhere (0 = no measurement)")
    if len(ok) > 4 and not ok[4]:
        raise ValueError("mask values must be 0 or 1 (or bool)")
    return pred, gt, valid
