"""Statistics of rank transfer between two fidelities (benchmarks/transfer_bench.py).

Pure functions over score matrices ``[C, S]``: one row per configuration, one column per
training seed (the same seeds for every configuration of a fidelity), lower is better
unless ``direction="maximize"``. numpy only; no scipy (tests compare with it where it is
installed).

- :func:`kendall_tau` (tau-b) and :func:`spearman_rho` (Pearson of average ranks) along the
  last axis, so that a bootstrap's ``[B, C]`` means are scored in one call.
- :func:`transfer`: the rank correlation between the two fidelities' configuration means,
  with a seed-bootstrap interval (seeds resampled with replacement within each
  configuration, independently at each fidelity). The interval is the hull of the basic
  (reflected) one, ``[2 est - q_hi, 2 est - q_lo]``, and the percentile one, ``[q_lo,
  q_hi]``. Noise pulls a rank correlation of means towards 0 and the bootstrap's own
  resampling pulls it further by about as much: the reflection removes most of that bias
  where the percentile interval doubles it (in simulations, tests/test_transfer_stats.py
  and docs/BENCHMARKS.md, the basic 90% interval covered the true tau 68-82% of the
  time, the percentile one 0% with a high true tau and noisy means); but at an estimate
  of +-1 every replicate lies on one side and the reflection collapses to the point
  (tau 1 [1, 1]), where the percentile interval still shows the spread. The hull keeps
  what each gets right, at the price of width: it covered 93% with a moderate true tau
  (6 or 3 seeds), 70% with a high one and 3 noisy seeds (nominal 90%).

Seeds are resampled independently for each configuration (a configuration's seeds, not
the design's seed list, are the unit), as are the two halves of the split-half bootstrap:
a seed's effect shared by every configuration (a lucky initialisation for all) then counts
as noise, so the intervals are conservative where such an effect exists. The point
estimates keep the seeds paired (the means over the same seeds; halves of the same seeds).
- :func:`split_half`: the reliability of one fidelity's ranking: the correlation between
  the rankings of two disjoint halves of the seeds, averaged over the balanced splits and
  Spearman-Brown corrected to the full seed count, i.e. the correlation expected between
  this ranking and an independent replicate of it with as many seeds: the ceiling for a
  proxy as noisy as the target itself.
- :func:`regret`: the target fidelity's mean of the proxy's pick minus the target's best
  mean (>= 0 for either direction), with a seed-bootstrap interval.

A diverged run (a non-finite score) counts as the worst for its fidelity
(:func:`worst_for_diverged`), as in the confirmation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "STATISTICS",
    "Direction",
    "Interval",
    "IntervalMethod",
    "Statistic",
    "average_ranks",
    "kendall_tau",
    "regret",
    "seed_bootstrap_means",
    "spearman_brown",
    "spearman_rho",
    "split_half",
    "transfer",
    "worst_for_diverged",
]

Array = npt.NDArray[np.float64]
Direction = Literal["minimize", "maximize"]
Statistic = Literal["kendall_tau", "spearman_rho"]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided bootstrap percentile interval at ``level``."""

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def average_ranks(x: npt.ArrayLike) -> Array:
    """Ranks 1..n along the last axis, ties sharing their average rank (scipy's
    ``rankdata(method="average")``). ``x``: ``[..., n]``."""
    a = np.asarray(x, dtype=np.float64)
    below = (a[..., None, :] < a[..., :, None]).sum(axis=-1)
    equal = (a[..., None, :] == a[..., :, None]).sum(axis=-1)  # counts the item itself
    return below + (equal + 1) / 2.0


def spearman_rho(x: npt.ArrayLike, y: npt.ArrayLike) -> Array | float:
    """Spearman's rho along the last axis: the Pearson correlation of average ranks.

    ``x``, ``y``: ``[..., n]`` (broadcast); a float for 1-D input. NaN where either side's
    ranks are all equal.
    """
    rx, ry = average_ranks(x), average_ranks(y)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (rx * ry).sum(axis=-1) / denom
    return _scalar(out)


