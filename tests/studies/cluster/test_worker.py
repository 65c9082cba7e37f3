"""What a worker job runs (studies.cluster.worker), through submitit's DebugExecutor (the
job's callable, pickled and run in this process): it takes only the search trials the
launcher queued, never creates one, and ends at the launcher's word ``end`` or when the
launcher has gone silent. A real SQLite study; no MLflow server (no run is opened)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import submitit
from optuna.trial import TrialState

from studies import attrs
from studies.cluster.phase import PHASE_KEY, SILENT_S, Word, read_word, say
from studies.cluster.worker import JobWorker, NoTicket, TicketStudy
from studies.store.storage import open_storage
from studies.workers.settings import WorkerSettings
from tests.studies.sweep_helpers import tiny_spec


@pytest.fixture
def usr2_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGUSR2)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR2, before)


def _study(tmp_path: Path) -> tuple[str, optuna.Study]:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="jobs", storage=open_storage(url))
    study.set_user_attr(attrs.SPEC, tiny_spec("jobs").model_dump(mode="json"))
    return url, study


def _settings(url: str, tmp_path: Path) -> str:
    return WorkerSettings(
        study="jobs",
        storage=url,
        tracking="http://127.0.0.1:9",  # never reached: no run is opened
        home=tmp_path / "home",
        heartbeat=20,
        experiment_id="1",
        parent_run_id="parent",
        parent_pid=0,
    ).to_json()


def test_a_job_s_study_takes_queued_trials_only(tmp_path: Path) -> None:
    _, study = _study(tmp_path)
    tickets = TicketStudy(study_name="jobs", storage=study._storage)
    with pytest.raises(NoTicket):
        tickets.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert study.get_trials() == []  # nothing created
    study.enqueue_trial({})
    tickets.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE
    assert 0 <= trial.params["x"] <= 1  # the sampler drew it: a ticket carries no values


def test_the_launcher_s_word_round_trips(tmp_path: Path) -> None:
    _, study = _study(tmp_path)
    storage, study_id = study._storage, study._study_id
    assert read_word(storage, study_id) is None
    word = say(storage, study_id, "confirm", now=1000.0)
    assert read_word(storage, study_id) == word == Word("confirm", 1000.0)
    assert word.silent(now=1000.0 + SILENT_S + 1)
    assert not word.silent(now=1000.0 + SILENT_S - 1)
    storage.set_study_system_attr(study_id, PHASE_KEY, {"phase": "later", "at": 1})
    assert read_word(storage, study_id) is None  # a word this version cannot read


def test_a_worker_ends_at_the_launcher_s_word(
    tmp_path: Path, stop_handlers: None, usr2_restored: None
) -> None:
    url, study = _study(tmp_path)
    say(study._storage, study._study_id, "end")
    job = submitit.DebugExecutor(tmp_path / "jobs").submit(JobWorker(_settings(url, tmp_path)))
    summary = job.result()
    assert "0 search trial(s), 0 other run(s); the launcher ended the sweep" in summary
    assert summary.startswith(f"worker 0 (job {job.job_id})")
    # The time-limit warning now stops the worker as SIGTERM does.
    assert signal.getsignal(signal.SIGUSR2) not in (signal.SIG_DFL, signal.SIG_IGN)


def test_a_worker_whose_launcher_is_gone_ends(
    tmp_path: Path, stop_handlers: None, usr2_restored: None
) -> None:
    url, study = _study(tmp_path)
    say(study._storage, study._study_id, "search", now=time.time() - SILENT_S - 5)
    job = submitit.DebugExecutor(tmp_path / "jobs").submit(
        JobWorker(_settings(url, tmp_path), poll_s=0.1)
    )
    assert "the launcher has been silent too long" in job.result()
    assert study.get_trials() == []  # no ticket: no trial
