"""Find studies in a storage: list them, load one for reading, read its stored spec.

Reading is what the read-only commands (`salsweep studies list|show|export`) do, so it
stays cheap: an existing SQLite storage is opened without Optuna's schema bookkeeping
(`open_for_reading`), a study is loaded with a sampler and pruner that cost nothing to
build (a reader never asks them for anything), and its stored spec is parsed only by the
callers that need a `SweepSpec` (`stored_spec`: resume and confirm). `run_sweep` opens
the storage the full way and builds the spec's own sampler and pruner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import sqlalchemy
import sqlalchemy.orm
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from studies import attrs
from studies.storage import SQLITE_BUSY_TIMEOUT_S, open_storage
from studies.verdict import is_companion_name
from trainer.errors import UserError

if TYPE_CHECKING:
    from sweeps import SweepSpec

__all__ = [
    "StudyMismatch",
    "StudySummary",
    "load_study",
    "open_for_reading",
    "quiet_optuna_logs",
    "stored_spec",
    "study_summaries",
]


def quiet_optuna_logs() -> None:
    """Keep Optuna's own log lines off the terminal: the CLI draws its own progress and
    reports each failed trial's reason (Optuna would print a traceback)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)


class StudyMismatch(UserError, ValueError):
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


class _SQLiteReader(RDBStorage):
    """`RDBStorage` of an existing SQLite file, opened for reading.

    `RDBStorage.__init__` always imports alembic, and with it the migration code of every
    SQL dialect, to stamp and check the schema version: 0.1-0.2 s of a 0.8 s `studies
    list` on an idle 2-core machine, 0.4 s under load (docs/BENCHMARKS.md). A reader needs
    only the engine and the session factory, which is all this sets: the attributes
    RDBStorage's methods read (Optuna 5.0, pinned). `open_for_reading` checks the schema
    version itself and falls back to the full `open_storage`.
    """

    def __init__(self, url: str) -> None:  # RDBStorage.__init__ is skipped on purpose
        self.url = url
        self.engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        self.skip_compatibility_check = True
        self.heartbeat_interval = None
        self.grace_period = None
        self.heartbeat_stale_trial_callback = None
        self.failed_trial_callback = None
        self.engine = sqlalchemy.create_engine(url, **self.engine_kwargs)
        self.scoped_session = sqlalchemy.orm.scoped_session(
            sqlalchemy.orm.sessionmaker(bind=self.engine)
        )


def open_for_reading(storage_url: str) -> BaseStorage:
    """The storage at ``storage_url`` for reading studies.

    An existing SQLite file that this Optuna version set up is opened directly (see
    `_SQLiteReader`); anything else (another database, a missing file, a file from
    another Optuna version, one that cannot be read) goes through `open_storage`, which
    creates, checks and reports as a sweep does.
    """
    reader = _sqlite_reader(storage_url)
    return reader if reader is not None else open_storage(storage_url)


def _sqlite_reader(url: str) -> _SQLiteReader | None:
    if not url.startswith("sqlite"):
        return None
    try:
        database = sqlalchemy.engine.make_url(url).database
    except sqlalchemy.exc.ArgumentError:
        return None
    if not database or database == ":memory:" or not Path(database).is_file():
        return None
    from optuna.storages._rdb.models import VersionInfoModel

    storage = _SQLiteReader(url)
    try:
        session = storage.scoped_session()
        try:
            info = VersionInfoModel.find(session)
        finally:
            storage.scoped_session.remove()
    except sqlalchemy.exc.SQLAlchemyError:  # not an Optuna database, locked, damaged
        info = None
    # The tables a given Optuna version reads are those it creates; a file another
    # version set up is checked (and, where needed, refused) by open_storage.
    if info is None or info.library_version != optuna.__version__:
        storage.engine.dispose()
        return None
    return storage


def _load_for_reading(name: str, storage: BaseStorage) -> optuna.Study:
    """Study ``name`` with a sampler and pruner that are never asked for anything (Optuna
    would otherwise build its default TPE sampler and median pruner for nothing)."""
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )


def study_summaries(storage_url: str) -> list[StudySummary]:
    """Every study in the storage, by name (companion ``NAME:confirm`` studies hidden)."""
    storage = open_for_reading(storage_url)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=True):
        if is_companion_name(summary.study_name):
            continue
        study = _load_for_reading(summary.study_name, storage)
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


def _existing(name: str, storage: BaseStorage) -> optuna.Study:
    """Study ``name`` for reading; `StudyMismatch` naming the studies there is none."""
    if not is_companion_name(name):
        try:
            return _load_for_reading(name, storage)
        except KeyError:  # Optuna's "no such study"
            pass
    names = sorted(n for n in optuna.get_all_study_names(storage) if not is_companion_name(n))
    known = ", ".join(names) or "none"
    raise StudyMismatch(f"no study named {name!r} in this storage (studies: {known})")


def stored_spec(name: str, storage_url: str) -> SweepSpec:
    """The spec study ``name`` was launched with, parsed and checked again."""
    from sweeps import parse_spec  # pydantic models: only the callers that need a spec

    study = _existing(name, open_for_reading(storage_url))
    data = study.user_attrs.get(attrs.SPEC)
    if data is None:
        raise StudyMismatch(f"study {name!r} was not created by salsweep (it has no spec)")
    return parse_spec(data, f"study {name}")


def load_study(name: str, storage_url: str) -> optuna.Study:
    """An existing study, for reading: its trials, attributes and companion study.

    Its sampler and pruner are placeholders (random, none); to run trials, use
    `studies.run_sweep`, which builds those the study's spec names.
    """
    return _existing(name, open_for_reading(storage_url))
