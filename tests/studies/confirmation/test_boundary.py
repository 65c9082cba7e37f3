"""Group-sequential t boundaries: their shape, and their level checked on null paths the
calibration never saw."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from studies.confirmation.boundary import PATHS, boundary, crossing_level, simulate_minima
from studies.confirmation.null_cache import CACHE_ENV, cached_minima
from studies.confirmation.tdist import t_quantile
from tests.process_helpers import PythonChild


def _crossing_rate(n0: int, n_max: int, critical: dict[int, float], paths: int, seed: int) -> float:
    """Share of fresh null paths (normal differences, mean 0, sd 3.7) whose t statistic
    crosses ``critical`` at some look."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.7, size=(paths, n_max))
    crossed = np.zeros(paths, dtype=bool)
    for n in range(n0, n_max + 1):
        d = x[:, :n]
        t = math.sqrt(n) * d.mean(axis=1) / d.std(axis=1, ddof=1)
        crossed |= t > critical[n]
    return float(crossed.mean())


@pytest.mark.parametrize(("n0", "n_max", "level", "rho"), [(4, 12, 0.01, 1.0), (3, 8, 0.05, 0.0)])
def test_level_on_fresh_paths(n0: int, n_max: int, level: float, rho: float) -> None:
    b = boundary(n0, n_max, level, rho)
    paths = 200_000
    rate = _crossing_rate(n0, n_max, b.critical, paths, seed=7)
    se = math.sqrt(level * (1 - level) / paths)
    # at most the level (the calibration is conservative by 3 sds of its own), and not
    # wastefully below it
    assert rate <= level + 3 * se
    assert rate >= level - 8 * math.sqrt(level * (1 - level) / PATHS) - 3 * se


def test_one_look_is_the_t_quantile() -> None:
    b = boundary(6, 6, 0.025)
    # a single look: the t quantile, up to the conservative order statistic
    assert b.critical[6] == pytest.approx(t_quantile(0.975, 5), rel=0.02)
    assert b.critical[6] >= t_quantile(0.975, 5)


def test_shape() -> None:
    b = boundary(4, 12, 0.01, 1.0)
    values = [b.critical[n] for n in range(4, 13)]
    assert values == sorted(values, reverse=True)  # later looks, smaller critical values
    assert b.nominal[12] / b.nominal[6] == pytest.approx(2.0)  # rho 1: nominal level ~ n
    assert b.margin(9, 0.3) == pytest.approx(b.critical[9] * 0.1)
    # several looks cost: the last critical value lies above a single look's
    assert b.critical[12] > t_quantile(0.99, 11)


def test_smaller_levels_lie_above() -> None:
    levels = [1e-6, 5e-5, 2e-4, 1e-3, 0.005, 0.02, 0.1]
    bounds = [boundary(4, 10, a, 1.0) for a in levels]
    for n in range(4, 11):
        column = [b.critical[n] for b in bounds]
        assert column == sorted(column, reverse=True)


def test_bonferroni_at_tiny_levels() -> None:
    b = boundary(4, 10, 1e-6, 0.0)
    assert b.nominal[4] == pytest.approx(1e-6 / 7)


def test_crossing_level() -> None:
    b = boundary(4, 12, 0.01, 1.0)
    # the statistic of a path that just reaches the boundary's nominal level
    assert crossing_level(4, 12, 1.0, b.nominal[12]) <= 0.01
    assert crossing_level(4, 12, 1.0, 1.0) == 1.0
    assert crossing_level(4, 12, 1.0, 0.0) == 0.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n0"):
        boundary(1, 5, 0.05)
    with pytest.raises(ValueError, match="n0"):
        boundary(6, 5, 0.05)
    with pytest.raises(ValueError, match="level"):
        boundary(3, 5, 0.7)
    with pytest.raises(ValueError, match="rho"):
        boundary(3, 5, 0.05, -1.0)


def test_cache_gives_the_simulation_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that reads the file cache gets exactly the simulated sample, so every
    boundary and crossing level is unchanged; a damaged file is simulated again."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    n0, n_max, rho = 4, 16, 1.0  # the spec's default design
    simulated = simulate_minima(n0, n_max, rho)
    first = cached_minima(20_190_019, PATHS, n0, n_max, rho, lambda: simulate_minima(4, 16, 1.0))
    files = list(tmp_path.glob("boundary-*.npy"))
    assert len(files) == 1
    calls: list[int] = []

    def never() -> np.ndarray:
        calls.append(1)
        return simulate_minima(n0, n_max, rho)

    again = cached_minima(20_190_019, PATHS, n0, n_max, rho, never)
    assert calls == []
    assert np.array_equal(first, simulated) and np.array_equal(again, simulated)
    assert not again.flags.writeable
    files[0].write_bytes(b"not an array")
    repaired = cached_minima(20_190_019, PATHS, n0, n_max, rho, never)
    assert calls == [1] and np.array_equal(repaired, simulated)


def test_boundary_from_a_fresh_process_reads_the_cache(
    tmp_path: Path, python_child: PythonChild
) -> None:
    """The boundary a process computes from the cache equals the one it simulates."""
    code = (
        "import json, time\n"
        "from studies.confirmation.boundary import boundary, crossing_level\n"
        "start = time.perf_counter()\n"
        "b = boundary(4, 16, 0.004, 1.0)\n"
        "print(json.dumps([b.critical, crossing_level(4, 16, 1.0, 0.0003),"
        " time.perf_counter() - start]))\n"
    )
    env = {**os.environ, CACHE_ENV: str(tmp_path)}
    cold = json.loads(python_child.run("-c", code, env=env, check=True).stdout)
    assert len(list(tmp_path.glob("boundary-*.npy"))) == 1
    warm = json.loads(python_child.run("-c", code, env=env, check=True).stdout)
    assert warm[:2] == cold[:2]
    assert warm[2] < cold[2]
