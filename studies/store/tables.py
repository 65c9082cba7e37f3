"""Optuna's RDB tables read with SQL: studies, their trials, and summaries of all studies.

The read-only commands (`salsweep studies list|show|export`) only read a storage, and
importing Optuna with SQLAlchemy's ORM to do so is most of their time (0.6 s of 0.8 s on
this machine, docs/BENCHMARKS.md). This module reads Optuna's tables directly: an SQLite
file through the standard library's ``sqlite3``, opened read-only; any other database
through SQLAlchemy's core engine, as Optuna connects to it, without the ORM. The SQL is
plain (no parameters, no dialect-specific syntax) and runs the same on both.

Only the tables of Optuna's schema revision `SCHEMA_REVISION` are read (the schema of
Optuna 3.2 up to 5.0, the pinned version; a test checks that it is this Optuna's). A
database at another revision, without Optuna's tables, one that cannot be opened or a
parameter distribution this module does not know raise `Unreadable`: the caller then reads
through Optuna, which creates, checks and reports as a sweep does.

Values are converted as Optuna converts them (`optuna.storages.RDBStorage`): trial
states and directions by name, infinite objective values by their type column,
parameters from Optuna's internal float to the external value by their distribution,
datetimes from naive UTC to naive local time.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studies.store.records import (
    COMPLETE,
    FAIL,
    PRUNED,
    StudyRecord,
    StudySummary,
    TrialRecord,
    with_late_run_ids,
)

__all__ = [
    "SCHEMA_REVISION",
    "Database",
    "NoDatabase",
    "Unreadable",
    "connect",
    "read_studies",
    "study_counts",
    "study_names",
]

# Optuna's alembic revision whose tables this module reads.
SCHEMA_REVISION = "v3.2.0.a"
# A reader waits this long for a writer's lock (a sweep commits in milliseconds).
SQLITE_BUSY_TIMEOUT_S = 60
_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")
_INT_DISTRIBUTIONS = ("IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution")
_FLOAT_DISTRIBUTIONS = (
    "FloatDistribution",
    "UniformDistribution",
    "LogUniformDistribution",
    "DiscreteUniformDistribution",
)


class Unreadable(Exception):
    """This storage is not read here; read it through Optuna instead."""


class NoDatabase(Exception):
    """The SQLite file does not exist: a storage without studies."""


class Database:
    """A DB-API connection in one read transaction, and the driver's error class."""

    def __init__(self, connection: Any, error: type[Exception]) -> None:
        self.connection = connection
        self.error = error

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def execute(self, sql: str) -> None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite storage URL; None for other URLs (and in-memory or
    parameterised SQLite URLs, which SQLAlchemy reads its own way)."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            if not path or path == ":memory:" or "?" in path:
                return None
            return Path(path)
    return None


@contextmanager
def connect(url: str) -> Iterator[Database]:
    """The storage at ``url`` in a read transaction, checked to have Optuna's tables at
    `SCHEMA_REVISION`. Raises `NoDatabase` for a missing SQLite file and `Unreadable`
    where Optuna must read instead."""
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise NoDatabase(str(path))
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S
            )
        except sqlite3.Error as exc:
            raise Unreadable(str(exc)) from None
        try:
            db = Database(connection, sqlite3.Error)
            _begin_sqlite(db)
            yield db
        finally:
            connection.close()
        return
    if url.startswith("sqlite"):
        raise Unreadable("an SQLite URL that names no file")
    with _connect_sqlalchemy(url) as db:
        yield db


def _begin_sqlite(db: Database) -> None:
    """One snapshot for every query (the module starts no transaction for a SELECT)."""
    try:
        db.connection.execute("BEGIN")
        _check_schema(db)
    except sqlite3.Error as exc:
        raise Unreadable(str(exc)) from None


