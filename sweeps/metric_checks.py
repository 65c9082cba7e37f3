"""The objective's metric against the metrics the built-in trainer reports.

A typo in ``objective.metric`` would otherwise be found after a whole trial has trained
(the epoch selection fails on the first epoch's metrics). The names come from
`trainer.metric_names` (torch-free; pinned by a test against a real run); a command spec's
metrics are its program's own and are not checked here.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping

from pydantic import ValidationError

from loss.names import is_ssi_method, ssi_counterpart
from sweeps.checks import MAX_COMBINATIONS, method_of
from sweeps.errors import SpecProblem
from sweeps.params import SearchParam, endpoints, is_searched
from sweeps.paths import apply_values
from sweeps.settings import ObjectiveSpec
from trainer.config import TrainConfig
from trainer.metric_names import epoch_metric_names
from trainer.validation import shown

__all__ = ["metric_problems"]

# The settings a run's metric names depend on: the loss's terms
# (`loss.names.loss_metric_names`: method, num_scales, use_absolute).
_NAMING_PARAMS = ("loss.method", "loss.num_scales", "loss.use_absolute")


def _reported_by(
    base: TrainConfig, search: Mapping[str, SearchParam], baseline: bool
) -> list[tuple[str, frozenset[str]]]:
    """(which run, the metrics it reports each epoch) for the runs a sweep can make: the
    base config with each combination of the ends of the searched settings that change the
    names (`_NAMING_PARAMS`), and the SSI baseline."""
    searched = {
        path: [v for _, v in endpoints(param)]
        for path, param in search.items()
        if path in _NAMING_PARAMS and is_searched(param)
    }
    runs: list[tuple[str, frozenset[str]]] = []
    combos = itertools.product(*searched.values()) if searched else [()]
    for n, combo in enumerate(combos):
        if n >= MAX_COMBINATIONS:
            break
        point = dict(zip(searched, combo, strict=True))
        try:
            config = apply_values(base, point)
        except ValidationError:
            continue  # an invalid combination: combination_problems reports it
        label = ", ".join(f"{p}={shown(v)}" for p, v in point.items()) or "the base config"
        runs.append((f"the trials with {label}" if point else label, _names(config)))
    method = method_of(base, search)
    if baseline and method is not None and not is_ssi_method(method):
        try:
            config = apply_values(base, {"loss.method": ssi_counterpart(method)})
        except (ValidationError, ValueError):
            pass  # baseline_problems and the method's own checks report it
        else:
            runs.append(
                (f"the SSI baseline ({config.loss.method}; baseline: true)", _names(config))
            )
    return runs


def _names(config: TrainConfig) -> frozenset[str]:
    return frozenset(epoch_metric_names(config))


def _listed(names: set[str] | frozenset[str]) -> str:
    """The names, validation metrics first."""
    return ", ".join(sorted(names, key=lambda n: (not n.startswith("val/"), n)))


def metric_problems(
    base: TrainConfig,
    search: Mapping[str, SearchParam],
    objective: ObjectiveSpec,
    baseline: bool,
) -> list[SpecProblem]:
    """The objective's metric must be one that every run of the sweep reports each epoch
    (`trainer.metric_names.epoch_metric_names`): a typo would otherwise be found after a
    whole trial has trained. Built-in trainer only (a command's metrics are its own)."""
    metric = objective.metric
    runs = _reported_by(base, search, baseline)
    if not runs:
        return []
    missing = [label for label, names in runs if metric not in names]
    if not missing:
        return []
    known: set[str] = set().union(*(names for _, names in runs))
    if metric in known:
        return [
            SpecProblem(
                "objective.metric",
                f"{metric} is not reported by every run: not by {' nor by '.join(missing)} "
                "(a run's train/ metrics are its loss's terms)",
            )
        ]
    close = difflib.get_close_matches(metric, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return [
        SpecProblem(
            "objective.metric",
            f"{metric!r} is not a metric of the built-in trainer{hint}; its metrics: "
            + _listed(known),
        )
    ]
