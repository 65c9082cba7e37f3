"""The seed's quick check, for ``salsweep loss check``."""

from __future__ import annotations

import torch

from loss.output import LossOutput
from loss.registry import get_loss

__all__ = ["quick_check"]


def quick_check(seed: int = 0, method: str = "sparse-scale-adaptive") -> LossOutput:
    """Random inverse depths of shape (2,1,192,640), uniform in [0.01, 0.11) as in the
    seed, through ``get_loss(method)`` with default parameters.

    Every pixel has ground truth, so the sparse and the dense method agree on every shared
    metric; the sparse default (the project's default method) also reports the absolute
    term, over the default depth range (depths of 9-100 m / 80 m). Deterministic for a
    given ``seed``; the total is finite.
    """
    generator = torch.Generator().manual_seed(seed)
    pred_inv = torch.rand(2, 1, 192, 640, generator=generator) * 0.1 + 0.01
    gt_inv = torch.rand(2, 1, 192, 640, generator=generator) * 0.1 + 0.01
    return get_loss(method)(pred_inv, gt_inv)
