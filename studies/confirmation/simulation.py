"""Simulated confirmations: paired replicate scores with the noise structure measured in
docs/BENCHMARKS.md, for the tests and benchmarks/sequential_bench.py.

A replicate of contender ``j`` with seed index ``s`` scores

    validation = mu_j + a_s + tau_js + v_js,    test = mu_j + b_s + tau_js + u_js,

``a_s``, ``b_s``: the seed's shared part (its validation or test scenes, and what its
training seed does to every configuration alike), sd ``shared_sd``; ``tau_js``: the
training-seed noise of the configuration, sd ``sds[j]`` (0.002-0.015 measured), the same
trained network on both splits; ``v_js``, ``u_js``: how the seed's scenes treat this
configuration, sd ``interaction_sd`` (0.0031 / sqrt(2) measured). A replicate diverges
(NaN on both splits) with probability ``divergence[j]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseModel", "random_sds", "simulate_scores", "simulated_scores"]


@dataclass(frozen=True)
class NoiseModel:
    """The noise of a replicate (see the module); sds in the metric's units."""

    shared_sd: float = 0.012
    interaction_sd: float = 0.0022


def simulate_scores(
    rng: np.random.Generator,
    means: Mapping[str, float],
    sds: Mapping[str, float],
    seeds: int,
    model: NoiseModel = NoiseModel(),
    divergence: Mapping[str, float] | None = None,
) -> dict[str, list[tuple[float, float]]]:
    """``seeds`` paired replicates of every contender in ``means``: contender ->
    [(validation, test) per seed index]."""
    keys = list(means)
    k = len(keys)
    mu = np.array([means[key] for key in keys])[:, None]
    sd = np.array([sds[key] for key in keys])[:, None]
    shared_val = rng.normal(0.0, model.shared_sd, size=(1, seeds))
    shared_test = rng.normal(0.0, model.shared_sd, size=(1, seeds))
    training = rng.normal(0.0, 1.0, size=(k, seeds)) * sd
    val = mu + shared_val + training + rng.normal(0.0, model.interaction_sd, size=(k, seeds))
    test = mu + shared_test + training + rng.normal(0.0, model.interaction_sd, size=(k, seeds))
    if divergence:
        p = np.array([divergence.get(key, 0.0) for key in keys])[:, None]
        diverged = rng.random(size=(k, seeds)) < p
        val[diverged] = np.nan
        test[diverged] = np.nan
    return {
        key: [(float(v), float(t)) for v, t in zip(val[j], test[j], strict=True)]
        for j, key in enumerate(keys)
    }


def random_sds(
    rng: np.random.Generator, keys: list[str], low: float = 0.003, high: float = 0.012
) -> dict[str, float]:
    """A training-seed sd per contender, uniform in ``[low, high]`` (the range measured
    across configurations in docs/BENCHMARKS.md)."""
    return {key: float(sd) for key, sd in zip(keys, rng.uniform(low, high, len(keys)), strict=True)}


def simulated_scores(
    means: Mapping[str, float],
    repeats: int,
    seeds: int,
    seed: int,
    *,
    sd_range: tuple[float, float] = (0.003, 0.012),
    model: NoiseModel = NoiseModel(),
    divergence: float = 0.0,
) -> list[dict[str, list[tuple[float, float]]]]:
    """``repeats`` independent confirmations of the contenders in ``means``, ``seeds`` paired
    replicates each, every confirmation with its own sds (`random_sds`); a replicate
    diverges with probability ``divergence``. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    keys = list(means)
    diverge = dict.fromkeys(keys, divergence) if divergence else None
    return [
        simulate_scores(rng, means, random_sds(rng, keys, *sd_range), seeds, model, diverge)
        for _ in range(repeats)
    ]
