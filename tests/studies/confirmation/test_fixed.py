"""The fixed-seed design against hand-computed paired t-tests."""

from __future__ import annotations

import math

import pytest

from studies.confirmation.fixed import fixed_comparison

# Student's sleep data (R's `sleep`): t.test(g1, g2, paired = TRUE): mean difference
# -1.58, t = -4.0621, df = 9, p-value = 0.002833, 95% CI [-2.4598858, -0.7001142].
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def _scores(*columns: list[float]) -> list[tuple[float, float]]:
    return list(zip(*columns, strict=True)) if len(columns) == 2 else [(v, v) for v in columns[0]]


def test_one_candidate_and_the_baseline_is_r_paired_t() -> None:
    v = fixed_comparison({"a": _scores(SLEEP_1), "base": _scores(SLEEP_2)}, ["a"], "base")
    assert v.winner == "a" and v.runner_up is None and v.seeds == 10
    c = v.comparisons["base"]
    assert (c.n, c.mean) == (10, pytest.approx(-1.58))
    assert c.t == pytest.approx(-4.0621, abs=1e-4)
    assert c.p == pytest.approx(0.002833, abs=1e-6)
    assert c.p_adjusted == c.p  # one comparison
    assert (c.low, c.high) == pytest.approx((-2.4598858, -0.7001142))
    assert c.outcome == "better"
    assert c.report_mean == pytest.approx(-1.58)  # test = validation here


def test_maximize_flips_the_winner_and_the_sign() -> None:
    v = fixed_comparison(
        {"a": _scores(SLEEP_1), "b": _scores(SLEEP_2)}, ["a", "b"], direction="maximize"
    )
    assert v.winner == "b" and v.runner_up == "a" and list(v.comparisons) == ["a"]
    c = v.comparisons["a"]
    assert c.mean == pytest.approx(1.58) and c.t == pytest.approx(4.0621, abs=1e-4)
    assert c.outcome == "better"


def test_holm_over_runner_up_and_baseline() -> None:
    # winner a; a - b = (-0.01, -0.02, -0.03) (p from t = -3.4641 on 2 df), a - base
    # = (-0.1, -0.1, -0.1 + tiny) (p ~ 0)
    scores = {
        "a": _scores([0.10, 0.10, 0.10]),
        "b": _scores([0.11, 0.12, 0.13]),
        "base": _scores([0.20, 0.20, 0.2001]),
    }
    v = fixed_comparison(scores, ["a", "b"], "base", alpha=0.05)
    rb, base = v.comparisons["b"], v.comparisons["base"]
    assert rb.t == pytest.approx(-math.sqrt(12), rel=1e-9)
    p_b = 2 * (1 - (0.5 + 0.5 * math.sqrt(12) / math.sqrt(2 + 12)))  # t on 2 df, closed form
    assert rb.p == pytest.approx(p_b, rel=1e-9)
    assert base.p < rb.p
    # Holm: the smaller p times 2, the larger times 1 (and at least the first)
    assert base.p_adjusted == pytest.approx(2 * base.p)
    assert rb.p_adjusted == pytest.approx(max(rb.p, 2 * base.p))
    assert rb.outcome == "indistinguishable" and base.outcome == "better"
    # Bonferroni interval of Holm's first step: 1 - alpha / 2
    assert rb.high - rb.mean == pytest.approx(
        6.205346817 * 0.01 / math.sqrt(3), rel=1e-6
    )  # t(0.9875, 2) * sd / sqrt(3)


def test_choose_on_test_claim_on_test_without_adjustment_is_the_old_verdict() -> None:
    scores = {"a": [(0.3, 0.1), (0.3, 0.1)], "b": [(0.1, 0.3), (0.1, 0.35)]}
    old = fixed_comparison(scores, ["a", "b"], adjust="none", choose_on="test", claim_on="test")
    new = fixed_comparison(scores, ["a", "b"])
    assert (old.winner, new.winner) == ("a", "b")
    assert old.comparisons["b"].p_adjusted == old.comparisons["b"].p


def test_diverged_replicates_count_as_worst() -> None:
    nan = math.nan
    scores = {
        "a": [(0.10, 0.10), (nan, nan), (0.10, 0.11)],
        "b": [(0.12, 0.12), (0.13, 0.12), (0.12, 0.12)],
    }
    v = fixed_comparison(scores, ["a", "b"], margin=0.005)
    # seed 1: a -> 0.13 + 0.005 on validation, 0.12 + 0.005 on test
    assert v.winner == "a"  # means 0.1117 vs 0.1233
    c = v.comparisons["b"]
    assert c.mean == pytest.approx(((-0.02) + 0.005 + (-0.02)) / 3)
    assert c.report_mean == pytest.approx(((-0.02) + 0.005 + (-0.01)) / 3)
    assert v.contenders["a"].diverged == 1 and v.contenders["a"].divergence_rate == 1 / 3
    assert v.contenders["a"].validation_mean == pytest.approx(0.10)  # finite ones


def test_shared_prefix_and_edge_cases() -> None:
    scores = {"a": [(0.1, 0.1)] * 5, "b": [(0.2, 0.2)] * 3}
    v = fixed_comparison(scores, ["a", "b"])
    assert v.seeds == 3
    c = v.comparisons["b"]
    # identical differences: sd 0, the mean decides
    assert (c.p, c.outcome) == (0.0, "better")
    one = fixed_comparison({"a": [(0.1, 0.1)], "b": [(0.2, 0.2)]}, ["a", "b"])
    assert one.comparisons["b"].outcome == "unknown"
    none = fixed_comparison({"a": [], "b": []}, ["a", "b"])
    assert none.winner is None and none.comparisons == {}
    with pytest.raises(ValueError, match="candidate"):
        fixed_comparison({}, [])
    with pytest.raises(ValueError, match="distinct"):
        fixed_comparison(scores, ["a", "a"])
