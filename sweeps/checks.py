"""Checks that need more than one key: ranges, bounds (through `TrainConfig`), grid, baseline.

Every function returns problems instead of raising, so that a spec's problems are all
reported at once. Bounds are not restated here: a searched value is checked by building the
`TrainConfig` it would give, so the field bounds and the config's own validators (e.g.
``num_scales`` too large for the image size) decide.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from loss.names import SCALE_ADAPTIVE_PARAMS, SSI_PARAMS, is_ssi_method
from sweeps.errors import SpecProblem, join_path
from sweeps.params import (
    Choices,
    FloatRange,
    IntRange,
    SearchParam,
    candidate_values,
    endpoints,
    is_discrete,
    is_searched,
    value_count,
)
from sweeps.paths import apply_values
from sweeps.settings import Budget, ObjectiveSpec, PrunerSpec, SamplerSpec
from trainer.config import TrainConfig
from trainer.validation import shown

__all__ = [
    "CONFIRMATION_OWNED",
    "MAX_GRID_POINTS",
    "MAX_STEP_VALUES",
    "SA_ONLY_PARAMS",
    "baseline_problems",
    "budget_problems",
    "combination_problems",
    "grid_size",
    "method_problems",
    "objective_problems",
    "pruner_problems",
    "range_problems",
    "seed_problems",
    "value_problems",
]

# Settings the SSI loss ignores: the scale-adaptive loss's parameters it does not take.
SA_ONLY_PARAMS = tuple(f"loss.{p}" for p in SCALE_ADAPTIVE_PARAMS if p not in SSI_PARAMS)
_SHARED_PARAMS = ", ".join(p for p in SCALE_ADAPTIVE_PARAMS if p in SSI_PARAMS)
# Combinations of range ends / choices tried together; beyond this only one at a time.
MAX_COMBINATIONS = 4096
# A float step finer than this many values is no grid (Optuna's own step check fails on
# a quotient beyond 28 digits): a continuous range is what is meant.
MAX_STEP_VALUES = 1_000_000
# The grid sampler lists every point of the product up front; a grid it could not finish
# within the largest budget (Budget.n_trials <= 100_000) is a mistake.
MAX_GRID_POINTS = 100_000
# Settings the confirmation owns, with what it does with them: a search over them would
# pick a lucky seed or a lucky set of validation scenes, not a configuration.
CONFIRMATION_OWNED = {
    "seed": "the training seed: the search trains every trial with one seed and the "
    "confirmation retrains the best configurations with the seeds after it",
    "data.seed": "the scene seed: every trial is scored on the same validation scenes, "
    "and the confirmation decides which scenes its replicates see",
}
# Metrics where larger is better (threshold accuracies); the rest of the trainer's are errors.
_HIGHER_IS_BETTER = ("a1", "a2", "a3")
_LOWER_IS_BETTER = ("abs_rel", "sq_rel", "rmse", "rmse_log", "total_loss", "loss_sa", "loss_sg")


def _why(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


def _d(x: float) -> Decimal:
    return Decimal(str(x))


def range_problems(path: str, param: SearchParam) -> list[SpecProblem]:
    """Empty ranges, log ranges through 0, steps that do not divide the range, duplicates."""
    where = join_path("search", path)
    out: list[SpecProblem] = []
    if isinstance(param, Choices):
        seen: list[Any] = []
        for i, value in enumerate(param.choices):
            # `True == 1` in Python: compare with the type, as Optuna's choices do.
            if any(type(s) is type(value) and s == value for s in seen):
                out.append(SpecProblem(join_path(where, "choices", i), f"duplicate {shown(value)}"))
            seen.append(value)
        return out
    if not isinstance(param, FloatRange | IntRange):
        return out
    if param.low >= param.high:
        out.append(
            SpecProblem(f"{where}.low", f"must be < high (got low={param.low}, high={param.high})")
        )
    if param.log and param.low <= 0:
        out.append(SpecProblem(f"{where}.low", f"must be > 0 with log: true (got {param.low})"))
    if param.log and isinstance(param, FloatRange) and param.step is not None:
        out.append(SpecProblem(f"{where}.step", "cannot be combined with log: true"))
    elif param.log and isinstance(param, IntRange) and param.step != 1:
        out.append(SpecProblem(f"{where}.step", "must be 1 with log: true"))
    elif param.step is not None and param.low < param.high:
        span = _d(param.high) - _d(param.low)
        count = value_count(param)
        if isinstance(param, FloatRange) and count > MAX_STEP_VALUES:
            out.append(
                SpecProblem(
                    f"{where}.step",
                    f"{param.step} gives {count:.3g} values, more than {MAX_STEP_VALUES}: use "
                    "a coarser step, or drop step for a continuous range",
                )
            )
        elif span % _d(param.step) != 0:
            out.append(
                SpecProblem(
                    f"{where}.step",
                    f"high - low ({span}) is not a multiple of step ({param.step})",
                )
            )
    return out


def value_problems(base: TrainConfig, path: str, param: SearchParam) -> list[SpecProblem]:
    """Build a config with each end (and each value of a small discrete range) of ``param``."""
    where = join_path("search", path)
    out: list[SpecProblem] = []
    ends = endpoints(param)
    for key, value in ends:
        try:
            apply_values(base, {path: value})
        except ValidationError as exc:
            out.append(
                SpecProblem(join_path(where, key), f"{shown(value)} is invalid: {_why(exc)}")
            )
    if out:
        return out
    end_values = [v for _, v in ends]
    inner = [v for v in candidate_values(param) if v not in end_values]
    bad: list[tuple[Any, str]] = []
    for value in inner:
        try:
            apply_values(base, {path: value})
        except ValidationError as exc:
            bad.append((value, _why(exc)))
    if bad:
        value, why = bad[0]
        total = len(inner) + len(end_values)
        out.append(
            SpecProblem(
                where, f"{len(bad)} of the {total} values are invalid, e.g. {shown(value)}: {why}"
            )
        )
    return out


def combination_problems(base: TrainConfig, search: Mapping[str, SearchParam]) -> list[SpecProblem]:
    """Searched params whose ends are fine alone but not together (e.g. num_scales x height)."""
    searched = {p: [v for _, v in endpoints(s)] for p, s in search.items() if is_searched(s)}
    if len(searched) < 2:
        return []
    n = 1
    for values in searched.values():
        n *= len(values)
    if n > MAX_COMBINATIONS:
        return []
    bad: list[tuple[dict[str, Any], str]] = []
    for combo in itertools.product(*searched.values()):
        point = dict(zip(searched, combo, strict=True))
        try:
            apply_values(base, point)
        except ValidationError as exc:
            bad.append((point, _why(exc)))
    out = []
    for point, why in bad[:3]:
        listed = ", ".join(f"{p}={shown(v)}" for p, v in point.items())
        out.append(SpecProblem("search", f"the combination {listed} is invalid: {why}"))
    if len(bad) > 3:
        out.append(SpecProblem("search", f"... and {len(bad) - 3} more invalid combinations"))
    return out


def seed_problems(search: Mapping[str, SearchParam]) -> list[SpecProblem]:
    """Searching the training seed or the scene seed: the confirmation owns both (a fixed
    value is fine: it is the search's seed, as ``SweepSpec.training_seed`` reads it)."""
    return [
        SpecProblem(
            join_path("search", path),
            f"cannot be searched: the confirmation owns {why}; fix it (a plain value, or "
            "base) instead",
        )
        for path, why in CONFIRMATION_OWNED.items()
        if path in search and is_searched(search[path])
    ]


def method_of(base: TrainConfig, search: Mapping[str, SearchParam]) -> str | None:
    """The loss method every trial uses, or None when ``loss.method`` is searched."""
    param = search.get("loss.method")
    if param is None:
        return base.loss.method
    return None if is_searched(param) else str(param)


def method_problems(base: TrainConfig, search: Mapping[str, SearchParam]) -> list[SpecProblem]:
    """Searching settings that the (fixed) SSI loss ignores wastes every trial."""
    method = method_of(base, search)
    if not is_ssi_method(method):
        return []
    return [
        SpecProblem(
            join_path("search", path),
            f"has no effect with loss.method {method} (the SSI loss only takes {_SHARED_PARAMS})",
        )
        for path, param in search.items()
        if path in SA_ONLY_PARAMS and is_searched(param)
    ]


def baseline_problems(
    base: TrainConfig, search: Mapping[str, SearchParam], baseline: bool
) -> list[SpecProblem]:
    """The baseline trial swaps the loss for its SSI counterpart: it needs an SA loss."""
    if not baseline:
        return []
    param = search.get("loss.method")
    if param is not None and is_searched(param):
        return [
            SpecProblem(
                "search.loss.method",
                "cannot be searched with baseline: true (the baseline trial sets the method "
                "to the SSI loss); drop it from search or set baseline: false",
            )
        ]
    method = method_of(base, search)
    if is_ssi_method(method):
        return [
            SpecProblem(
                "baseline",
                f"needs a scale-adaptive loss.method to compare with (the method is {method})",
            )
        ]
    return []


def grid_size(search: Mapping[str, SearchParam]) -> int:
    """Points of the grid over every searched (discrete) param (counted, not listed)."""
    n = 1
    for param in search.values():
        if is_searched(param):
            n *= value_count(param)
    return n


def budget_problems(
    search: Mapping[str, SearchParam], sampler: SamplerSpec, budget: Budget
) -> list[SpecProblem]:
    """Grid sampling: every searched param discrete, and no more trials than grid points
    (the SSI baseline runs outside the study: it takes no grid point)."""
    if sampler.type != "grid":
        return []
    out = [
        SpecProblem(
            join_path("search", path),
            "the grid sampler needs a discrete param: choices, an int range, or a float "
            "range with step",
        )
        for path, param in search.items()
        if is_searched(param) and not is_discrete(param)
    ]
    if out:
        return out
    points = grid_size(search)
    if points > MAX_GRID_POINTS:
        out.append(
            SpecProblem(
                "search",
                f"the grid has {points:.3g} points, more than {MAX_GRID_POINTS} (the grid "
                "sampler lists them all): search fewer values, or use the tpe or random sampler",
            )
        )
    elif budget.n_trials > points:
        out.append(
            SpecProblem(
                "budget.n_trials",
                f"{budget.n_trials} is more than the grid's {points} points; at most "
                f"{points} (more would repeat grid points)",
            )
        )
    return out


def max_epochs(base: TrainConfig, search: Mapping[str, SearchParam]) -> int:
    """The most epochs a trial can run (hyperband's max resource)."""
    param = search.get("epochs")
    if param is None:
        return base.epochs
    return max(int(v) for v in candidate_values(param))


def pruner_problems(
    base: TrainConfig, search: Mapping[str, SearchParam], pruner: PrunerSpec
) -> list[SpecProblem]:
    """Pruner settings that could never apply with the trials' number of epochs."""
    epochs = max_epochs(base, search)
    out = []
    if pruner.min_resource is not None and pruner.min_resource > epochs:
        out.append(
            SpecProblem(
                "pruner.min_resource",
                f"{pruner.min_resource} is more than the epochs of a trial ({epochs})",
            )
        )
    if pruner.n_warmup_steps is not None and pruner.n_warmup_steps > epochs:
        out.append(
            SpecProblem(
                "pruner.n_warmup_steps",
                f"{pruner.n_warmup_steps} is more than the epochs of a trial ({epochs}): "
                "nothing would ever be pruned (use type: none for that)",
            )
        )
    return out


def objective_problems(objective: ObjectiveSpec) -> list[SpecProblem]:
    """A known metric optimised in the wrong direction."""
    name = objective.metric.rsplit("/", 1)[-1].removesuffix("_med")
    name = name.removesuffix("_align_depth").removesuffix("_align")
    if name in _HIGHER_IS_BETTER and objective.direction == "minimize":
        return [
            SpecProblem(
                "objective.direction",
                f"{objective.metric} is higher-is-better: use maximize",
            )
        ]
    if name in _LOWER_IS_BETTER and objective.direction == "maximize":
        return [
            SpecProblem(
                "objective.direction", f"{objective.metric} is lower-is-better: use minimize"
            )
        ]
    return []
