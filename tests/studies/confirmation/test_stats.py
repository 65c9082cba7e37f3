"""studies.confirmation.stats against hand-computed values and published t tables."""

from __future__ import annotations

import math

import pytest

from studies.confirmation.stats import (
    Estimate,
    compare,
    estimate,
    paired_difference,
    rank,
    t_quantile_975,
    verdict,
)

# Student's sleep data (Cushny & Peebles 1905, R's `sleep`): extra hours of sleep of the
# same 10 patients under two drugs. R: t.test(g1, g2, paired = TRUE) gives mean of the
# differences -1.58, 95% CI [-2.4598858, -0.7001142].
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


@pytest.mark.parametrize(
    ("df", "expected"),
    [
        (1, 12.706),
        (2, 4.303),
        (3, 3.182),
        (4, 2.776),
        (10, 2.228),
        (29, 2.045),
        (30, 2.042),
        (31, 2.040),  # the first value of the approximation
        (40, 2.021),
        (60, 2.000),
        (120, 1.980),
        (10**6, 1.960),
    ],
)
def test_t_quantiles_match_the_table(df: int, expected: float) -> None:
    assert t_quantile_975(df) == pytest.approx(expected, abs=5e-4)


def test_t_quantiles_against_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 80), 100, 250, 1000]:
        assert t_quantile_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=1e-7)
    with pytest.raises(ValueError, match=">= 1"):
        t_quantile_975(0)


def test_three_values() -> None:
    e = estimate([1.0, 2.0, 3.0])
    # mean 2, sd sqrt((1 + 0 + 1) / 2) = 1, half-width t(0.975, 2) / sqrt(3)
    assert (e.n, e.n_excluded, e.mean, e.sd) == (3, 0, 2.0, 1.0)
    assert e.half_width == pytest.approx(4.302652730 / math.sqrt(3))
    assert (e.low, e.high) == pytest.approx((2.0 - 2.4841377, 2.0 + 2.4841377))
    assert e.has_interval


def test_one_seed_has_no_interval() -> None:
    e = estimate([0.42])
    assert (e.n, e.mean) == (1, 0.42)
    assert math.isnan(e.sd) and math.isnan(e.half_width)
    assert math.isnan(e.low) and math.isnan(e.high)
    assert not e.has_interval


def test_equal_values_give_a_zero_width_interval() -> None:
    e = estimate([0.3, 0.3, 0.3])
    assert e.sd == 0.0 and e.half_width == 0.0
    assert e.low == e.high == pytest.approx(0.3)


def test_nan_replicate_is_excluded_and_counted() -> None:
    e = estimate([0.2, math.nan, 0.4, math.inf])
    # two values left: mean 0.3, sd sqrt(2 * 0.01 / 1) = 0.1414, t(0.975, 1) * 0.1414 / sqrt 2
    assert (e.n, e.n_excluded) == (2, 2)
    assert e.mean == pytest.approx(0.3)
    assert e.sd == pytest.approx(math.sqrt(0.02))
    assert e.half_width == pytest.approx(12.706204736 * 0.1)
    nothing = estimate([math.nan])
    assert (nothing.n, nothing.n_excluded) == (0, 1) and math.isnan(nothing.mean)


def test_paired_difference_on_the_sleep_data() -> None:
    a = dict(enumerate(SLEEP_1))
    b = dict(enumerate(SLEEP_2))
    d = paired_difference(a, b)
    assert d.n == 10
    assert d.mean == pytest.approx(-1.58)
    assert d.sd == pytest.approx(1.229995, abs=1e-6)
    assert (d.low, d.high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-6)
    # Shuffling the pairing loses the shared patient effect: a wider interval.
    shuffled = paired_difference(a, dict(enumerate(SLEEP_2[1:] + SLEEP_2[:1])))
    assert shuffled.mean == pytest.approx(-1.58) and shuffled.half_width > d.half_width


def test_paired_difference_uses_shared_seeds_only() -> None:
    a = {1: 0.30, 2: 0.20, 3: 0.25, 4: 0.9}
    b = {1: 0.40, 2: 0.28, 3: math.nan, 5: 0.1}
    d = paired_difference(a, b)
    # shared seeds 1, 2, 3; seed 3 has a NaN side: pairs 1 and 2 -> -0.10 and -0.08
    assert (d.n, d.n_excluded) == (2, 1)
    assert d.mean == pytest.approx(-0.09)
    assert d.half_width == pytest.approx(12.706204736 * 0.01)  # sd 0.01414 / sqrt 2


def _diff(mean: float, half_width: float, n: int = 3) -> Estimate:
    return Estimate(n=n, n_excluded=0, mean=mean, sd=1.0, half_width=half_width)


def test_compare_is_direction_aware() -> None:
    assert compare(_diff(-0.1, 0.05), "minimize") == "better"
    assert compare(_diff(-0.1, 0.05), "maximize") == "worse"
    assert compare(_diff(0.1, 0.05), "minimize") == "worse"
    assert compare(_diff(0.1, 0.05), "maximize") == "better"
    assert compare(_diff(-0.1, 0.2), "minimize") == "indistinguishable"
    assert compare(_diff(-0.1, 0.1), "minimize") == "indistinguishable"  # touches 0
    assert compare(estimate([-0.1]), "minimize") == "unknown"  # one pair: no interval
    assert compare(estimate([0.0, 0.0]), "minimize") == "indistinguishable"


def test_rank_puts_undefined_means_last() -> None:
    estimates = {
        "a": estimate([0.3]),
        "b": estimate([math.nan]),
        "c": estimate([0.1, 0.2]),
        "d": estimate([0.3]),
    }
    assert rank(estimates, "minimize") == ["c", "a", "d", "b"]
    assert rank(estimates, "maximize") == ["a", "d", "c", "b"]


def test_verdict() -> None:
    samples = {
        "trial-1": {1: 0.20, 2: 0.22, 3: 0.21},
        "trial-2": {1: 0.21, 2: 0.23, 3: 0.20},
        "baseline": {1: 0.40, 2: 0.41, 3: 0.39},
    }
    v = verdict(samples, "minimize", "baseline")
    assert (v.winner, v.runner_up, v.baseline) == ("trial-1", "trial-2", "baseline")
    assert v.vs_baseline is not None and v.vs_baseline.mean == pytest.approx(-0.19)
    # differences -0.20, -0.19, -0.18: sd 0.01, half-width 4.3027 * 0.01 / sqrt 3
    assert v.vs_baseline.half_width == pytest.approx(0.0248414, abs=1e-6)
    assert v.vs_baseline_outcome == "better"
    assert v.vs_runner_up is not None and v.vs_runner_up.mean == pytest.approx(-0.01 / 3)
    assert v.vs_runner_up_outcome == "indistinguishable"
    # The baseline is never the winner, even with the best mean.
    v = verdict(samples, "maximize", "baseline")
    assert v.winner == "trial-2" and v.vs_baseline_outcome == "worse"


def test_verdict_without_baseline_or_runner_up() -> None:
    v = verdict({"trial-0": {1: 0.3, 2: 0.4}}, "minimize", "baseline")
    assert (v.winner, v.runner_up, v.baseline) == ("trial-0", None, None)
    assert v.vs_baseline is None and v.vs_runner_up_outcome is None
    assert verdict({}, "minimize").winner is None
