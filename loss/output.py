"""What every loss in this package returns."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["LossOutput"]


class LossOutput(NamedTuple):
    """The result of one loss call.

    total: [] scalar tensor to call ``backward()`` on (part of the autograd graph).
    metrics: every component by name, each a detached [] scalar tensor on the input's
        device, in a fixed order (the names are listed in each loss's docstring).
    """

    total: torch.Tensor
    metrics: dict[str, torch.Tensor]
