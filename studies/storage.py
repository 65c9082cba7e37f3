"""Optuna storage: an SQLAlchemy URL, SQLite in the data dir by default.

Heartbeats are on, so a trial whose process died (killed worker, lost machine) is marked
failed by the next worker that starts a trial and queued again once.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError

from trainer.errors import UserError

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "SQLITE_BUSY_TIMEOUT_S",
    "StorageError",
    "default_storage_url",
    "open_storage",
]

# A running trial writes a heartbeat this often; one silent for twice as long is stale.
HEARTBEAT_INTERVAL_S = 20
# Several workers (or the heartbeat thread and the trial) write to one SQLite file: wait
# for the lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_S = 60
_CREATE_ATTEMPTS = 4


class StorageError(UserError, RuntimeError):
    """The Optuna storage cannot be opened."""


def default_storage_url(home: Path) -> str:
    """SQLite file ``<home>/optuna.db``."""
    return f"sqlite:///{(home / 'optuna.db').resolve()}"


def open_storage(
    url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL_S, max_retry: int = 1
) -> RDBStorage:
    """Open (and create the tables of) the storage at ``url``.

    A stale trial is re-queued at most ``max_retry`` times, keeping its parameters.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        # Drop connections the database server closed while a long trial was running.
        engine_kwargs["pool_pre_ping"] = True
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            return _rdb_storage(url, engine_kwargs, heartbeat_interval, max_retry)
        except ImportError as exc:
            raise StorageError(f"no database driver for this storage URL: {exc}") from None
        except (IntegrityError, ProgrammingError):
            # Workers that start together on an empty database race to create Optuna's
            # tables; the loser's CREATE fails on what the winner made. Try again: the
            # tables are there now.
            if attempt == _CREATE_ATTEMPTS:
                raise StorageError(
                    "cannot create the Optuna tables (concurrent creation?)"
                ) from None
            time.sleep(0.5 * attempt)
        except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open"
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StorageError(
                f"cannot open the Optuna storage: {_hide_password(detail, url)}"
            ) from None
    raise AssertionError("unreachable")


def _rdb_storage(
    url: str, engine_kwargs: dict[str, Any], heartbeat_interval: int, max_retry: int
) -> RDBStorage:
    with warnings.catch_warnings():
        # heartbeat_interval and the retry callback are marked experimental.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=2 * heartbeat_interval,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry, inherit_intermediate_values=False
            ),
        )


def _hide_password(text: str, url: str) -> str:
    """Replace the URL's password wherever a driver message repeats it."""
    try:
        password = make_url(url).password
    except Exception:  # an unparsable URL has no password to hide
        return text
    return text.replace(str(password), "***") if password else text
