"""Helpers of the confirmation tests: replicate trials written straight into a study's
companion study, as studies.run.replicates leaves them (no training), and the race's setup
as studies.run.race_rounds stores it."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState, create_trial

from studies.attrs import (
    BASELINE_KEY,
    NON_FINITE,
    RACE,
    ROLE_CONFIRMATION,
    ROLE_SEARCH_BASELINE,
)
from studies.confirmation.confirmed import RaceSetup
from studies.store.records import companion_study


def set_race(
    study: optuna.Study,
    candidates: list[str],
    baseline: str | None = BASELINE_KEY,
    *,
    initial_seeds: int = 3,
    max_seeds: int = 3,
    indifference_zone: float = 0.005,
    alpha: float = 0.05,
) -> RaceSetup:
    """Store the race's setup on ``study``'s companion study (created when needed)."""
    companion = companion_study(study, create=True)
    assert companion is not None
    setup = RaceSetup(
        top_k=len(candidates),
        initial_seeds=initial_seeds,
        max_seeds=max_seeds,
        indifference_zone=indifference_zone,
        alpha=alpha,
        candidates=tuple(candidates),
        baseline=baseline,
    )
    companion.set_user_attr(RACE, setup.to_attr())
    return setup


def add_replicate(
    study: optuna.Study,
    key: str,
    seed: int,
    value: float,
    *,
    test: float | None = None,
    index: int | None = None,
    role: str = ROLE_CONFIRMATION,
    params: dict[str, Any] | None = None,
    method: str = "scale-adaptive",
    state: TrialState | None = None,
    legacy: bool = False,
) -> None:
    """One finished replicate of ``study``'s companion study: ``value`` on validation,
    ``test`` on the test split (None: not reported); a NaN ``value`` is stored as a
    diverged run (PRUNED, ``non_finite``). A confirmation replicate's seed index is
    ``index``, by default ``seed - 1`` (training seed = the search's 0 + 1 + index), and
    its data seed the same. ``legacy``: as the fixed-seed confirmation of an earlier
    salsweep stored it (no seed index, no test score: its value was the test score)."""
    companion = companion_study(study, create=True)
    assert companion is not None
    companion.set_user_attr("metric", "val/abs_rel_align")
    companion.set_user_attr("search_metric", "val/abs_rel_align")
    companion.set_user_attr("test_metric", "test/abs_rel_align")
    attrs: dict[str, Any] = {
        "config_key": key,
        "seed": seed,
        "role": role,
        "params": params if params is not None else {},
        "method": "ssi" if key == BASELINE_KEY else method,
        "mlflow_run_id": f"{key}-{seed}-{role}",
        "metric": "val/abs_rel_align",
    }
    if role == ROLE_CONFIRMATION and not legacy:
        attrs["seed_index"] = seed - 1 if index is None else index
        attrs["data_seed"] = attrs["seed_index"] + 1
        attrs["test_metric"] = "test/abs_rel_align"
        attrs["test_value"] = test
    if state is None:
        state = TrialState.COMPLETE if math.isfinite(value) else TrialState.PRUNED
    if state == TrialState.PRUNED:
        attrs[NON_FINITE] = "non-finite training loss"
    companion.add_trial(
        create_trial(
            state=state,
            value=value if state == TrialState.COMPLETE else None,
            user_attrs=attrs,
        )
    )


def add_search_baseline(study: optuna.Study, value: float, seed: int = 0) -> None:
    add_replicate(
        study,
        BASELINE_KEY,
        seed,
        value,
        role=ROLE_SEARCH_BASELINE,
        params={"loss.method": "ssi"},
    )
