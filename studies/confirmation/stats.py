"""Small-sample statistics of the confirmation: mean, sd, Student-t intervals, paired
differences, and the verdict built on them.

Pure Python on purpose (no numpy, optuna, mlflow or torch): `salsweep studies show` reads a
confirmation from the storage and prints it in a fraction of a second.

Conventions: a replicate's value is a float; a non-finite value (a run that diverged) is
left out of every statistic and counted in ``n_excluded``. With fewer than two values the
sd and the interval are undefined: NaN, shown as "n/a". Intervals are two-sided 95%.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Direction",
    "Estimate",
    "Outcome",
    "Verdict",
    "compare",
    "estimate",
    "paired_difference",
    "rank",
    "t_quantile_975",
    "verdict",
]

Direction = Literal["minimize", "maximize"]
# How configuration A compares with B over their shared seeds (A - B's interval):
# better/worse beyond noise, indistinguishable (the interval holds 0), or unknown (fewer
# than two shared seeds: no interval).
Outcome = Literal["better", "worse", "indistinguishable", "unknown"]

# Student t's 0.975 quantile (two-sided 95%) for 1..30 degrees of freedom.
_T975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
_Z975 = 1.959963984540054  # the normal's 0.975 quantile


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom.

    Exact (9 decimals) for df 1..30; beyond, the Cornish-Fisher expansion around the normal
    quantile (error below 1e-6 from df 31 on).
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class Estimate:
    """Mean of ``n`` finite values with its 95% t-interval ``mean ± half_width``.

    ``sd`` is the sample standard deviation (n - 1). ``mean`` is NaN when n == 0; ``sd``,
    ``half_width``, ``low`` and ``high`` are NaN when n < 2. ``n_excluded`` counts the
    non-finite values that were left out.
    """

    n: int
    n_excluded: int
    mean: float
    sd: float
    half_width: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def has_interval(self) -> bool:
        return self.n >= 2


def estimate(values: Iterable[float]) -> Estimate:
    """Mean, sample sd and 95% t-interval of the finite ``values``."""
    finite: list[float] = []
    excluded = 0
    for v in values:
        value = float(v)
        if math.isfinite(value):
            finite.append(value)
        else:
            excluded += 1
    n = len(finite)
    if n == 0:
        return Estimate(0, excluded, math.nan, math.nan, math.nan)
    mean = math.fsum(finite) / n
    if n == 1:
        return Estimate(1, excluded, mean, math.nan, math.nan)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    return Estimate(n, excluded, mean, sd, t_quantile_975(n - 1) * sd / math.sqrt(n))


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
    """``a - b`` over the seeds both have: its mean and 95% interval, ``n`` pairs.

    A pair with a non-finite side is left out and counted in ``n_excluded``.
    """
    shared = sorted(set(a) & set(b))
    return estimate(float(a[s]) - float(b[s]) for s in shared)


def compare(diff: Estimate, direction: Direction) -> Outcome:
    """What ``diff`` (= A - B) says of A against B: ``better`` when the whole interval lies
    on A's good side of 0, ``worse`` when on B's, else ``indistinguishable``; ``unknown``
    with fewer than two pairs."""
    if not diff.has_interval:
        return "unknown"
    sign = 1.0 if direction == "minimize" else -1.0
    if sign * diff.high < 0:
        return "better"
    if sign * diff.low > 0:
        return "worse"
    return "indistinguishable"


def rank(estimates: Mapping[str, Estimate], direction: Direction) -> list[str]:
    """Keys from the best mean to the worst; undefined means last; ties keep the given order."""
    sign = 1.0 if direction == "minimize" else -1.0
    order = {key: i for i, key in enumerate(estimates)}

    def key(k: str) -> tuple[bool, float, int]:
        mean = estimates[k].mean
        defined = math.isfinite(mean)
        return (not defined, sign * mean if defined else 0.0, order[k])

    return sorted(estimates, key=key)


@dataclass(frozen=True)
class Verdict:
    """The best candidate and how sure the comparison is.

    ``winner``: the candidate (baseline excluded) with the best mean; ``runner_up`` the
    next. Differences are ``winner - other`` over the seeds both have.
    """

    winner: str | None
    runner_up: str | None
    vs_runner_up: Estimate | None
    vs_runner_up_outcome: Outcome | None
    baseline: str | None
    vs_baseline: Estimate | None
    vs_baseline_outcome: Outcome | None


def verdict(
    samples: Mapping[str, Mapping[int, float]], direction: Direction, baseline: str | None = None
) -> Verdict:
    """Winner, runner-up and paired comparisons of the configurations in ``samples``
    (config key -> seed -> value). ``baseline`` names the key that is compared with but
    never the winner (None: no baseline)."""
    candidates = {
        key: estimate(values.values())
        for key, values in samples.items()
        if key != baseline and estimate(values.values()).n > 0
    }
    order = rank(candidates, direction)
    winner = order[0] if order else None
    runner_up = order[1] if len(order) > 1 else None
    vs_runner_up = vs_baseline = None
    if winner is not None and runner_up is not None:
        vs_runner_up = paired_difference(samples[winner], samples[runner_up])
    has_baseline = baseline is not None and baseline in samples
    if winner is not None and baseline is not None and has_baseline:
        vs_baseline = paired_difference(samples[winner], samples[baseline])
    return Verdict(
        winner=winner,
        runner_up=runner_up,
        vs_runner_up=vs_runner_up,
        vs_runner_up_outcome=None if vs_runner_up is None else compare(vs_runner_up, direction),
        baseline=baseline if has_baseline else None,
        vs_baseline=vs_baseline,
        vs_baseline_outcome=None if vs_baseline is None else compare(vs_baseline, direction),
    )
