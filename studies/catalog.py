"""Find studies in a storage: list them, load one with its stored spec."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import optuna
from optuna.trial import TrialState

from studies.search_space import build_pruner, build_sampler
from studies.storage import open_storage
from studies.verdict import is_companion_name
from sweeps import SweepSpec, parse_spec

__all__ = [
    "StudyMismatch",
    "StudySummary",
    "load_study",
    "quiet_optuna_logs",
    "stored_spec",
    "study_summaries",
]


def quiet_optuna_logs() -> None:
    """Keep Optuna's own log lines off the terminal: the CLI draws its own progress and
    reports each failed trial's reason (Optuna would print a traceback)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)


class StudyMismatch(ValueError):
    """No study of that name, or one made from another spec."""


@dataclass(frozen=True)
class StudySummary:
    name: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_value: float | None
    started: datetime | None


def study_summaries(storage_url: str) -> list[StudySummary]:
    """Every study in the storage, by name (companion ``NAME:confirm`` studies hidden)."""
    storage = open_storage(storage_url)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=True):
        if is_companion_name(summary.study_name):
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        best = summary.best_trial.value if summary.best_trial is not None else None
        rows.append(
            StudySummary(
                name=summary.study_name,
                n_trials=len(states),
                n_complete=states.count(TrialState.COMPLETE),
                n_pruned=states.count(TrialState.PRUNED),
                n_failed=states.count(TrialState.FAIL),
                best_value=best,
                started=summary.datetime_start,
            )
        )
    return sorted(rows, key=lambda r: r.name)


def _existing(name: str, storage: optuna.storages.BaseStorage) -> optuna.Study:
    names = sorted(
        s.study_name
        for s in optuna.get_all_study_summaries(storage)
        if not is_companion_name(s.study_name)
    )
    if name not in names:
        known = ", ".join(names) or "none"
        raise StudyMismatch(f"no study named {name!r} in this storage (studies: {known})")
    return optuna.load_study(study_name=name, storage=storage)


def stored_spec(name: str, storage_url: str) -> SweepSpec:
    """The spec study ``name`` was launched with."""
    study = _existing(name, open_storage(storage_url))
    data = study.user_attrs.get("spec")
    if data is None:
        raise StudyMismatch(f"study {name!r} was not created by salsweep (it has no spec)")
    return parse_spec(data, f"study {name}")


def load_study(name: str, storage_url: str) -> optuna.Study:
    """An existing study, with the sampler and pruner its spec names (if it has one)."""
    storage = open_storage(storage_url)
    study = _existing(name, storage)
    data = study.user_attrs.get("spec")
    if data is None:
        return study
    spec = parse_spec(data, f"study {name}")
    return optuna.load_study(
        study_name=name, storage=storage, sampler=build_sampler(spec), pruner=build_pruner(spec)
    )