@contextmanager
def _connect_sqlalchemy(url: str) -> Iterator[Database]:
    import sqlalchemy  # the core engine: drivers and URLs as Optuna's storage has them

    try:
        parsed = sqlalchemy.engine.make_url(url)
        # As studies.store.storage connects: a dropped route fails in seconds, not minutes.
        connect_args = {"connect_timeout": 10} if parsed.get_driver_name() == "psycopg2" else {}
        engine = sqlalchemy.create_engine(parsed, connect_args=connect_args)
        connection = engine.raw_connection()
    except Exception as exc:  # a bad URL, no driver, no server: Optuna reports it
        raise Unreadable(str(exc)) from None
    try:
        db = Database(connection, engine.dialect.loaded_dbapi.Error)
        try:
            if engine.dialect.name == "postgresql":
                # One snapshot for every query (the default gives one per statement).
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            _check_schema(db)
        except db.error as exc:
            raise Unreadable(str(exc)) from None
        yield db
    finally:
        connection.close()
        engine.dispose()


def _check_schema(db: Database) -> None:
    revisions = [row[0] for row in db.rows("SELECT version_num FROM alembic_version")]
    if revisions != [SCHEMA_REVISION]:
        raise Unreadable(f"Optuna schema revision {revisions}, not {SCHEMA_REVISION}")


def study_names(db: Database) -> dict[str, int]:
    """Every study's name -> its id."""
    return {
        str(name): int(sid) for sid, name in db.rows("SELECT study_id, study_name FROM studies")
    }


