"""Trials that never beat: RUNNING, without a single heartbeat, started longer ago than a
bound.

Optuna's heartbeat fails only the trials whose last heartbeat is stale; a trial that never
wrote one (its worker was killed between taking the trial and its first beat: a job at its
limit, a lost node, a lost acknowledgement of `create_new_trial`, see
studies.store.storage) stayed RUNNING for ever, and the confirmation waited on it.
`studies.store.storage.RetryingStorage` counts these as stale too, so that they are failed
and queued again like any other trial whose worker died.

A trial writes its first heartbeat as it starts (Optuna's heartbeat thread beats at once),
so one silent for the grace period (twice the heartbeat interval) has no live worker.
Optuna 5.0 (pinned) stores trial datetimes as naive UTC, in the model's column
``_datetime_start_utc`` (its ``datetime_start`` is the local-time property).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import TrialState

__all__ = ["silent_trial_ids"]


def silent_trial_ids(
    storage: RDBStorage, study_id: int, grace_s: float, *, now: datetime | None = None
) -> list[int]:
    """Ids of the RUNNING trials of study ``study_id`` that have no heartbeat and started
    more than ``grace_s`` seconds before ``now`` (naive UTC; default: this clock's)."""
    current = now if now is not None else datetime.now(UTC).replace(tzinfo=None)
    cutoff = current - timedelta(seconds=grace_s)
    trial, beat = models.TrialModel, models.TrialHeartbeatModel
    query = (
        sqlalchemy.select(trial.trial_id)
        .outerjoin(beat, beat.trial_id == trial.trial_id)
        .where(
            trial.study_id == study_id,
            trial.state == TrialState.RUNNING,
            beat.trial_heartbeat_id.is_(None),
            trial._datetime_start_utc < cutoff,
        )
        .order_by(trial.trial_id)
    )
    with storage.engine.connect() as connection:
        return [int(row[0]) for row in connection.execute(query)]
