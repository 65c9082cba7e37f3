"""Shaffer's logical constraints: weak orders and the weight still at risk."""

from __future__ import annotations

import pytest

from studies.confirmation.shaffer import MAX_EXACT, at_risk_bound, weak_orders

ONES3 = [[0, 1, 1], [1, 0, 1], [1, 1, 0]]


def test_weak_orders_are_the_fubini_numbers() -> None:
    assert [len(weak_orders(k)) for k in range(1, 7)] == [1, 3, 13, 75, 541, 4683]
    ranks = weak_orders(3)
    assert {tuple(r) for r in ranks} >= {(0, 0, 0), (0, 1, 2), (1, 0, 0), (0, 1, 1)}


def test_three_contenders_by_hand() -> None:
    # All tied: every ordered pair at risk.
    assert at_risk_bound(ONES3, []) == 6
    # 0 better than 1: 2 can tie with 0 or with 1, not both: 3 pairs + 1 tie.
    assert at_risk_bound(ONES3, [(0, 1)]) == 4
    # 0 better than 1 and 2: 1 and 2 may tie.
    assert at_risk_bound(ONES3, [(0, 1), (0, 2)]) == 4
    # a full order: one ordered pair per unordered pair.
    assert at_risk_bound(ONES3, [(0, 1), (1, 2)]) == 3
    # contradictory claims leave no order
    assert at_risk_bound(ONES3, [(0, 1), (1, 0)]) == 0


def test_weights() -> None:
    # the baseline (2) leads its claims at weight 0.5
    w = [[0, 1, 1], [1, 0, 1], [0.5, 0.5, 0]]
    assert at_risk_bound(w, []) == 5
    # 0 better than 1: the worst order ties 0 with the baseline: (1,0) 1 + (0,2) 1 + (2,0)
    # 0.5 + (1,2) 1 = 3.5
    assert at_risk_bound(w, [(0, 1)]) == pytest.approx(3.5)
    assert at_risk_bound(w, [(0, 1), (0, 2)]) == pytest.approx(3.0)


def test_beyond_the_enumeration_holm() -> None:
    k = MAX_EXACT + 1
    w = [[0 if i == j else 1 for j in range(k)] for i in range(k)]
    assert at_risk_bound(w, []) == k * (k - 1)
    assert at_risk_bound(w, [(0, 1), (2, 3)]) == k * (k - 1) - 2
    with pytest.raises(ValueError, match="enumerated"):
        weak_orders(k)


def test_never_above_holm() -> None:
    w = [[0 if i == j else 1 for j in range(5)] for i in range(5)]
    claims = [(0, 1), (0, 2), (3, 4), (1, 4)]
    for upto in range(len(claims) + 1):
        assert at_risk_bound(w, claims[:upto]) <= 20 - upto