def _directions(db: Database, where: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    sql = f"SELECT study_id, direction FROM study_directions {where} ORDER BY objective"
    for sid, direction in db.rows(sql):
        out.setdefault(int(sid), []).append(str(direction).lower())
    return out


def _ids(ids: list[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


def read_studies(db: Database, ids: list[int]) -> dict[int, StudyRecord]:
    """The studies ``ids`` with their trials (no companion set): study id -> record."""
    if not ids:
        return {}
    where = f"IN ({_ids(ids)})"
    names = {sid: name for name, sid in study_names(db).items()}
    directions = _directions(db, f"WHERE study_id {where}")
    study_attrs: dict[int, dict[str, Any]] = {sid: {} for sid in ids}
    for sid, key, value in db.rows(
        "SELECT study_id, key, value_json FROM study_user_attributes "
        f"WHERE study_id {where} ORDER BY study_user_attribute_id"
    ):
        study_attrs[int(sid)][str(key)] = json.loads(value)

    join = f"JOIN trials t ON t.trial_id = x.trial_id WHERE t.study_id {where}"
    values: dict[int, dict[int, float]] = {}
    for tid, objective, value, kind in db.rows(
        f"SELECT x.trial_id, x.objective, x.value, x.value_type FROM trial_values x {join}"
    ):
        values.setdefault(int(tid), {})[int(objective)] = _value(value, str(kind))
    params: dict[int, dict[str, Any]] = {}
    distributions: dict[int, dict[str, str]] = {}
    for tid, name, value, distribution in db.rows(
        "SELECT x.trial_id, x.param_name, x.param_value, x.distribution_json "
        f"FROM trial_params x {join} ORDER BY x.param_id"
    ):
        params.setdefault(int(tid), {})[str(name)] = _external(float(value), distribution)
        distributions.setdefault(int(tid), {})[str(name)] = str(distribution)
    trial_attrs: dict[int, dict[str, Any]] = {}
    for tid, key, value in db.rows(
        "SELECT x.trial_id, x.key, x.value_json "
        f"FROM trial_user_attributes x {join} ORDER BY x.trial_user_attribute_id"
    ):
        trial_attrs.setdefault(int(tid), {})[str(key)] = json.loads(value)

    trials: dict[int, list[TrialRecord]] = {sid: [] for sid in ids}
    for tid, sid, number, state, start, complete in db.rows(
        "SELECT trial_id, study_id, number, state, datetime_start, datetime_complete "
        f"FROM trials WHERE study_id {where} ORDER BY trial_id"
    ):
        objective = values.get(int(tid), {})
        trials[int(sid)].append(
            TrialRecord(
                number=int(number),
                state=str(state),
                value=objective[0] if len(objective) == 1 and 0 in objective else None,
                params=params.get(int(tid), {}),
                user_attrs=trial_attrs.get(int(tid), {}),
                datetime_start=_local(start),
                datetime_complete=_local(complete),
                distributions=distributions.get(int(tid), {}),
            )
        )
    return {
        sid: StudyRecord(
            study_name=names[sid],
            direction=(directions.get(sid) or ["minimize"])[0],
            user_attrs=study_attrs[sid],
            trials=with_late_run_ids(study_attrs[sid], sorted(trials[sid], key=lambda t: t.number)),
        )
        for sid in ids
        if sid in names
    }


def study_counts(db: Database) -> list[StudySummary]:
    """Every study's trial counts by state, best value and first start, by study id."""
    directions = _directions(db, "")
    states: dict[int, dict[str, int]] = {}
    for sid, state, count in db.rows(
        "SELECT study_id, state, COUNT(*) FROM trials GROUP BY study_id, state"
    ):
        states.setdefault(int(sid), {})[str(state)] = int(count)
    starts = {
        int(sid): _local(start)
        for sid, start in db.rows(
            "SELECT study_id, MIN(datetime_start) FROM trials GROUP BY study_id"
        )
    }
    complete: dict[int, list[float]] = {}
    for sid, value, kind in db.rows(
        "SELECT t.study_id, x.value, x.value_type FROM trial_values x "
        f"JOIN trials t ON t.trial_id = x.trial_id WHERE t.state = '{COMPLETE}' "
        "AND x.objective = 0"
    ):
        complete.setdefault(int(sid), []).append(_value(value, str(kind)))
    out = []
    for name, sid in sorted(study_names(db).items(), key=lambda item: item[1]):
        counts = states.get(sid, {})
        study_directions = directions.get(sid, [])
        values = complete.get(sid, [])
        best = None
        if len(study_directions) == 1 and values:
            best = max(values) if study_directions[0] == "maximize" else min(values)
        out.append(
            StudySummary(
                name=name,
                n_trials=sum(counts.values()),
                n_complete=counts.get(COMPLETE, 0),
                n_pruned=counts.get(PRUNED, 0),
                n_failed=counts.get(FAIL, 0),
                best_value=best,
                started=starts.get(sid),
            )
        )
    return out


def _value(value: float | None, kind: str) -> float:
    """An objective value from its stored form (Optuna's TrialValueModel)."""
    if kind == "INF_POS":
        return math.inf
    if kind == "INF_NEG":
        return -math.inf
    if value is None:
        raise Unreadable(f"a finite trial value without a value ({kind})")
    return float(value)


def _external(value: float, distribution_json: str) -> Any:
    """A parameter's value as the trial suggested it, from Optuna's internal float (as
    ``json_to_distribution(...).to_external_repr(value)`` gives it)."""
    spec = json.loads(distribution_json)
    if "name" in spec:
        name, attributes = spec["name"], spec.get("attributes", {})
        if name == "CategoricalDistribution":
            return attributes["choices"][int(value)]
        if name in _INT_DISTRIBUTIONS:
            return int(value)
        if name in _FLOAT_DISTRIBUTIONS:
            return value
        raise Unreadable(f"unknown distribution {name!r}")
    kind = spec.get("type")
    if kind == "categorical":
        return spec["choices"][int(value)]
    if kind == "int":
        return int(value)
    if kind == "float":
        return value
    raise Unreadable(f"unknown distribution {distribution_json}")


def _local(stored: datetime | str | None) -> datetime | None:
    """A stored naive-UTC datetime (SQLite keeps text) as naive local time, as Optuna
    gives it."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
    return moment.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)
