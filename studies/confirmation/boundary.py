"""One-sided group-sequential boundaries for a paired t statistic looked at after every seed.

A pair's differences ``d_1, d_2, ...`` (one per shared seed) are independent normal with
unknown mean ``mu`` and sd ``sigma``. At look ``n`` (``n0 <= n <= n_max``) the statistic
``T_n = sqrt(n) * (mean_n - mu) / sd_n`` has one joint law over all looks whatever ``mu``
and ``sigma`` are (it is location and scale free), so a single calibration serves every
pair of every race. The boundary of one-sided level ``a`` is

    c_n = the 1 - gamma_n quantile of t with n - 1 degrees of freedom,
    gamma_n = gamma * (n / n_max) ** rho,

with ``gamma`` the largest value such that ``P(T_n > c_n for some look) <= a``. rho = 0 is
Pocock's constant nominal level; a larger rho spends less at the early, noisy looks
(towards O'Brien and Fleming).

The joint law is sampled once per (n0, n_max, rho): 2^17 seeded null paths (a pure
function of its arguments) give the distribution of ``min_n p_n * (n_max / n) ** rho``
(``p_n`` the one-sided nominal p-value of look ``n``); ``gamma`` for a level ``a`` is a
conservative order statistic of it, 3 binomial sds below ``a`` times the number of paths,
so that the level holds with 99.9% confidence over the simulation, not just on average
(at levels too small for the simulation, and wherever it is larger, Bonferroni over the
looks: ``gamma = a / sum_n (n / n_max) ** rho``, exact). The sample is kept in a file cache
(studies.confirmation.null_cache), so that a read-only command (``studies show``) does not
simulate it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from studies.confirmation.null_cache import cached_minima
from studies.confirmation.tdist import FloatArray, t_quantile, t_sf

__all__ = ["Boundary", "boundary", "crossing_level", "simulate_minima"]

PATHS = 1 << 17  # simulated null paths per calibration
_SEED = 20_190_019  # issue 19


@lru_cache(maxsize=32)
def _null_minima(n0: int, n_max: int, rho: float) -> FloatArray:
    """Sorted ``min_n p_n * (n_max / n) ** rho`` of `PATHS` simulated null paths, from the
    file cache (studies.confirmation.null_cache) when an earlier process simulated them."""
    return cached_minima(_SEED, PATHS, n0, n_max, rho, lambda: simulate_minima(n0, n_max, rho))


def simulate_minima(n0: int, n_max: int, rho: float) -> FloatArray:
    """The simulation behind `_null_minima` (about 0.4 s at the default design)."""
    rng = np.random.default_rng([_SEED, n0, n_max, round(rho * 1000)])
    total = np.zeros(PATHS)
    squares = np.zeros(PATHS)
    smallest = np.full(PATHS, np.inf)
    for n in range(1, n_max + 1):
        x = rng.standard_normal(PATHS)
        total += x
        squares += x * x
        if n < n0:
            continue
        mean = total / n
        sd = np.sqrt(np.maximum(squares - n * mean * mean, 0.0) / (n - 1))
        p = t_sf(math.sqrt(n) * mean / sd, n - 1)
        np.minimum(smallest, p * (n_max / n) ** rho, out=smallest)
    smallest.sort()
    return smallest


def _gamma(n0: int, n_max: int, rho: float, level: float) -> float:
    """The largest of two valid choices: Bonferroni over the looks (exact, any level) and
    the simulated order statistic (where the simulation has paths to spare). Both grow
    with ``level``, so boundaries of smaller levels lie above those of larger ones."""
    bonferroni = level / sum((n / n_max) ** rho for n in range(n0, n_max + 1))
    minima = _null_minima(n0, n_max, rho)
    allowed = level * PATHS - 3.0 * math.sqrt(level * (1.0 - level) * PATHS)
    k = math.floor(allowed)
    if k < 1:
        return bonferroni
    # Strictly below the k-th smallest value: at most k - 1 simulated paths cross.
    return max(bonferroni, float(minima[k - 1]) * (1.0 - 1e-12))


@dataclass(frozen=True)
class Boundary:
    """Critical values of a one-sided paired t statistic, one per look.

    ``critical[n]`` is the t critical value after ``n`` pairs (``n0 <= n <= n_max``),
    ``nominal[n]`` its one-sided nominal level; ``level`` is the probability that a pair
    with no true difference crosses at some look.
    """

    n0: int
    n_max: int
    level: float
    rho: float
    nominal: dict[int, float]
    critical: dict[int, float]

    def margin(self, n: int, sd: float) -> float:
        """How far the mean of ``n`` differences with sample sd ``sd`` must clear a
        bound: ``critical[n] * sd / sqrt(n)``."""
        return self.critical[n] * sd / math.sqrt(n)


@lru_cache(maxsize=512)
def boundary(n0: int, n_max: int, level: float, rho: float = 1.0) -> Boundary:
    """The one-sided boundary of level ``level`` with looks after ``n0 .. n_max`` pairs
    and shape ``rho`` (see the module). Needs ``2 <= n0 <= n_max``."""
    if not 2 <= n0 <= n_max:
        raise ValueError(f"need 2 <= n0 <= n_max, got n0={n0}, n_max={n_max}")
    if not 0.0 < level < 0.5:
        raise ValueError(f"level must lie in (0, 0.5), got {level}")
    if rho < 0:
        raise ValueError(f"rho must be >= 0, got {rho}")
    gamma = _gamma(n0, n_max, rho, level)
    nominal = {n: gamma * (n / n_max) ** rho for n in range(n0, n_max + 1)}
    critical = {n: t_quantile(1.0 - g, n - 1) for n, g in nominal.items()}
    return Boundary(n0, n_max, level, rho, nominal, critical)


def crossing_level(n0: int, n_max: int, rho: float, minimum: float) -> float:
    """The share of null paths whose statistic ``min_n p_n * (n_max / n) ** rho`` is at
    most ``minimum``: the sequential p-value of a pair that reached ``minimum``."""
    minima = _null_minima(n0, n_max, rho)
    return float(np.searchsorted(minima, minimum, side="right")) / PATHS
