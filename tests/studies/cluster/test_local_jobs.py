"""A sweep run by worker jobs (studies.cluster) through submitit's LocalExecutor: the jobs
are real processes of this machine running the same `JobWorker` a Slurm job runs, against
a real SQLite study and the session's MLflow server. No cluster needed: these always run
(the real Slurm's are in test_slurm.py).

- two jobs share one study and one parent run: the budget exact, the baseline once, the
  confirmation's race complete (through the launcher's ``next_round``), one display
  labelled per worker, each job's logs named; then ``studies confirm`` of the decided
  race, which submits nothing;
- what clusters do to jobs: a job warned of its time limit (SIGUSR2) fails its trial,
  closes its run and is submitted again; a job killed outright (SIGKILL) leaves its trial
  to the heartbeat, which fails it and runs its values again in the next job; the budget
  completes, nothing stays RUNNING.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from studies import SweepTarget, attrs, load_study
from studies.cluster import (
    ClusterRun,
    LocalQueue,
    jobs_folder,
    race_rounds,
    run_cluster,
    run_cluster_confirmation,
)
from studies.confirmation.confirmed import load_confirmation
from studies.store import as_record, companion_study
from studies.tracking.server import ServerInfo
from sweeps import ConfirmSpec
from tests.studies.cluster.cluster_helpers import Recorder, held, hold_jobs, wait_until
from tests.studies.sweep_helpers import tiny_spec


@pytest.mark.slow
def test_two_local_jobs_share_one_study(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    name = "local-jobs"
    confirm = {"top_k": 1, "initial_seeds": 3, "max_seeds": 3}  # a race of one round
    spec = tiny_spec(name, n_trials=4, confirm=confirm)
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    queue = LocalQueue(jobs_folder(home, name))
    recorder = Recorder()
    rounds: list[int] = []
    race = race_rounds(spec, ConfirmSpec.model_validate(confirm))

    def counted(study: optuna.Study) -> Sequence[Any]:
        # The race through the launcher's next_round: asked once the search is over (its
        # first round), then once that round is done (decided: nothing more).
        jobs = race(study)
        rounds.append(len(jobs))
        return jobs

    outcome = run_cluster(
        spec,
        name,
        SweepTarget(storage, mlflow_server.url, home),
        ClusterRun(queue, workers=2),
        observer=recorder,  # type: ignore[arg-type]
        worker_observer=recorder.for_worker,  # type: ignore[arg-type]
        next_round=counted,
    )
    assert rounds == [6, 0]  # 2 contenders x 3 seeds, then decided

    study = load_study(name, storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # the budget, exactly
    jobs = {t.user_attrs[attrs.JOB] for t in trials}
    companion = companion_study(study)
    assert companion is not None
    runs = companion.get_trials()
    assert [t.state for t in runs] == [TrialState.COMPLETE] * 7  # baseline + 2 x 3
    assert [t.user_attrs["role"] for t in runs].count("search-baseline") == 1
    jobs |= {t.user_attrs[attrs.JOB] for t in runs}
    submitted = [line for line in recorder.lines if ": local job " in line]
    assert len(submitted) == 2, recorder.lines
    ids = {line.split(": local job ")[1].split()[0] for line in submitted}
    assert jobs == ids  # both jobs worked, and nothing else did
    for line in submitted:  # each job's logs named, in the study's folder
        out = Path(line.split("(output ")[1].split(",")[0])
        assert out.parent == home.resolve() / "studies" / name / "jobs"
        assert out.exists() and "worker" in out.read_text()

    # One display, every change once, labelled with the worker whose job made it.
    finished = [c for c in recorder.calls if c[0].endswith("trial_finished")]
    assert sorted(c[1] for c in finished) == [0, 1, 2, 3]
    assert {c[0].split()[0] for c in finished} <= {"w0", "w1"}
    assert sum(c[0].endswith("run_finished") for c in recorder.calls) == 7
    assert (outcome.ran, outcome.replicates) == (4, 7)
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None
    assert confirmation.state.done and all(c.seeds == 3 for c in confirmation.configs)

    client = MlflowClient(mlflow_server.url)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [outcome.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'"
    )
    assert len(children) == 4 + 7
    assert {r.info.status for r in children} == {"FINISHED"}

    # `studies confirm --executor ...` of a decided race: nothing to run, no job submitted.
    jobs_before = len(list(queue.folder.glob("*_submitted.pkl")))
    more = run_cluster_confirmation(
        name,
        SweepTarget(storage, mlflow_server.url, home),
        ClusterRun(queue, workers=1),
        observer=recorder,  # type: ignore[arg-type]
    )
    assert more.replicates == 0
    assert len(list(queue.folder.glob("*_submitted.pkl"))) == jobs_before


@pytest.mark.slow
def test_jobs_stopped_at_their_time_limit_or_killed_are_replaced(
    mlflow_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "faults"
    spec = tiny_spec(name, n_trials=2, baseline=False, sampler={"type": "random", "seed": 1})
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    hold = hold_jobs(monkeypatch, tmp_path)
    queue = LocalQueue(jobs_folder(home, name))
    submitted: list[Any] = []
    submit = queue.submit

    def recording_submit(worker: Any, index: int) -> Any:
        job = submit(worker, index)
        submitted.append(job)
        return job

    monkeypatch.setattr(queue, "submit", recording_submit)
    recorder = Recorder()
    result: dict[str, Any] = {}

    def launch() -> None:
        try:
            result["outcome"] = run_cluster(
                spec,
                name,
                # 3 s heartbeats: a killed job's trial is stale after 6 s (a live one
                # keeps beating on a loaded machine)
                SweepTarget(storage, mlflow_server.url, home, heartbeat_interval=3),
                ClusterRun(queue, workers=1, resubmits=2),
                observer=recorder,  # type: ignore[arg-type]
            )
        except BaseException as exc:  # the test reports it
            result["error"] = exc

    launcher = threading.Thread(target=launch, daemon=True)
    launcher.start()

    def running_trial() -> optuna.trial.FrozenTrial | None:
        try:
            trials = load_study(name, storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:
            return None
        return next((t for t in trials if attrs.JOB in t.user_attrs), None)

    # 1. The time-limit warning (SIGUSR2) in the middle of a trial (the study exists once
    # a job is submitted: reading it earlier would race the launcher to create it).
    wait_until(lambda: submitted, "the first job")
    wait_until(lambda: held(hold) == 1, "the first job's trial training")
    warned = running_trial()
    assert warned is not None
    queue.signal_workers(submitted[-1:], signal.SIGUSR2)
    wait_until(lambda: len(submitted) == 2, "the job submitted again")
    # 2. SIGKILL (a lost node) in the middle of the next job's trial.
    wait_until(lambda: held(hold) == 1, "the second job's trial training")
    killed = running_trial()
    assert killed is not None and killed.number != warned.number
    queue.signal_workers(submitted[-1:], signal.SIGKILL)
    wait_until(lambda: len(submitted) == 3, "the job submitted again after the kill")
    hold.unlink()  # the third job trains
    launcher.join(timeout=300)
    assert not launcher.is_alive()
    assert "error" not in result, result.get("error")

    trials = load_study(name, storage).get_trials()
    states = {t.number: t.state for t in trials}
    assert states[warned.number] == TrialState.FAIL
    assert attrs.FAIL_REASON not in trials[warned.number].user_attrs  # stopped, not diverged
    assert states[killed.number] == TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params == trials[killed.number].params  # its values, run again
    # Each job started its sampler anew: no two trials drew the same values.
    drawn = [
        t.params["loss.lambda_sg"] for t in trials if t.system_attrs.get("failed_trial") is None
    ]
    assert len(set(drawn)) == len(drawn)
    assert sorted(t.state.name for t in trials).count("COMPLETE") == 2  # the budget
    assert TrialState.RUNNING not in states.values() and TrialState.WAITING not in states.values()
    # Their MLflow runs are closed: the stopped worker closed its own; the killed one's,
    # where the server had created it, was closed with its trial.
    outcome = result["outcome"]
    runs = MlflowClient(mlflow_server.url).search_runs([outcome.experiment_id])
    status = {r.data.tags.get("optuna.trial"): r.info.status for r in runs}
    assert status[str(warned.number)] in ("FAILED", "KILLED")
    assert status.get(str(killed.number), "FAILED") in ("FAILED", "KILLED")
    assert "RUNNING" not in status.values()
    again = [line for line in recorder.lines if "submitting it again" in line]
    assert len(again) == 2, recorder.lines
    assert len({job.job_id for job in submitted}) == 3
