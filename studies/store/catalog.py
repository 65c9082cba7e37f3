"""Find studies in a storage: list them, read one, read its stored spec.

Reading is what the read-only commands (`salsweep studies list|show|export`) do, so it
stays cheap: `study_summaries` and `read_study` read Optuna's tables with SQL
(studies.store.tables) into plain records (studies.store.records), without importing Optuna; only a
storage that module does not read (another schema revision, no Optuna tables yet, a
database that cannot be opened) goes through Optuna, which creates, checks and reports as
a sweep does. A study's stored spec is parsed only by the callers that need a `SweepSpec`
(`stored_spec`: resume and confirm). `load_study` gives Optuna's own `Study`, for code
that needs one; `run_sweep` opens the storage itself and builds the spec's sampler and
pruner.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from studies import attrs
from studies.attrs import CONFIRM_SUFFIX, companion_name, is_companion_name
from studies.store import tables
from studies.store.records import StudyRecord, StudySummary, as_record
from studies.urls import error_line, redact_url
from trainer.errors import UserError

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from sweeps import SweepSpec

__all__ = [
    "StorageReadError",
    "StudyMismatch",
    "StudySummary",
    "load_study",
    "quiet_optuna_logs",
    "read_companion",
    "read_study",
    "search_name",
    "stored_spec",
    "study_summaries",
]


def quiet_optuna_logs() -> None:
    """Keep Optuna's own log lines off the terminal: the CLI draws its own progress and
    reports each failed trial's reason (Optuna would print a traceback)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


class StudyMismatch(UserError, ValueError):
    """No study of that name, or one made from another spec."""


def _unknown(name: str, names: list[str]) -> StudyMismatch:
    known = ", ".join(sorted(n for n in names if not is_companion_name(n))) or "none"
    return StudyMismatch(f"no study named {name!r} in this storage (studies: {known})")


class StorageReadError(UserError, RuntimeError):
    """The storage opened but a query failed (locked past the busy timeout, damaged)."""


def _read_error(exc: Exception, storage_url: str) -> StorageReadError:
    detail = error_line(str(exc) or type(exc).__name__, secret_of=storage_url)
    return StorageReadError(f"cannot read the Optuna storage {redact_url(storage_url)}: {detail}")


def study_summaries(storage_url: str, *, companions: bool = False) -> list[StudySummary]:
    """Every study in the storage, by name; with ``companions``, each companion study
    ``NAME:confirm`` right after its study (else they are left out)."""
    try:
        with tables.connect(storage_url) as db:
            try:
                found = tables.study_counts(db)
            except db.error as exc:
                raise _read_error(exc, storage_url) from None
    except tables.NoDatabase:
        found = []
    except tables.Unreadable:
        found = _summaries_through_optuna(storage_url)
    shown = (s for s in found if companions or not is_companion_name(s.name))
    return sorted(shown, key=lambda s: (search_name(s.name), is_companion_name(s.name)))


def search_name(name: str) -> str:
    """The search study a study name belongs to: ``NAME`` for ``NAME:confirm``, else the
    name itself."""
    return name.removesuffix(CONFIRM_SUFFIX)


def _summaries_through_optuna(storage_url: str) -> list[StudySummary]:
    import optuna
    from optuna.trial import TrialState

    from studies.store.storage import open_storage

    storage = open_storage(storage_url)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=True):
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
    return rows


def read_study(name: str, storage_url: str) -> StudyRecord:
    """Study ``name`` and its companion study, as records: what `salsweep studies show`
    and `export` read. Raises `StudyMismatch` naming the studies there when there is none.
    """
    try:
        with tables.connect(storage_url) as db:
            try:
                ids = tables.study_names(db)
                if name not in ids or is_companion_name(name):
                    raise _unknown(name, list(ids))
                companion = ids.get(companion_name(name))
                wanted = [ids[name]] + ([companion] if companion is not None else [])
                found = tables.read_studies(db, wanted)
            except db.error as exc:
                raise _read_error(exc, storage_url) from None
    except tables.NoDatabase:
        raise _unknown(name, []) from None
    except tables.Unreadable:
        return as_record(load_study(name, storage_url))
    study = found[ids[name]]
    if companion is None:
        return study
    return StudyRecord(
        study_name=study.study_name,
        direction=study.direction,
        user_attrs=study.user_attrs,
        trials=study.trials,
        companion=found[companion],
    )


def read_companion(name: str, storage_url: str) -> StudyRecord:
    """The companion study ``name`` (``NAME:confirm``: the SSI baseline's run and the
    confirmation's replicates), read with its search study ``NAME``: the search study's
    record, its ``companion`` set. What `salsweep studies show NAME:confirm` reads.

    Raises `StudyMismatch` when there is no such companion study (saying so when the
    search study exists but has made no run outside the search yet).
    """
    if not is_companion_name(name):
        raise StudyMismatch(f"{name!r} is not the name of a companion study (NAME:confirm)")
    base = search_name(name)
    try:
        with tables.connect(storage_url) as db:
            try:
                ids = tables.study_names(db)
                if name not in ids:
                    raise _no_companion(name, base, list(ids))
                wanted = [ids[name]] + ([ids[base]] if base in ids else [])
                found = tables.read_studies(db, wanted)
            except db.error as exc:
                raise _read_error(exc, storage_url) from None
    except tables.NoDatabase:
        raise _unknown(name, []) from None
    except tables.Unreadable:
        record = as_record(load_study(base, storage_url))
        if record.companion is None:
            raise _no_companion(name, base, [base]) from None
        return record
    companion = found[ids[name]]
    if base not in ids:  # the search study was deleted: the companion alone
        return StudyRecord(
            study_name=base,
            direction=companion.direction,
            user_attrs={},
            trials=(),
            companion=companion,
        )
    return replace(found[ids[base]], companion=companion)


def _no_companion(name: str, base: str, names: list[str]) -> StudyMismatch:
    if base in names:
        return StudyMismatch(
            f"study {base!r} has no companion study {name!r} yet: it has run no SSI baseline "
            f"and no confirmation (salsweep studies confirm {base})"
        )
    return _unknown(name, names)


def stored_spec(name: str, storage_url: str) -> SweepSpec:
    """The spec study ``name`` was launched with, parsed and checked again."""
    from sweeps import parse_spec  # pydantic models: only the callers that need a spec

    data = read_study(name, storage_url).user_attrs.get(attrs.SPEC)
    if data is None:
        raise StudyMismatch(f"study {name!r} was not created by salsweep (it has no spec)")
    return parse_spec(data, f"study {name}")


def _load_for_reading(name: str, storage: BaseStorage) -> optuna.Study:
    """Study ``name`` with a sampler and pruner that are never asked for anything (Optuna
    would otherwise build its default TPE sampler and median pruner for nothing)."""
    import optuna

    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )


def load_study(name: str, storage_url: str) -> optuna.Study:
    """An existing study as Optuna's `Study`, for reading (the read-only commands use the
    cheaper `read_study`). Its sampler and pruner are placeholders (random, none); to run
    trials, use `studies.run_sweep`, which builds those the study's spec names.
    """
    import optuna

    from studies.store.storage import open_storage

    storage = open_storage(storage_url)
    if not is_companion_name(name):
        try:
            return _load_for_reading(name, storage)
        except KeyError:  # Optuna's "no such study"
            pass
    raise _unknown(name, optuna.get_all_study_names(storage))
