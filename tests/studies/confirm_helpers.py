"""Helpers of the confirmation tests: replicate trials written straight into a study's
companion study, as studies.run.replicates leaves them (no training)."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState, create_trial

from studies.attrs import BASELINE_KEY, NON_FINITE, ROLE_CONFIRMATION, ROLE_SEARCH_BASELINE
from studies.store.records import companion_study


def add_replicate(
    study: optuna.Study,
    key: str,
    seed: int,
    value: float,
    *,
    role: str = ROLE_CONFIRMATION,
    params: dict[str, Any] | None = None,
    method: str = "scale-adaptive",
    state: TrialState | None = None,
) -> None:
    """One finished replicate of ``study``'s companion study; a NaN ``value`` is stored as
    a diverged run (PRUNED, ``non_finite``)."""
    companion = companion_study(study, create=True)
    assert companion is not None
    companion.set_user_attr("metric", "test/abs_rel_align")
    attrs: dict[str, Any] = {
        "config_key": key,
        "seed": seed,
        "role": role,
        "params": params if params is not None else {},
        "method": "ssi" if key == BASELINE_KEY else method,
        "mlflow_run_id": f"{key}-{seed}-{role}",
    }
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
