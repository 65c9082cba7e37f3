"""A trial that never wrote a heartbeat (its worker killed between taking it and its first
beat) is failed and queued again once it is older than the grace period, like a trial whose
heartbeat went stale (studies.store.silent, RetryingStorage._get_stale_trial_ids); a young
one, and one that beats, are left alone. Real SQLite studies, a 1 s heartbeat."""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
from optuna.trial import TrialState

from studies.store.silent import silent_trial_ids
from studies.store.storage import open_storage


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def test_a_trial_that_never_beat_is_failed_and_queued_again(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=1)
    study = optuna.create_study(study_name="silent", storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ask outside optimize: no heartbeat, on purpose
        silent = study.ask()
        beating = study.ask()
    silent.suggest_float("x", 0.0, 1.0)
    storage.record_heartbeat(beating._trial_id)
    study_id = study._study_id

    # Young: within the grace period (2 s), nothing is failed.
    assert silent_trial_ids(storage, study_id, 2.0) == []
    _fail_stale(study)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 2

    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=3)
    assert silent_trial_ids(storage, study_id, 2.0, now=later) == [silent._trial_id]
    time.sleep(2.5)
    storage.record_heartbeat(beating._trial_id)  # it beats on: alive
    _fail_stale(study)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    retry = trials[2]
    assert retry.system_attrs["failed_trial"] == silent.number
    assert retry.params == {"x": trials[0].params["x"]}  # re-run with the same values
