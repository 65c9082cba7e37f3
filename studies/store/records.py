"""A study as the read-only commands see it: plain records of its trials and attributes.

`salsweep studies show|export` and the confirmation's verdict read a study and its
companion study ``NAME:confirm``
(studies.confirmation.confirmed) and never write. Reading them as these
records, not as Optuna objects, lets `studies.store.catalog.read_study` fill them straight from
Optuna's tables without importing Optuna or SQLAlchemy's ORM (most of such a command's
time otherwise: docs/BENCHMARKS.md, "Read-only commands"). Code that holds an
`optuna.Study` (a sweep, the tests) passes it as it is: `as_record` turns it into one.

Imports nothing heavy: Optuna only inside `as_record`, when given an Optuna study.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from studies import attrs
from studies.attrs import companion_name

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

__all__ = [
    "COMPANION_OBJECTIVE_NAME",
    "COMPLETE",
    "FAIL",
    "PRUNED",
    "RUNNING",
    "WAITING",
    "StudyRecord",
    "StudySummary",
    "TrialRecord",
    "apply_late_run_ids",
    "as_record",
    "companion_about",
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
    # Each param's distribution, as Optuna stores it (JSON): what a plot of the study needs.
    distributions: dict[str, str] = field(default_factory=dict)

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
    """``study`` as a record; an Optuna study is read from its storage once, with its
    companion study (``companion``) when it has one. The companion is read through the
    storage itself: no second `optuna.Study` (and sampler) is built for it."""
    if isinstance(study, StudyRecord):
        return study
    storage = study._storage
    other = None
    if companion:
        try:
            other_id = storage.get_study_id_from_name(companion_name(study.study_name))
        except KeyError:
            other_id = None
        if other_id is not None:
            other = _read(storage, other_id, companion_name(study.study_name))
    return replace(_read(storage, study._study_id, study.study_name), companion=other)


def _read(storage: BaseStorage, study_id: int, name: str) -> StudyRecord:
    user_attrs = storage.get_study_user_attrs(study_id)
    trials = sorted(storage.get_all_trials(study_id, deepcopy=False), key=lambda t: t.number)
    return StudyRecord(
        study_name=name,
        direction=storage.get_study_directions(study_id)[0].name.lower(),
        user_attrs=dict(user_attrs),
        trials=with_late_run_ids(user_attrs, (_trial(t) for t in trials)),
    )


def apply_late_run_ids(record: StudyRecord, found: Mapping[tuple[str, int], str]) -> StudyRecord:
    """``record`` (and its companion) with the run ids ``found`` for (study name, trial
    number) recorded as late run ids (`attrs.LATE_RUN_ID`), as a new read would give it."""
    mine = {n: run for (name, n), run in found.items() if name == record.study_name}
    companion = record.companion
    if companion is not None:
        companion = apply_late_run_ids(companion, found)
    if not mine:
        return replace(record, companion=companion)
    user_attrs = {**record.user_attrs, **{f"{attrs.LATE_RUN_ID}{n}": r for n, r in mine.items()}}
    return replace(
        record,
        user_attrs=user_attrs,
        trials=with_late_run_ids(user_attrs, record.trials),
        companion=companion,
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
    from optuna.distributions import distribution_to_json

    values = t.values
    return TrialRecord(
        number=t.number,
        state=t.state.name,
        value=values[0] if values is not None and len(values) == 1 else None,
        params=dict(t.params),
        user_attrs=dict(t.user_attrs),
        datetime_start=t.datetime_start,
        datetime_complete=t.datetime_complete,
        distributions={k: distribution_to_json(d) for k, d in t.distributions.items()},
    )


# The companion study's objective, as Optuna names it (``Study.set_metric_names``; what
# optuna-dashboard shows over its values): one run's score, not a configuration's.
COMPANION_OBJECTIVE_NAME = "one run's score (one seed; its metric: user attr metric)"


def companion_about(study_name: str) -> str:
    """The companion study's ``about`` (attrs.ABOUT): its trials, and why its best trial
    is no verdict."""
    return (
        f"The runs of study {study_name} outside its search, one trial each: the SSI "
        f"baseline's search run (role {attrs.ROLE_SEARCH_BASELINE}, scored on the "
        f"validation split) and the confirmation's replicates (role {attrs.ROLE_CONFIRMATION}: "
        "a configuration, user attr label, trained with one training seed, user attr seed, "
        "scored on the test split). A trial's value is one run's score: the best trial of "
        "this study is the luckiest single run, not the best configuration. The verdict "
        "compares each configuration's mean over its seeds: salsweep studies show "
        f"{study_name}, or the sweep's MLflow runs view."
    )


def companion_study(study: optuna.Study, *, create: bool = False) -> optuna.Study | None:
    """The companion study of ``study`` in the same storage; None when it does not exist
    (``create``: made, with the same direction, or loaded; either way it gets its objective's
    name, ``COMPANION_OBJECTIVE_NAME``, and its ``about``, which tools such as
    optuna-dashboard show)."""
    import optuna

    storage = study._storage
    name = companion_name(study.study_name)
    if create:
        companion = optuna.create_study(
            study_name=name,
            storage=storage,
            direction=study.direction,
            # Replicates suggest nothing: the sampler is never asked for a value.
            sampler=optuna.samplers.RandomSampler(seed=0),
            load_if_exists=True,
        )
        if companion.metric_names != [COMPANION_OBJECTIVE_NAME]:
            with warnings.catch_warnings():  # "experimental" (since Optuna 3.2), still in 5.0
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                companion.set_metric_names([COMPANION_OBJECTIVE_NAME])
        about = companion_about(study.study_name)
        if companion.user_attrs.get(attrs.ABOUT) != about:
            companion.set_user_attr(attrs.ABOUT, about)
        return companion
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
