"""studies.confirmation.tdist against published t tables and, where installed, scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studies.confirmation.tdist import normal_sf, t_quantile, t_sf, t_two_sided_p


@pytest.mark.parametrize(
    ("q", "df", "expected"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 9, 2.262),
        (0.975, 30, 2.042),
        (0.995, 3, 5.841),
        (0.995, 10, 3.169),
        (0.999, 4, 7.173),
        (0.9995, 5, 6.869),
        (0.95, 120, 1.658),
        (0.025, 9, -2.262),
    ],
)
def test_quantiles_match_the_table(q: float, df: int, expected: float) -> None:
    assert t_quantile(q, df) == pytest.approx(expected, abs=5e-4)


def test_tails_are_the_quantiles_inverse() -> None:
    for df in (1, 2, 3, 4, 7, 12, 31, 80):
        for q in (0.6, 0.9, 0.975, 0.999, 0.99999):
            t = t_quantile(q, df)
            assert float(t_sf(t, df)) == pytest.approx(1 - q, rel=1e-9)
            assert float(t_two_sided_p(-t, df)) == pytest.approx(2 * (1 - q), rel=1e-9)
    assert t_quantile(0.5, 3) == 0.0


def test_cauchy_and_two_degrees_closed_forms() -> None:
    # df 1: Cauchy, P(T > t) = 1/2 - atan(t)/pi; df 2: P(T > t) = (1 - t/sqrt(2 + t^2)) / 2
    for t in (-3.0, -0.5, 0.0, 0.7, 4.0, 50.0):
        assert float(t_sf(t, 1)) == pytest.approx(0.5 - math.atan(t) / math.pi, abs=1e-15)
        assert float(t_sf(t, 2)) == pytest.approx((1 - t / math.sqrt(2 + t * t)) / 2, abs=1e-15)


def test_arrays_and_nan() -> None:
    p = t_two_sided_p(np.array([0.0, 2.262157163, np.nan]), 9)
    assert p[0] == pytest.approx(1.0)
    assert p[1] == pytest.approx(0.05, abs=1e-9)
    assert math.isnan(p[2])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="whole number"):
        t_sf(1.0, 0)
    with pytest.raises(ValueError, match="whole number"):
        t_quantile(0.9, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        t_quantile(1.0, 3)


def test_normal_tail() -> None:
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, rel=1e-12)
    assert normal_sf(0.0) == 0.5


def test_against_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    x = np.array([-8.0, -2.5, -0.3, 0.0, 0.4, 1.7, 3.3, 9.0])
    for df in [*range(1, 41), 64, 150]:
        np.testing.assert_allclose(t_sf(x, df), stats.t.sf(x, df), rtol=1e-8, atol=1e-15)
        for q in (0.9, 0.995, 0.99999):
            assert t_quantile(q, df) == pytest.approx(float(stats.t.ppf(q, df)), rel=1e-9)
