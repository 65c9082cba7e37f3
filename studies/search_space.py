"""A sweep spec's search space in Optuna terms: suggestions, grid, sampler, pruner, baseline.

The baseline trial (``baseline: true`` in the spec) is enqueued with the base config's
values of the searched params (nearest value in the space when the base's lies outside it)
and the user attribute ``baseline=True``. `suggest_config` then gives that trial the base
config with the loss swapped for its SSI counterpart (ssi / sparse-ssi). Its params are
real values of the search space, so the sampler's search space stays the same for every
trial (a trial without params would switch multivariate TPE off), and it runs no matter
which sampler (a grid sampler assigns no grid point to an enqueued trial).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler

from sweeps import Choices, FloatRange, IntRange, SweepSpec, grid_values
from trainer.config import TrainConfig

__all__ = [
    "BASELINE_ATTR",
    "BaselineTrial",
    "baseline_params",
    "build_pruner",
    "build_sampler",
    "grid_search_space",
    "is_baseline",
    "suggest_config",
]

# Trial user attribute: True on the SSI baseline trial, False on every other trial.
BASELINE_ATTR = "baseline"


@dataclass(frozen=True)
class BaselineTrial:
    """What to pass to ``study.enqueue_trial(params, user_attrs=user_attrs)``."""

    params: dict[str, Any]
    user_attrs: dict[str, Any] = field(default_factory=lambda: {BASELINE_ATTR: True})


def is_baseline(trial: optuna.Trial | optuna.trial.FrozenTrial) -> bool:
    """Whether a trial is the SSI baseline (user attribute ``baseline``)."""
    return bool(trial.user_attrs.get(BASELINE_ATTR, False))


def suggest_config(trial: optuna.Trial, spec: SweepSpec) -> TrainConfig:
    """Suggest every searched param (Optuna name = its dotted path) and build the config.

    Sets the trial's ``baseline`` user attribute (False unless it was enqueued as the
    baseline), so every trial carries it. Raises `sweeps.SpecError` when the suggested
    values give an invalid config (the spec's checks make that rare).
    """
    baseline = is_baseline(trial)
    trial.set_user_attr(BASELINE_ATTR, baseline)
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
    return spec.config_for(values, baseline=baseline)


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


def build_sampler(spec: SweepSpec) -> BaseSampler:
    """The spec's sampler: TPE (Optuna 5 defaults: multivariate, constant liar), random, grid."""
    s = spec.sampler
    if s.type == "grid":
        return GridSampler(grid_search_space(spec), seed=s.seed)
    if s.type == "random":
        return RandomSampler(seed=s.seed)
    if s.n_startup_trials is None:
        return TPESampler(seed=s.seed)
    return TPESampler(seed=s.seed, n_startup_trials=s.n_startup_trials)


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


def baseline_params(spec: SweepSpec) -> BaselineTrial | None:
    """The SSI baseline trial to enqueue first, or None when the spec has ``baseline: false``."""
    if not spec.baseline:
        return None
    return BaselineTrial(params=spec.baseline_values())
