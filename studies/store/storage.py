"""Optuna storage: an SQLAlchemy URL, SQLite in the data dir by default.

Over 400 lines: one class, `RetryingStorage`, wraps each RDBStorage method that writes with
the one retry rule below; split, the rule and the methods it guards would drift apart.

Heartbeats are on, so a trial whose process died (killed worker, lost machine) is marked
failed by the next worker that starts a trial and queued again once; so is a RUNNING trial
that never wrote a heartbeat, once it is older than the grace period (studies.store.silent).

Once open, every call to the database retries transient errors (SQLite locked by
another writer for longer than its busy timeout; PostgreSQL restarted, unreachable or
dropping connections) with exponential backoff, for ``SALSWEEP_STORAGE_RETRY_S`` seconds
(60 by default) in all; then it raises `StorageError`, one line naming the storage (its
password hidden). Opening does not retry: a wrong URL or a server that is not there is
told at once. A heartbeat that cannot be written is skipped, never fatal to its trial.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from studies.store.silent import silent_trial_ids
from studies.urls import error_line
from trainer.errors import UserError

__all__ = [
    "BUSY_TIMEOUT_ENV",
    "HEARTBEAT_INTERVAL_S",
    "RETRY_ENV",
    "SQLITE_BUSY_TIMEOUT_S",
    "STORAGE_RETRY_S",
    "RetryingStorage",
    "StorageError",
    "StorageStats",
    "open_storage",
]

_log = logging.getLogger(__name__)

# A running trial writes a heartbeat this often; one silent for twice as long is stale.
HEARTBEAT_INTERVAL_S = 20
# Several workers (or the heartbeat thread and the trial) write to one SQLite file: wait
# for the lock instead of failing with "database is locked". Each attempt waits this long
# (SALSWEEP_SQLITE_BUSY_TIMEOUT_S), then the call's retries take over.
SQLITE_BUSY_TIMEOUT_S = 60
BUSY_TIMEOUT_ENV = "SALSWEEP_SQLITE_BUSY_TIMEOUT_S"
# Seconds a storage call keeps retrying transient errors before it gives up.
STORAGE_RETRY_S = 60.0
RETRY_ENV = "SALSWEEP_STORAGE_RETRY_S"
# A PostgreSQL connection attempt that hangs (a dropped route) counts as failed after this.
POSTGRES_CONNECT_TIMEOUT_S = 10
_CREATE_ATTEMPTS = 4
# Backoff between attempts: doubles from the first delay up to the last, with jitter so
# that workers sharing one database do not come back in step.
_FIRST_DELAY_S = 0.1
_MAX_DELAY_S = 5.0

# SQLSTATE classes and codes of PostgreSQL errors that go away by themselves: connection
# exceptions (08), the server shutting down or starting (57P01-57P03), a serialisation
# failure or deadlock between workers (40001, 40P01).
_PG_TRANSIENT_CODES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")
# Connection-time failures that retrying cannot cure (psycopg2 gives them no SQLSTATE).
_PG_PERMANENT_MESSAGES = (
    "authentication failed",
    "does not exist",
    "no password supplied",
    "permission denied",
)


class StorageError(UserError, RuntimeError):
    """The Optuna storage cannot be opened, or stayed unusable past the retry bound."""


@dataclass
class StorageStats:
    """What the retries of one storage did (counts, for logs and tests)."""

    retries: int = 0  # attempts that failed with a transient error and were made again
    recovered: int = 0  # calls that succeeded after one retry or more
    gave_up: int = 0  # calls that gave up once the bound was spent (skipped heartbeats too)
    heartbeats: int = 0  # heartbeats written
    heartbeats_skipped: int = 0  # heartbeats given up on (their trial went on)


_STATS_LOCK = threading.Lock()  # the heartbeat thread and the trial update the counts

_T = TypeVar("_T")


class RetryingStorage(RDBStorage):
    """`RDBStorage` whose calls retry transient database errors with exponential backoff
    for ``retry_s`` seconds in all, then raise `StorageError`.

    Why a retried write cannot leave half a trial: every RDBStorage call is one
    transaction (``_create_scoped_session``: flush, commit, rollback on any error). A call
    that failed was rolled back by the database, so making it again writes it once. In
    particular ``create_new_trial``, the one write that is not idempotent (each call adds
    a trial), leaves no trial behind when its commit fails: the row was never committed,
    and the retry adds the only one. The exception is a commit that reached the database
    whose answer was lost with the connection; the write is then done twice, which the
    idempotent calls (attributes, parameters, intermediate values, heartbeats: upserts
    or unique keys) absorb, and which `set_trial_state_values` and `create_new_study`
    recognise below. A trial created twice that way (its first copy RUNNING, without a
    heartbeat) is failed once it is older than the grace period, as a trial that never
    beat (`_get_stale_trial_ids`).

    ``record_heartbeat`` runs in Optuna's heartbeat thread: it retries for at most one
    heartbeat interval, and when that is not enough the beat is skipped (logged,
    counted in ``stats``) instead of ending the thread, so a short outage never makes a
    live trial look dead.
    """

    def __init__(self, *args: Any, retry_s: float = STORAGE_RETRY_S, **kwargs: Any) -> None:
        self.retry_s = retry_s
        self.stats = StorageStats()
        self._local = threading.local()  # per thread: a trial whose end was lost, see get_trial
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._local = threading.local()

    def _retrying(self, name: str, call: Callable[[], _T], bound: float | None = None) -> _T:
        """``call()``, made again on transient errors until ``bound`` seconds (default
        ``retry_s``) have passed since the first one; then `StorageError`."""
        limit = self.retry_s if bound is None else bound
        self._local.lost = None  # any later call ends the window that get_trial answers in
        delay = _FIRST_DELAY_S
        first_failure: float | None = None
        attempts = 0
        while True:
            attempts += 1
            try:
                result = call()
            except Exception as exc:
                error = _database_error(exc)
                if error is None or not _is_transient(error):
                    if isinstance(error, OperationalError):
                        # Retrying cannot cure it (disk full, no such table, bad password):
                        # one line now instead of Optuna's "unexpected" internal error.
                        raise StorageError(
                            f"the Optuna storage {self._shown_url()} failed ({name}): "
                            f"{self._detail(error)}"
                        ) from exc
                    raise
                cause = error
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                    _log.warning(
                        "Optuna storage %s: %s; retrying for up to %g s",
                        self._shown_url(),
                        self._detail(cause),
                        limit,
                    )
                left = first_failure + limit - now
                if left <= 0:
                    with _STATS_LOCK:
                        self.stats.gave_up += 1
                    raise StorageError(
                        f"the Optuna storage {self._shown_url()} failed for "
                        f"{now - first_failure:.0f} s ({attempts} attempts, {name}): "
                        f"{self._detail(cause)}; once it answers again, resume the sweep"
                    ) from exc
                time.sleep(min(delay * random.uniform(0.5, 1.0), left))
                delay = min(2 * delay, _MAX_DELAY_S)
                with _STATS_LOCK:
                    self.stats.retries += 1
                continue
            if attempts > 1:
                with _STATS_LOCK:
                    self.stats.recovered += 1
                _log.info("Optuna storage %s: %s succeeded again", self._shown_url(), name)
            return result

    def _shown_url(self) -> str:
        return _shown_url(self.url)

    def _detail(self, error: DBAPIError) -> str:
        text = str(error.orig if error.orig is not None else error).strip()
        return error_line(text or type(error).__name__, secret_of=self.url)

    # -- writes that a lost commit acknowledgement can make twice --------------------

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        retried = False

        def call() -> int:
            nonlocal retried
            try:
                return RDBStorage.create_new_study(self, directions, study_name)
            except DuplicatedStudyError:
                # Our own earlier attempt committed before its connection was lost.
                if retried and study_name is not None:
                    return RDBStorage.get_study_id_from_name(self, study_name)
                raise
            except Exception:
                retried = True
                raise

        return self._retrying("create_new_study", call)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        retried = False

        def call() -> bool:
            nonlocal retried
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except UpdateFinishedTrialError:
                # Our own earlier attempt committed this very state, then lost its answer.
                if retried and RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise
            except Exception:
                retried = True
                raise

        try:
            return self._retrying("set_trial_state_values", call)
        except StorageError:
            self._local.lost = (trial_id, state, values)
            raise

    def get_trial(self, trial_id: int) -> FrozenTrial:
        """The trial, read with retries. Right after a call about this trial gave up in
        this thread (its end could not be recorded), the next read of it is answered once
        from memory, without the database.

        Why: when ``study.tell`` raises, Optuna 5.0's ``_run_trial`` (pinned) reads the
        trial back and takes any state but a finished one for a bug: an AssertionError
        (the database still says RUNNING) or an UnboundLocalError (the read failed too)
        would replace the StorageError, and the user would see "unexpected
        AssertionError". The answer from memory is the state tell tried to write when it
        was COMPLETE, else PRUNED (the one finished state that ``_run_trial`` merely logs);
        nothing of it is written. The StorageError then goes on its way. The database
        keeps the trial RUNNING and its heartbeat stops with the process, so the next
        launch or resume marks it FAIL and runs its parameters again.
        """
        lost = getattr(self._local, "lost", None)
        self._local.lost = None
        if lost is not None and lost[0] == trial_id:
            return _placeholder(trial_id, lost[1], lost[2])
        try:
            return self._retrying("get_trial", lambda: RDBStorage.get_trial(self, trial_id))
        except StorageError:
            self._local.lost = (trial_id, None, None)
            raise

    # -- the heartbeat thread -------------------------------------------------------

    def record_heartbeat(self, trial_id: int) -> None:
        bound = float(self.heartbeat_interval or self.retry_s)
        try:
            self._retrying(
                "record_heartbeat",
                lambda: RDBStorage.record_heartbeat(self, trial_id),
                bound=min(bound, self.retry_s),
            )
        except StorageError as exc:
            with _STATS_LOCK:
                self.stats.heartbeats_skipped += 1
            _log.warning("heartbeat of trial id %d skipped: %s", trial_id, exc)
            return
        with _STATS_LOCK:
            self.stats.heartbeats += 1

    # -- trials whose worker died ---------------------------------------------------

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials (RUNNING, their last heartbeat older than the grace
        period) and the RUNNING trials that never beat and started longer ago than the
        grace period (studies.store.silent): both are failed and queued again once by
        ``fail_stale_trials``, whether or not their worker ever wrote a heartbeat."""

        def call() -> list[int]:
            stale = RDBStorage._get_stale_trial_ids(self, study_id)
            grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
            silent = silent_trial_ids(self, study_id, grace)
            return stale + [t for t in silent if t not in stale]

        return self._retrying("_get_stale_trial_ids", call)


