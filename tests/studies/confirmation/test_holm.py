"""holm against hand-computed adjustments (R: p.adjust(p, "holm"))."""

from __future__ import annotations

import math

import pytest

from studies.confirmation.holm import holm


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04 = 0.02, 0.03, 0.06,
        # 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06, back in the given order
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        # 2*0.3 = 0.6 > 0.5: the second is raised to the first (monotone)
        ([0.3, 0.5], [0.6, 0.6]),
        # capped at 1
        ([0.6, 0.9], [1.0, 1.0]),
        # ties: 3*0.02 for the first, the others raised to it
        ([0.02, 0.02, 0.02], [0.06, 0.06, 0.06]),
        ([0.2], [0.2]),
        ([], []),
        ([0.0, 1.0], [0.0, 1.0]),
        # 5 tests: 5*0.001, 4*0.002, 3*0.02, 2*0.04, 1*0.5
        ([0.5, 0.001, 0.04, 0.002, 0.02], [0.5, 0.005, 0.08, 0.008, 0.06]),
    ],
)
def test_hand_computed(p: list[float], expected: list[float]) -> None:
    assert holm(p) == pytest.approx(expected, abs=1e-15)


def test_nan_counts_in_m_and_stays_nan() -> None:
    adjusted = holm([math.nan, 0.01])
    assert math.isnan(adjusted[0])
    assert adjusted[1] == pytest.approx(0.02)


def test_rejects_values_outside_0_1() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


def test_adjusted_never_below_raw_and_order_preserved() -> None:
    p = [0.04, 0.001, 0.2, 0.011, 0.03, 0.7]
    adjusted = holm(p)
    assert all(a >= raw for a, raw in zip(adjusted, p, strict=True))
    ranked = sorted(range(len(p)), key=lambda i: p[i])
    assert [adjusted[i] for i in ranked] == sorted(adjusted)