def kendall_tau(x: npt.ArrayLike, y: npt.ArrayLike) -> Array | float:
    """Kendall's tau-b along the last axis (scipy's ``kendalltau`` default).

    tau-b = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)) over the
    n0 = n(n-1)/2 pairs. ``x``, ``y``: ``[..., n]``; NaN where either side is all ties.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    i, j = np.triu_indices(a.shape[-1], k=1)
    sx = np.sign(a[..., i] - a[..., j])
    sy = np.sign(b[..., i] - b[..., j])
    denom = np.sqrt(np.abs(sx).sum(axis=-1) * np.abs(sy).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (sx * sy).sum(axis=-1) / denom
    return _scalar(out)


STATISTICS: dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], Array | float]] = {
    "kendall_tau": kendall_tau,
    "spearman_rho": spearman_rho,
}


def _scalar(out: Array) -> Array | float:
    return float(out) if np.ndim(out) == 0 else out


def worst_for_diverged(scores: npt.ArrayLike, direction: Direction = "minimize") -> Array:
    """``scores [C, S]`` with every non-finite value (a diverged run) replaced by the worst
    finite value of the matrix (ranked last for its seed, as the confirmation counts it)."""
    a = np.array(scores, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        raise ValueError("no finite score: every run diverged")
    worst = a[finite].max() if direction == "minimize" else a[finite].min()
    a[~finite] = worst
    return a


def _matrix(scores: npt.ArrayLike) -> Array:
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 1:
        raise ValueError(f"scores must be [configurations >= 2, seeds >= 1], got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("scores hold non-finite values: apply worst_for_diverged first")
    return a


def seed_bootstrap_means(
    scores: npt.ArrayLike, n_boot: int, rng: np.random.Generator, *, inflate: bool = True
) -> Array:
    """``[n_boot, C]`` configuration means, each configuration's seeds resampled with
    replacement (``S`` draws from its own ``S`` seeds) in every replicate.

    With ``inflate``, each resampled mean's deviation from the configuration's mean is
    scaled by ``sqrt(S / (S - 1))``, so that its variance is ``sd^2 / S`` (the plain
    bootstrap's is ``(S - 1) / S`` of that: two thirds with 3 seeds).
    """
    a = _matrix(scores)
    c, s = a.shape
    idx = rng.integers(0, s, size=(n_boot, c, s))
    means = np.take_along_axis(a[None, :, :], idx, axis=2).mean(axis=2)
    if inflate and s > 1:
        centre = a.mean(axis=1)
        means = centre + math.sqrt(s / (s - 1)) * (means - centre)
    return means


IntervalMethod = Literal["hull", "basic", "percentile"]


def _interval(
    values: Array,
    estimate: float,
    level: float,
    method: IntervalMethod = "percentile",
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Interval:
    """The bootstrap interval of ``estimate`` from its replicates ``values`` (non-finite
    ones left out): ``percentile`` [q_lo, q_hi], ``basic`` [2 est - q_hi, 2 est - q_lo] or
    ``hull`` (from the lower of both lows to the higher of both highs), clipped to
    ``bounds``."""
    finite = values[np.isfinite(values)]
    tail = (1.0 - level) / 2.0
    if not finite.size:
        return Interval(float(estimate), math.nan, math.nan, level, int(values.size))
    q_lo, q_hi = (float(q) for q in np.quantile(finite, [tail, 1.0 - tail]))
    low, high = {
        "percentile": (q_lo, q_hi),
        "basic": (2 * estimate - q_hi, 2 * estimate - q_lo),
        "hull": (min(q_lo, 2 * estimate - q_hi), max(q_hi, 2 * estimate - q_lo)),
    }[method]
    low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(float(estimate), low, high, level, int(values.size))


def transfer(
    low: npt.ArrayLike,
    high: npt.ArrayLike,
    statistic: Statistic = "kendall_tau",
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    method: IntervalMethod = "hull",
    rng: np.random.Generator | None = None,
) -> Interval:
    """Rank correlation between the configuration means of ``low [C, S]`` and ``high
    [C, S']`` (rows: the same configurations), with a seed-bootstrap interval (``hull``
    by default, see the module's docstring; clipped to [-1, 1]): each replicate resamples
    the seeds within every configuration (:func:`seed_bootstrap_means`), independently at
    each fidelity. The direction does not matter (both fidelities share it)."""
    lo, hi = _matrix(low), _matrix(high)
    if lo.shape[0] != hi.shape[0]:
        raise ValueError(f"different configurations: {lo.shape[0]} and {hi.shape[0]} rows")
    rng = rng or np.random.default_rng(0)
    stat = STATISTICS[statistic]
    estimate = float(stat(lo.mean(axis=1), hi.mean(axis=1)))
    boot = np.asarray(
        stat(seed_bootstrap_means(lo, n_boot, rng), seed_bootstrap_means(hi, n_boot, rng))
    )
    return _interval(boot, estimate, level, method, (-1.0, 1.0))


def spearman_brown(r: float, k: float, statistic: Statistic | None = None) -> float:
    """The Spearman-Brown prophecy: the reliability of a mean over ``k`` times as many
    seeds, from the correlation ``r`` between two such half-size means.

    For a rank correlation (``statistic``) the correction is made on the Pearson scale of
    a bivariate normal (tau = 2/pi asin r; rho = 6/pi asin(r/2)) and mapped back. A
    correlation at or below 0 says the ranking holds no signal: the reliability is 0.
    """
    if not math.isfinite(r):
        return math.nan
    if r <= 0.0:
        return 0.0
    if r >= 1.0:
        return 1.0
    if statistic == "kendall_tau":
        pearson = math.sin(math.pi * r / 2.0)
    elif statistic == "spearman_rho":
        pearson = 2.0 * math.sin(math.pi * r / 6.0)
    else:
        pearson = r
    corrected = min(1.0, k * pearson / (1.0 + (k - 1.0) * pearson))
    if statistic == "kendall_tau":
        return 2.0 / math.pi * math.asin(corrected)
    if statistic == "spearman_rho":
        return 6.0 / math.pi * math.asin(corrected / 2.0)
    return corrected


def _balanced_splits(
    s: int, max_splits: int, rng: np.random.Generator
) -> list[tuple[Array, Array]]:
    """Pairs of disjoint seed-index sets of ``s // 2`` seeds each (the odd seed out), every
    unordered pair once, or ``max_splits`` random ones when there are more."""
    h = s // 2
    pairs = [
        (np.array(a), np.array(b))
        for a in itertools.combinations(range(s), h)
        for b in itertools.combinations([i for i in range(s) if i not in a], h)
        if a < b
    ]
    if len(pairs) > max_splits:
        chosen = rng.choice(len(pairs), size=max_splits, replace=False)
        pairs = [pairs[i] for i in sorted(chosen)]
    return pairs


def split_half(
    scores: npt.ArrayLike,
    statistic: Statistic = "kendall_tau",
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    max_splits: int = 200,
    rng: np.random.Generator | None = None,
) -> tuple[Interval, float]:
    """Split-half reliability of the ranking of ``scores [C, S]`` (``S >= 2``).

    Estimate: the rank correlation between the configuration means over two disjoint
    halves of ``S // 2`` seeds each (the same seeds for every configuration), averaged over
    the balanced splits, then Spearman-Brown corrected to ``S`` seeds (``k = S / (S // 2)``).
    Interval: each replicate splits every configuration's seeds at random into two
    disjoint halves and resamples each half with replacement within itself (so that no
    seed is in both halves, which would inflate the correlation), then corrects the same
    way. With 2 or 3 seeds the halves are single seeds and the replicates differ only in
    which seed lands where: the interval is the spread of one split's estimate, wider than
    the averaged estimate's own uncertainty.

    Returns the corrected estimate with its interval, and the uncorrected half-against-half
    correlation.
    """
    a = _matrix(scores)
    c, s = a.shape
    if s < 2:
        raise ValueError("split-half reliability needs at least 2 seeds")
    rng = rng or np.random.default_rng(0)
    stat = STATISTICS[statistic]
    h = s // 2
    k = s / h
    raw = [
        float(stat(a[:, x].mean(axis=1), a[:, y].mean(axis=1)))
        for x, y in _balanced_splits(s, max_splits, rng)
    ]
    half = float(np.nanmean(raw))
    # Bootstrap: per replicate and configuration, a random permutation of its seeds; the
    # first h form one half, the next h the other; each half resampled within itself.
    perm = np.argsort(rng.random((n_boot, c, s)), axis=2)
    first, second = perm[:, :, :h], perm[:, :, h : 2 * h]
    pick = rng.integers(0, h, size=(2, n_boot, c, h))
    first = np.take_along_axis(first, pick[0], axis=2)
    second = np.take_along_axis(second, pick[1], axis=2)
    tiled = np.broadcast_to(a[None, :, :], (n_boot, c, s))
    mean_a = np.take_along_axis(tiled, first, axis=2).mean(axis=2)
    mean_b = np.take_along_axis(tiled, second, axis=2).mean(axis=2)
    boot_raw = np.asarray(stat(mean_a, mean_b))
    boot = np.array([spearman_brown(float(r), k, statistic) for r in boot_raw])
    return _interval(boot, spearman_brown(half, k, statistic), level), half


def regret(
    low: npt.ArrayLike,
    high: npt.ArrayLike,
    direction: Direction = "minimize",
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[Interval, int, int]:
    """Regret of picking by ``low``: ``high``'s mean of ``low``'s best configuration minus
    ``high``'s best mean (sign flipped for ``maximize``, so it is always >= 0).

    Interval: seed bootstrap at both fidelities (the pick is made again in every
    replicate), percentile (regret is a minimum's gap, bounded by 0, where a reflected
    interval would leave its range). Returns the interval, the proxy's pick and the
    target's best (row indices).
    """
    lo, hi = _matrix(low), _matrix(high)
    if lo.shape[0] != hi.shape[0]:
        raise ValueError(f"different configurations: {lo.shape[0]} and {hi.shape[0]} rows")
    rng = rng or np.random.default_rng(0)
    sign = 1.0 if direction == "minimize" else -1.0

    def of(lo_means: Array, hi_means: Array) -> tuple[Array, Array, Array]:
        pick = np.argmin(sign * lo_means, axis=-1)
        best = np.argmin(sign * hi_means, axis=-1)
        picked = np.take_along_axis(hi_means, pick[..., None], axis=-1)[..., 0]
        top = np.take_along_axis(hi_means, best[..., None], axis=-1)[..., 0]
        return sign * (picked - top), pick, best

    value, pick, best = of(lo.mean(axis=1), hi.mean(axis=1))
    boot, _, _ = of(seed_bootstrap_means(lo, n_boot, rng), seed_bootstrap_means(hi, n_boot, rng))
    return _interval(np.asarray(boot), float(value), level), int(pick), int(best)