def _placeholder(
    trial_id: int, state: TrialState | None, values: Sequence[float] | None
) -> FrozenTrial:
    """What `RetryingStorage.get_trial` answers from memory for a trial whose end was lost."""
    complete = state == TrialState.COMPLETE and values is not None
    return FrozenTrial(
        number=-1,  # unknown without reading; Optuna's caller reads state and values only
        state=TrialState.COMPLETE if complete else TrialState.PRUNED,
        value=None,
        values=list(values) if complete and values is not None else None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def wrapper(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._retrying(name, lambda: method(self, *args, **kwargs))

    return wrapper


# Every RDBStorage method that opens a database session itself (Optuna 5.0, pinned); the
# public ones not listed (create_new_trial, get_all_trials, set_trial_param,
# get_best_trial) only call these, so no call is retried twice over. create_new_study,
# set_trial_state_values, get_trial, record_heartbeat and _get_stale_trial_ids are defined
# above.
for _name in (
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_trials",
    "_set_trial_param",
    "delete_study",
    "get_all_studies",
    "get_study_directions",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_system_attrs",
    "get_study_user_attrs",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_param",
    "get_trial_system_attrs",
    "get_trial_user_attrs",
    "set_study_system_attr",
    "set_study_user_attr",
    "set_trial_intermediate_value",
    "set_trial_system_attr",
    "set_trial_user_attr",
):
    setattr(RetryingStorage, _name, _retried(_name))


def _database_error(exc: BaseException) -> DBAPIError | None:
    """The database (DBAPI) error behind ``exc``, or None.

    Optuna wraps SQLAlchemy's errors in ``StorageInternalError`` (the cause is kept);
    a `StorageError` (a nested call that already gave up) is never looked into again.
    """
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None or isinstance(seen, StorageError):
            return None
        if isinstance(seen, DBAPIError):
            return seen
        seen = seen.__cause__
    return None


def _is_transient(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True  # SQLAlchemy saw the connection drop
    if not isinstance(error, OperationalError | InterfaceError):
        return False  # integrity, programming, data errors: retrying repeats them
    text = str(error.orig).lower()
    module = type(error.orig).__module__
    if module.startswith("sqlite3"):
        return "locked" in text or "busy" in text
    if module.startswith("psycopg2"):
        code = getattr(error.orig, "pgcode", None)
        if code:
            return code.startswith(_PG_TRANSIENT_CODES)
        return not any(marker in text for marker in _PG_PERMANENT_MESSAGES)
    return True  # another driver's OperationalError: most often a lost connection


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    max_retry: int = 1,
    retry_s: float | None = None,
    busy_timeout_s: float | None = None,
) -> RetryingStorage:
    """Open (and create the tables of) the storage at ``url``.

    A stale trial is re-queued at most ``max_retry`` times, keeping its parameters.
    ``retry_s`` bounds the retries of each call (default: ``SALSWEEP_STORAGE_RETRY_S``, else
    60 s); ``busy_timeout_s`` is how long one SQLite attempt waits for a lock (default:
    ``SALSWEEP_SQLITE_BUSY_TIMEOUT_S``, else 60 s).
    """
    retry = _seconds(retry_s, RETRY_ENV, STORAGE_RETRY_S)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        busy = _seconds(busy_timeout_s, BUSY_TIMEOUT_ENV, SQLITE_BUSY_TIMEOUT_S)
        engine_kwargs["connect_args"] = {"timeout": busy}
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        # Drop connections the database server closed while a long trial was running.
        engine_kwargs["pool_pre_ping"] = True
        if _driver(url) == "psycopg2":
            engine_kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            storage = _rdb_storage(url, engine_kwargs, heartbeat_interval, max_retry, retry)
        except ImportError as exc:
            raise StorageError(f"no database driver for this storage URL: {exc}") from None
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            # Workers that start together on an empty database race to create Optuna's
            # tables; the loser's CREATE fails on what the winner made (PostgreSQL: an
            # IntegrityError or ProgrammingError; SQLite: "table ... already exists"). Try
            # again: the tables are there now. Any other OperationalError cannot open.
            if isinstance(exc, OperationalError) and "already exists" not in str(exc):
                detail = error_line(str(exc) or type(exc).__name__, secret_of=url)
                raise StorageError(
                    f"cannot open the Optuna storage {_shown_url(url)}: {detail}"
                ) from None
            if attempt == _CREATE_ATTEMPTS:
                raise StorageError(
                    "cannot create the Optuna tables (concurrent creation?)"
                ) from None
            time.sleep(0.5 * attempt)
            continue
        except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open"
            detail = error_line(str(exc) or type(exc).__name__, secret_of=url)
            raise StorageError(
                f"cannot open the Optuna storage {_shown_url(url)}: {detail}"
            ) from None
        if url.startswith("sqlite"):
            _lock_sqlite_transactions(storage.engine)
        return storage
    raise AssertionError("unreachable")


def _lock_sqlite_transactions(engine: Engine) -> None:
    """Make every transaction on the SQLite file take the write lock as it begins
    (``BEGIN IMMEDIATE``), so that what it reads and what it writes are one atomic step.

    Why: pysqlite begins a transaction only at the first write, after the reads of the
    same transaction. Two processes could then both read a queued trial as WAITING and
    both set it RUNNING (Optuna's ``FOR UPDATE`` is a no-op on SQLite): one trial handed to
    two workers, and the slower one's ``tell`` failing on a finished trial. Queued trials
    are the baseline's job, the confirmation's replicates (several local workers take them
    at once) and retried trials. Measured (4 processes popping 60 queued trials): 69-75
    pops without this, 60 with it. SQLAlchemy's recipe for pysqlite: no implicit BEGIN,
    an explicit one per transaction; the pool is renewed so that every connection has it.
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


def _rdb_storage(
    url: str,
    engine_kwargs: dict[str, Any],
    heartbeat_interval: int,
    max_retry: int,
    retry_s: float,
) -> RetryingStorage:
    with warnings.catch_warnings():
        # heartbeat_interval and the retry callback are marked experimental.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryingStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=2 * heartbeat_interval,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry, inherit_intermediate_values=False
            ),
            retry_s=retry_s,
        )


def _seconds(given: float | None, env: str, default: float) -> float:
    """``given``, else the environment variable ``env``, else ``default``: seconds > 0."""
    if given is not None:
        value: float = given
    else:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return float(default)
        try:
            value = float(raw)
        except ValueError:
            raise StorageError(f"{env} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise StorageError(f"{env} must be a number of seconds above 0, got {value:g}")
    return value


def _driver(url: str) -> str:
    try:
        return make_url(url).get_driver_name()
    except Exception:  # an unparsable URL fails when the engine is made
        return ""


def _shown_url(url: str) -> str:
    """The URL as it may be shown: its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could find
        return url
