"""A sweep spec's search space in Optuna terms: suggestions, grid, sampler, pruner.

The SSI baseline is no trial of the study: it runs beside it (studies.run.replicates), so the
sampler and the pruner never read its score as that of a scale-adaptive configuration.
"""

from __future__ import annotations

import hashlib
from typing import Any

import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler

from sweeps import Choices, FloatRange, IntRange, SweepSpec, grid_values
from trainer.config import TrainConfig

__all__ = [
    "build_pruner",
    "build_sampler",
    "grid_search_space",
    "suggest_config",
    "suggest_values",
    "worker_seed",
]


def worker_seed(seed: int | None, worker: int) -> int | None:
    """The sampler seed of local worker ``worker`` (0, 1, ...) of a sweep whose spec has
    ``seed``: worker 0 keeps the spec's seed (a one-worker sweep is the sweep it always
    was), worker ``i > 0`` gets a seed in [0, 2^32) hashed from (seed, i), so that no two
    workers of a study, nor worker i of seed s and worker j of seed s', draw alike by an
    arithmetic coincidence. None (a fresh seed per process) stays None."""
    if worker < 0:
        raise ValueError(f"worker index must be >= 0, not {worker}")
    if seed is None or worker == 0:
        return seed
    digest = hashlib.sha256(f"salsweep-worker:{seed}:{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def suggest_config(trial: optuna.Trial, spec: SweepSpec) -> TrainConfig:
    """Suggest every searched param (Optuna name = its dotted path) and build the config.

    Raises `sweeps.SpecError` when the suggested values give an invalid config (the spec's
    checks make that rare).
    """
    return spec.config_for(suggest_values(trial, spec))


def suggest_values(trial: optuna.Trial, spec: SweepSpec) -> dict[str, Any]:
    """Suggest every searched param (Optuna name = its dotted path or, for a command
    spec, its name): the values, without the spec's fixed ones."""
    values: dict[str, Any] = {}
    for path, dist in spec.searched().items():
        if isinstance(dist, Choices):
            values[path] = trial.suggest_categorical(path, dist.choices)
        elif isinstance(dist, IntRange):
            values[path] = trial.suggest_int(
                path, dist.low, dist.high, step=dist.step, log=dist.log
            )
        else:
            values[path] = trial.suggest_float(
                path, dist.low, dist.high, step=dist.step, log=dist.log
            )
    return values


def grid_search_space(spec: SweepSpec) -> dict[str, list[Any]]:
    """Every value of every searched param, for `optuna.samplers.GridSampler`.

    Raises ValueError for a continuous float range (a grid spec is checked for that).
    """
    space: dict[str, list[Any]] = {}
    for path, dist in spec.searched().items():
        if isinstance(dist, FloatRange) and dist.step is None:
            raise ValueError(f"search.{path}: a continuous float range cannot be a grid")
        space[path] = grid_values(dist)
    return space


def build_sampler(spec: SweepSpec, worker: int = 0) -> BaseSampler:
    """The spec's sampler: TPE (Optuna 5 defaults: multivariate, constant liar), random, grid;
    seeded with `worker_seed` of the spec's seed and the local ``worker`` index."""
    s = spec.sampler
    seed = worker_seed(s.seed, worker)
    if s.type == "grid":
        return GridSampler(grid_search_space(spec), seed=seed)
    if s.type == "random":
        return RandomSampler(seed=seed)
    if s.n_startup_trials is None:
        return TPESampler(seed=seed)
    return TPESampler(seed=seed, n_startup_trials=s.n_startup_trials)


def build_pruner(spec: SweepSpec) -> BasePruner:
    """The spec's pruner; steps are epochs 1..N (hyperband's max resource = the most epochs)."""
    p = spec.pruner
    if p.type == "none":
        return NopPruner()
    if p.type == "hyperband":
        return HyperbandPruner(
            min_resource=p.min_resource or 1,
            max_resource=spec.max_epochs(),
            reduction_factor=p.reduction_factor or 3,
        )
    return MedianPruner(
        n_startup_trials=5 if p.n_startup_trials is None else p.n_startup_trials,
        n_warmup_steps=p.n_warmup_steps or 0,
    )
