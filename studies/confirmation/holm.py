"""Holm's step-down adjustment of p-values (Holm 1979)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["holm"]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given.

    With the ``m`` p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    the ``i``-th is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``: step-down, monotone in the
    sorted order, capped at 1. Rejecting every hypothesis whose adjusted p-value is at most
    ``alpha`` controls the family-wise error rate at ``alpha`` under any dependence. Ties
    keep their order; a NaN p-value stays NaN and counts in ``m`` (it is never rejected).
    """
    m = len(p_values)
    for p in p_values:
        if not (math.isnan(p) or 0.0 <= p <= 1.0):
            raise ValueError(f"p-values lie in [0, 1], got {p}")
    order = sorted((i for i in range(m) if not math.isnan(p_values[i])), key=lambda i: p_values[i])
    adjusted = [math.nan] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
