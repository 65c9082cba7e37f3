"""Student's t and the normal distribution without scipy: exact t tails for whole degrees
of freedom, quantiles by bisection on them.

The tail ``P(|T| > t)`` with ``df`` degrees of freedom is the finite series of Abramowitz
and Stegun 26.7.3-4 (exact up to rounding, any ``df >= 1``), evaluated on numpy arrays so
that a simulation can take a million t statistics at once.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FloatArray", "normal_sf", "t_quantile", "t_sf", "t_two_sided_p"]

FloatArray = NDArray[np.float64]


def _abs_tail(t: FloatArray, df: int) -> FloatArray:
    """``P(|T| > |t|)`` for ``df`` degrees of freedom (A&S 26.7.3 odd, 26.7.4 even)."""
    t = np.abs(t)
    c2 = df / (df + t * t)  # cos^2(theta), theta = atan(t / sqrt(df))
    s = np.sqrt(1.0 - c2)  # sin(theta)
    if df % 2 == 0:
        # 1 - A = 1 - sin(theta) * (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...): the sum runs to
        # cos^(df-2).
        term = np.ones_like(t)
        total = np.ones_like(t)
        for j in range(1, df // 2):
            term = term * c2 * (2 * j - 1) / (2 * j)
            total = total + term
        return np.clip(1.0 - s * total, 0.0, 1.0)
    theta = np.arctan2(t, math.sqrt(df))
    if df == 1:
        return np.clip(1.0 - 2.0 * theta / math.pi, 0.0, 1.0)
    c = np.sqrt(c2)
    term = c.copy()
    total = c.copy()
    for j in range(1, (df - 1) // 2):
        term = term * c2 * (2 * j) / (2 * j + 1)
        total = total + term
    return np.clip(1.0 - 2.0 / math.pi * (theta + s * total), 0.0, 1.0)


def _check_df(df: int) -> None:
    if int(df) != df or df < 1:
        raise ValueError(f"degrees of freedom must be a whole number >= 1, got {df}")


def t_two_sided_p(t: ArrayLike, df: int) -> FloatArray:
    """Two-sided p-value ``P(|T| >= |t|)`` of Student's t with ``df`` degrees of freedom
    (NaN stays NaN)."""
    _check_df(df)
    return _abs_tail(np.asarray(t, dtype=np.float64), int(df))


def t_sf(t: ArrayLike, df: int) -> FloatArray:
    """Upper tail ``P(T > t)``."""
    _check_df(df)
    x = np.asarray(t, dtype=np.float64)
    half = 0.5 * _abs_tail(x, int(df))
    return np.where(x >= 0, half, 1.0 - half)


@lru_cache(maxsize=4096)
def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t (0 < q < 1), to about 1e-12 relative."""
    _check_df(df)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie in (0, 1), got {q}")
    if q == 0.5:
        return 0.0
    upper = q > 0.5
    tail = 2.0 * (1.0 - q) if upper else 2.0 * q  # two-sided tail of |T|
    lo, hi = 0.0, 1.0
    while float(_abs_tail(np.array([hi]), int(df))[0]) > tail:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(_abs_tail(np.array([mid]), int(df))[0]) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    x = 0.5 * (lo + hi)
    return x if upper else -x


def normal_sf(z: float) -> float:
    """``P(Z > z)`` of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))
