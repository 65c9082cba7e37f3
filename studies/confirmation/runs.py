"""The companion study's finished runs as plain records (studies.confirmation.confirmed reads
the race from them): one `Replicate` per (config key, training seed, role), the first of
each; the SSI baseline's search run. The user attributes are named in studies.attrs and
described in studies.confirmation.confirmed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from studies import attrs
from studies.attrs import ROLE_CONFIRMATION, ROLE_SEARCH_BASELINE
from studies.store import COMPLETE, PRUNED, StudyRecord, TrialRecord

__all__ = ["Replicate", "replicates", "search_baseline_trial"]


@dataclass(frozen=True)
class Replicate:
    """One finished run of the companion study."""

    number: int  # trial number in the companion study
    key: str
    seed: int  # the training seed
    index: int | None  # the race's seed index (None: the search baseline, or an old run)
    data_seed: int | None
    role: str
    value: float  # validation (the search baseline: its search score); NaN: diverged
    test: float  # the test split's counterpart; NaN: diverged or not reported
    params: dict[str, Any]
    method: str | None  # the loss method
    mlflow_run_id: str | None
    # The objective under the other least-squares alignment at the same epoch (reported
    # only; NaN: none stored, or diverged): validation and test.
    alt_value: float = math.nan
    alt_test: float = math.nan
    config: dict[str, Any] | None = None  # the runnable TrainConfig as JSON (None: a command)


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _as_replicate(trial: TrialRecord) -> Replicate | None:
    stored = trial.user_attrs
    if attrs.CONFIG_KEY not in stored or attrs.SEED not in stored:
        return None  # not a replicate (see studies.run.replicates: a trial that found no job)
    if trial.state == COMPLETE and trial.value is not None:
        value = float(trial.value)
    elif trial.state == PRUNED and stored.get(attrs.NON_FINITE):
        value = math.nan
    else:
        return None
    index = stored.get(attrs.SEED_INDEX)
    data_seed = stored.get(attrs.DATA_SEED)
    return Replicate(
        number=trial.number,
        key=str(stored[attrs.CONFIG_KEY]),
        seed=int(stored[attrs.SEED]),
        index=int(index) if index is not None else None,
        data_seed=int(data_seed) if data_seed is not None else None,
        role=str(stored.get(attrs.ROLE, ROLE_CONFIRMATION)),
        value=value,
        test=_float(stored.get(attrs.TEST_VALUE)) if math.isfinite(value) else math.nan,
        params=dict(stored.get(attrs.PARAMS) or {}),
        method=stored.get(attrs.METHOD),
        mlflow_run_id=stored.get(attrs.MLFLOW_RUN_ID),
        alt_value=_float(stored.get(attrs.ALT_VALUE)) if math.isfinite(value) else math.nan,
        alt_test=_float(stored.get(attrs.ALT_TEST_VALUE)) if math.isfinite(value) else math.nan,
        config=dict(stored[attrs.CONFIG]) if isinstance(stored.get(attrs.CONFIG), dict) else None,
    )


def replicates(companion: StudyRecord, role: str | None = None) -> list[Replicate]:
    """The finished replicates (of ``role``) of the companion study, the first one of
    each (key, seed, role): two workers racing for one job never count it twice."""
    seen: dict[tuple[str, int, str], Replicate] = {}
    for trial in companion.get_trials((COMPLETE, PRUNED)):
        rep = _as_replicate(trial)
        if rep is not None and (role is None or rep.role == role):
            seen.setdefault((rep.key, rep.seed, rep.role), rep)
    return list(seen.values())


def search_baseline_trial(study: StudyRecord) -> TrialRecord | None:
    """The latest trial of the SSI baseline's search run (any state), or None."""
    companion = study.companion
    if companion is None:
        return None
    runs = [t for t in companion.trials if t.user_attrs.get(attrs.ROLE) == ROLE_SEARCH_BASELINE]
    if not runs:
        return None
    done = [t for t in runs if t.state == COMPLETE]
    return max(done or runs, key=lambda t: t.number)
