"""Shaffer's logical constraints for one-sided pairwise claims: how much of the error
budget can still be at risk once some claims are established.

The claim "i is better than j" (``(i, j)``, i's true mean strictly better) can only be false
when i is in truth no better than j: the ordered pair is *at risk*. Which pairs are at risk
depends on the true order of the means, a weak order (ties allowed): for ``K`` contenders,
each unordered pair puts one ordered pair at risk, two when tied. Once claims ``S`` are
established (and, up to the first error, true), only weak orders in which every claim of
``S`` holds remain possible; the largest total weight at risk among them bounds what a
step-down procedure must still split its ``alpha`` over (Shaffer 1986, in Holm's weighted
form). Holm's own bound, which ignores the logic, is the total weight outside ``S``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_EXACT", "at_risk_bound", "weak_orders"]

# Up to this many contenders the bound enumerates the weak orders (4,683 for 6); beyond,
# Holm's bound (valid, larger).
MAX_EXACT = 6

Pair = tuple[int, int]


@lru_cache(maxsize=8)
def weak_orders(k: int) -> NDArray[np.int64]:
    """Every weak order of ``k`` items as a row of ranks (0 = best, ties share a rank,
    ranks consecutive from 0); read-only."""
    if not 1 <= k <= MAX_EXACT:
        raise ValueError(f"weak orders are enumerated for 1..{MAX_EXACT} items, got {k}")
    codes = np.arange(k**k)
    ranks = np.stack([(codes // k**p) % k for p in range(k)], axis=1)
    present = np.zeros((len(codes), k), dtype=bool)
    present[np.arange(len(codes))[:, None], ranks] = True
    orders = ranks[present.sum(axis=1) == ranks.max(axis=1) + 1]
    orders.flags.writeable = False
    return orders


@lru_cache(maxsize=4096)
def _bound(weights: tuple[tuple[float, ...], ...], established: frozenset[Pair]) -> float:
    k = len(weights)
    w = np.array(weights, dtype=np.float64)
    np.fill_diagonal(w, 0.0)
    if k > MAX_EXACT:
        return float(w.sum() - sum(w[i, j] for i, j in established))
    ranks = weak_orders(k)
    possible = np.ones(len(ranks), dtype=bool)
    for i, j in established:
        possible &= ranks[:, i] < ranks[:, j]
    if not possible.any():
        return 0.0
    kept = ranks[possible]
    risk = (kept[:, :, None] >= kept[:, None, :]).astype(np.float64)  # [order, i, j]
    return float(np.einsum("oij,ij->o", risk, w).max())


def at_risk_bound(weights: Iterable[Iterable[float]], established: Iterable[Pair]) -> float:
    """The largest weight at risk given the established claims: the sum of
    ``weights[i][j]`` over the ordered pairs ``(i, j)`` (i no better than j) of the worst
    weak order in which every established ``(i, j)`` has i strictly better than j. Holm's
    bound (the weight outside ``established``) beyond `MAX_EXACT` contenders. Established
    claims that contradict each other leave no order: 0.
    """
    w = tuple(tuple(float(x) for x in row) for row in weights)
    return _bound(w, frozenset(established))
