"""A study as the read-only commands see it: plain records of its trials and attributes.

`salsweep studies show|export` and the confirmation's verdict read a study and its
companion study ``NAME:confirm``
(studies.confirmation.verdict) and never write. Reading them as these
records, not as Optuna objects, lets `studies.store.catalog.read_study` fill them straight from
Optuna's tables without importing Optuna or SQLAlchemy's ORM (most of such a command's
time otherwise: docs/BENCHMARKS.md, "Read-only commands"). Code that holds an
`optuna.Study` (a sweep, the tests) passes it as it is: `as_record` turns it into one.

Imports nothing heavy: Optuna only inside `as_record`, when given an Optuna study.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from studies import attrs
from studies.attrs import companion_name

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = [
    "COMPLETE",
    "FAIL",
    "PRUNED",
    "RUNNING",
    "WAITING",
    "StudyRecord",
    "StudySummary",
    "TrialRecord",
    "as_record",
    "companion_study",
    "with_late_run_ids",
]

# Trial states: the names of optuna.trial.TrialState, as Optuna's tables store them.
RUNNING = "RUNNING"
COMPLETE = "COMPLETE"
PRUNED = "PRUNED"
FAIL = "FAIL"
WAITING = "WAITING"


@dataclass(frozen=True)
class TrialRecord:
    """One trial: what `optuna.trial.FrozenTrial` holds that salsweep reads."""

    number: int
    state: str  # a TrialState name: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None  # the objective's value; None without one (or with several)
    params: dict[str, Any]  # in the order the trial suggested them
    user_attrs: dict[str, Any]
    datetime_start: datetime | None  # local time, naive (as Optuna gives it)
    datetime_complete: datetime | None

    @property
    def duration(self) -> timedelta | None:
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return self.datetime_complete - self.datetime_start


@dataclass(frozen=True)
class StudyRecord:
    """One study, its trials by number, and its companion study when it has one."""

    study_name: str
    direction: str  # "minimize" or "maximize" (the first objective's)
    user_attrs: dict[str, Any]
    trials: tuple[TrialRecord, ...]
    companion: StudyRecord | None = field(default=None)

    def get_trials(self, states: tuple[str, ...] | None = None) -> list[TrialRecord]:
        """The trials (in ``states``), by number."""
        return [t for t in self.trials if states is None or t.state in states]


@dataclass(frozen=True)
class StudySummary:
    """What `salsweep studies list` shows of a study."""

    name: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_value: float | None  # None without a complete trial, or with several objectives
    started: datetime | None  # the first trial's start, local time


def as_record(study: optuna.Study | StudyRecord, *, companion: bool = True) -> StudyRecord:
    """``study`` as a record; an Optuna study is read from its storage, with its companion
    study (``companion``) when it has one."""
    if isinstance(study, StudyRecord):
        return study
    other = None
    if companion:
        found = companion_study(study)
        other = None if found is None else as_record(found, companion=False)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return StudyRecord(
        study_name=study.study_name,
        direction=study.directions[0].name.lower(),
        user_attrs=dict(study.user_attrs),
        trials=with_late_run_ids(study.user_attrs, (_trial(t) for t in trials)),
        companion=other,
    )


def with_late_run_ids(
    study_attrs: Mapping[str, Any], trials: Iterable[TrialRecord]
) -> tuple[TrialRecord, ...]:
    """``trials``, where one has no MLflow run id, with the one its study recorded for it
    after it ended (`attrs.LATE_RUN_ID`: the run was created late)."""
    found = []
    for trial in trials:
        late = study_attrs.get(f"{attrs.LATE_RUN_ID}{trial.number}")
        if late is not None and attrs.MLFLOW_RUN_ID not in trial.user_attrs:
            trial = replace(trial, user_attrs={**trial.user_attrs, attrs.MLFLOW_RUN_ID: late})
        found.append(trial)
    return tuple(found)


def _trial(t: FrozenTrial) -> TrialRecord:
    values = t.values
    return TrialRecord(
        number=t.number,
        state=t.state.name,
        value=values[0] if values is not None and len(values) == 1 else None,
        params=dict(t.params),
        user_attrs=dict(t.user_attrs),
        datetime_start=t.datetime_start,
        datetime_complete=t.datetime_complete,
    )


def companion_study(study: optuna.Study, *, create: bool = False) -> optuna.Study | None:
    """The companion study of ``study`` in the same storage; None when it does not exist
    (``create``: made, with the same direction)."""
    import optuna

    storage = study._storage
    name = companion_name(study.study_name)
    if create:
        return optuna.create_study(
            study_name=name,
            storage=storage,
            direction=study.direction,
            # Replicates suggest nothing: the sampler is never asked for a value.
            sampler=optuna.samplers.RandomSampler(seed=0),
            load_if_exists=True,
        )
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
