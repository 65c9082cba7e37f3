"""Figures in tables at a readable precision (studies.report.numbers, the confirmation's
intervals): 4-5 significant digits whatever the metric's magnitude."""

from __future__ import annotations

import math

import pytest

from studies.confirmation import estimate
from studies.report.confirmation import format_difference, format_estimate
from studies.report.numbers import decimals_for, figure, fixed, setting, settings


@pytest.mark.parametrize(
    ("value", "decimals"),
    [(0.385, 4), (0.05, 5), (0.000123, 7), (1.0, 4), (12.3, 3), (123.4, 2), (12345.0, 0)],
)
def test_decimals_give_4_to_5_significant_digits(value: float, decimals: int) -> None:
    assert decimals_for(value) == decimals
    digits = fixed(value, decimals).lstrip("0.").replace(".", "")
    assert len(digits) in (4, 5), fixed(value, decimals)


def test_decimals_follow_the_largest_finite_number() -> None:
    assert decimals_for(0.001, 0.5, math.nan, math.inf) == 4
    assert decimals_for() == 4 and decimals_for(0.0) == 4


def test_figures_and_settings() -> None:
    assert figure(0.123456789) == "0.12346"
    assert figure(None) == "-" and figure(math.nan) == "NaN"
    assert figure(1234567.0) == "1.2346e+06"
    assert setting(0.000422512) == "0.0004225" and setting(3) == "3" and setting(True) == "True"
    assert settings({"loss.lambda_sg": 0.08430525, "loss.num_scales": 4}) == (
        "lambda_sg=0.08431, num_scales=4"
    )
    assert fixed(math.nan, 3) == "n/a"


def test_intervals_keep_their_digits_at_any_magnitude() -> None:
    # abs_rel-like values: as before (4 decimals).
    assert format_estimate(estimate([0.40115, 0.40485, 0.34909])) == (
        "0.3850 ± 0.0775 [0.3076, 0.4625]"
    )
    # Tiny values were "0.0001 ± 0.0001": now 4 significant digits.
    assert format_estimate(estimate([0.00012345, 0.00013579])) == (
        "0.0001296 ± 0.0000784 [0.0000512, 0.0002080]"
    )
    # rmse-like values in metres: 5 significant digits, not 6.
    assert format_estimate(estimate([12.3, 12.5, 12.1])) == "12.300 ± 0.497 [11.803, 12.797]"


def test_a_difference_is_shown_at_the_precision_of_what_it_compares() -> None:
    d = estimate([-0.02, -0.03, -0.02])
    assert format_difference(d, 0.385) == "-0.0233 ± 0.0143 [-0.0377, -0.0090], 3 pairs"
    # Far smaller than the values: 3 significant digits of its own, not "-0.0002 ± 0.0004".
    tiny = estimate([-0.00024, -0.00010, -0.00038])
    assert format_difference(tiny, 0.39) == "-0.000240 ± 0.000348 [-0.000588, 0.000108], 3 pairs"
