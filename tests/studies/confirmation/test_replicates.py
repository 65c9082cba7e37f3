"""The rule for diverged replicates: the worst finite score of the seed plus a margin."""

from __future__ import annotations

import math

from studies.confirmation.replicates import fill_diverged, finite_mean

NAN = math.nan


def test_minimize_worst_is_the_largest() -> None:
    assert fill_diverged([0.2, NAN, 0.25, 0.21], 0.005, "minimize") == [0.2, 0.255, 0.25, 0.21]


def test_maximize_worst_is_the_smallest() -> None:
    assert fill_diverged([0.8, NAN, 0.75], 0.01, "maximize") == [0.8, 0.74, 0.75]


def test_diverged_runs_tie_with_each_other() -> None:
    filled = fill_diverged([NAN, 0.3, math.inf, NAN], 0.005, "minimize")
    assert filled == [0.305, 0.3, 0.305, 0.305]


def test_all_diverged_all_equal() -> None:
    assert fill_diverged([NAN, NAN], 0.005, "minimize") == [0.0, 0.0]


def test_nothing_to_fill() -> None:
    assert fill_diverged([0.1, 0.2], 0.005, "minimize") == [0.1, 0.2]


def test_finite_mean() -> None:
    assert finite_mean([0.1, NAN, 0.3]) == (0.2, 1)
    mean, diverged = finite_mean([NAN])
    assert math.isnan(mean) and diverged == 1
