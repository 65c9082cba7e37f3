"""The fixed-seed confirmation: every contender runs the same ``n`` seeds, the winner is the
best mean, and paired t-tests compare it with the runner-up and the baseline, with Holm's
adjustment over those comparisons.

It is the design a sequential race is measured against (benchmarks/sequential_bench.py),
and, with ``adjust="none"`` and ``choose_on = claim_on = "test"``, the old verdict (pick
the best test mean, then 95% intervals on the same test scores). Choosing the winner on
the data the claims are tested on is not accounted for by either adjustment: with more
than two candidates the rate of false "better" claims exceeds ``alpha`` (the tests show
by how much); the sequential race (studies.confirmation.sequential) accounts for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from studies.confirmation.holm import holm
from studies.confirmation.replicates import Direction, Scores, fill_diverged, finite_mean
from studies.confirmation.tdist import t_quantile, t_two_sided_p

__all__ = ["FixedComparison", "FixedContender", "FixedVerdict", "Split", "fixed_comparison"]

Split = Literal["validation", "test"]
FixedOutcome = Literal["better", "worse", "indistinguishable", "unknown"]


@dataclass(frozen=True)
class FixedComparison:
    """The winner against ``other`` over ``n`` paired seeds on the claim split.

    ``mean``: winner - other (metric units); ``low``/``high``: its two-sided interval at
    level ``1 - alpha / m`` (Bonferroni over the ``m`` comparisons: the interval of Holm's
    first step); ``t`` and ``p`` the paired t statistic and its two-sided p-value,
    ``p_adjusted`` Holm's (or ``p`` itself with ``adjust="none"``). ``outcome``: better or
    worse when ``p_adjusted <= alpha``, on the side of the mean; else indistinguishable;
    unknown with fewer than 2 pairs. ``report_mean`` etc.: the same difference on the other
    split (the test split when the claims are on validation), reported only.
    """

    other: str
    n: int
    mean: float
    low: float
    high: float
    t: float
    p: float
    p_adjusted: float
    outcome: FixedOutcome
    report_mean: float
    report_low: float
    report_high: float


@dataclass(frozen=True)
class FixedContender:
    key: str
    seeds: int
    diverged: int
    validation_mean: float  # of the finite scores
    test_mean: float

    @property
    def divergence_rate(self) -> float:
        return self.diverged / self.seeds if self.seeds else math.nan


@dataclass(frozen=True)
class FixedVerdict:
    """The fixed design's answer: ``comparisons`` keyed by the other contender (the
    runner-up, then the baseline)."""

    winner: str | None
    runner_up: str | None
    baseline: str | None
    seeds: int
    alpha: float
    adjust: Literal["holm", "none"]
    choose_on: Split
    claim_on: Split
    comparisons: dict[str, FixedComparison]
    contenders: dict[str, FixedContender]


def _paired(d: np.ndarray, level: float, sign: float) -> tuple[float, float, float, float, float]:
    """mean, low, high (two-sided ``level``), t and p of ``d`` (winner - other in loss
    units), the mean and interval turned back to metric units by ``sign``."""
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return -sign * mean, math.nan, math.nan, math.nan, math.nan
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
    else:
        t = mean / se
        p = float(t_two_sided_p(t, n - 1))
    half = t_quantile(1.0 - level / 2.0, n - 1) * se
    ends = sorted((sign * (mean - half), sign * (mean + half)))
    return sign * mean, ends[0], ends[1], sign * t, p


def fixed_comparison(
    scores: Scores,
    candidates: Sequence[str],
    baseline: str | None = None,
    *,
    alpha: float = 0.05,
    direction: Direction = "minimize",
    margin: float = 0.005,
    adjust: Literal["holm", "none"] = "holm",
    choose_on: Split = "validation",
    claim_on: Split = "validation",
) -> FixedVerdict:
    """The fixed design on the seeds every contender has (the shared prefix of
    ``scores``: contender -> [(validation, test) per seed index], NaN = diverged, counted as
    the worst of its seed plus ``margin``, see studies.confirmation.replicates).

    The winner is the candidate with the best mean on ``choose_on``; it is compared on
    ``claim_on`` with the runner-up (the next candidate) and the baseline.
    """
    if not candidates:
        raise ValueError("a comparison needs at least one candidate")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    keys = [*candidates, *([baseline] if baseline is not None else [])]
    if len(set(keys)) != len(keys):
        raise ValueError(f"contenders must be distinct, got {keys}")
    n = min(len(scores.get(key, ())) for key in keys)
    sign = 1.0 if direction == "minimize" else -1.0
    filled: dict[Split, np.ndarray] = {}
    splits: tuple[Split, Split] = ("validation", "test")
    for index, split in enumerate(splits):
        table = np.array(
            [[float(seed[index]) for seed in list(scores[key])[:n]] for key in keys]
        ).reshape(len(keys), n)
        for s in np.flatnonzero(~np.isfinite(table).all(axis=0)):
            table[:, s] = fill_diverged(list(table[:, s]), margin, direction)
        filled[split] = sign * table  # loss units: lower is better
    contenders = {}
    for key in keys:
        seeds = list(scores.get(key, ()))[:n]
        val_mean, diverged = finite_mean([v for v, _ in seeds])
        test_mean, _ = finite_mean([t for _, t in seeds])
        contenders[key] = FixedContender(key, n, diverged, val_mean, test_mean)
    if n == 0:
        return FixedVerdict(
            None, None, baseline, 0, alpha, adjust, choose_on, claim_on, {}, contenders
        )
    means = filled[choose_on][: len(candidates)].mean(axis=1)
    order = sorted(range(len(candidates)), key=lambda c: (float(means[c]), c))
    w = order[0]
    others = [o for o in (order[1] if len(order) > 1 else None, len(candidates)) if o is not None]
    if baseline is None:
        others = [o for o in others if o < len(candidates)]
    m = len(others)
    report: Split = "test" if claim_on == "validation" else "validation"
    rows = []
    for o in others:
        d = filled[claim_on][w] - filled[claim_on][o]
        mean, low, high, t, p = _paired(d, alpha / m, sign)
        r_mean, r_low, r_high, _, _ = _paired(
            filled[report][w] - filled[report][o], alpha / m, sign
        )
        rows.append((o, mean, low, high, t, p, r_mean, r_low, r_high))
    p_values = [row[5] for row in rows]
    adjusted = holm(p_values) if adjust == "holm" else list(p_values)
    comparisons = {}
    for (o, mean, low, high, t, p, r_mean, r_low, r_high), p_adj in zip(
        rows, adjusted, strict=True
    ):
        outcome: FixedOutcome
        if math.isnan(p_adj):
            outcome = "unknown"
        elif p_adj <= alpha:
            # Better: the winner's loss-oriented mean difference is below 0.
            outcome = "better" if sign * mean < 0 else "worse"
        else:
            outcome = "indistinguishable"
        comparisons[keys[o]] = FixedComparison(
            keys[o], n, mean, low, high, t, p, p_adj, outcome, r_mean, r_low, r_high
        )
    return FixedVerdict(
        winner=keys[w],
        runner_up=keys[order[1]] if len(order) > 1 else None,
        baseline=baseline,
        seeds=n,
        alpha=alpha,
        adjust=adjust,
        choose_on=choose_on,
        claim_on=claim_on,
        comparisons=comparisons,
        contenders=contenders,
    )
