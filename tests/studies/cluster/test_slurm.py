"""Sweeps on a real Slurm (the `slurm` tier: .ci/slurm.sh's single-node cluster on this
machine), against the real PostgreSQL and the session's MLflow server, tiny specs:

- ``sweep launch --executor slurm --workers 2`` end to end: two jobs, the budget exact,
  the baseline and the confirmation, one display, the jobs' logs named;
- Ctrl-C of the launcher cancels every job (``squeue`` lists none), their trials are
  failed and their runs closed, and ``sweep resume`` finishes the study;
- a job requeued in the middle of a trial (``scontrol requeue``, as a preemption: SIGTERM,
  then the job runs again) fails its trial, closes its run, and, restarted, completes the
  budget without the launcher submitting another.

Each job's first training step is held while a file exists (cluster_helpers.hold_jobs),
so that the signals land in the middle of a trial on every run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from cli import cli
from studies import SweepTarget, attrs, load_study
from studies.cluster import ClusterRun, run_cluster, slurm_queue
from studies.store import companion_study
from studies.tracking.server import ServerInfo
from sweeps import SlurmSpec
from tests.process_helpers import SalsweepProcess
from tests.studies.cluster.cluster_helpers import Recorder, held, hold_jobs, wait_until
from tests.studies.sweep_helpers import tiny_spec

# One xdist worker runs them all, one after the other (`make test` runs -n auto --dist
# loadgroup): the single node's 2 CPUs hold one test's 2 jobs at a time.
pytestmark = pytest.mark.xdist_group("slurm")


def _listed(job_ids: set[str]) -> set[str]:
    """The jobs of ``job_ids`` that squeue lists as queued or running (default states)."""
    done = subprocess.run(
        ["squeue", "--noheader", "--format=%i", f"--jobs={','.join(sorted(job_ids))}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def _state(job_id: str) -> str:
    done = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job_id}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip()


def _write(tmp_path: Path, spec: Any) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


@pytest.mark.slow
def test_a_sweep_of_two_slurm_jobs(
    slurm_cluster: str, postgres_url: str, mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    name = "slurm-e2e"
    confirm = {"top_k": 1, "initial_seeds": 3, "max_seeds": 3}  # a race of one round
    path = _write(tmp_path, tiny_spec(name, n_trials=4, confirm=confirm))
    home = tmp_path / "home"
    args = [
        *("sweep", "launch", str(path), "--executor", "slurm", "--workers", "2"),
        *("--partition", slurm_cluster, "--time-limit", "20"),
        *("--storage", postgres_url, "--tracking-uri", mlflow_server.url, "--home", str(home)),
    ]
    done = CliRunner().invoke(cli, args)
    output = done.output
    assert done.exit_code == 0, output + repr(done.exception)
    assert "Traceback" not in output

    jobs_dir = home.resolve() / "studies" / name / "jobs"
    submitted = [line.split() for line in output.splitlines() if ": slurm job " in line]
    assert len(submitted) == 2, output
    ids = {words[words.index("job") + 1] for words in submitted}
    for job_id in ids:  # each job's output and errors, in the study's folder, named
        assert f"(output {jobs_dir / f'{job_id}_0_log.out'}" in output
        assert (jobs_dir / f"{job_id}_0_log.out").exists()
    assert f"job logs: {jobs_dir}" in " ".join(output.split())

    study = load_study(name, postgres_url)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    companion = companion_study(study)
    assert companion is not None
    runs = companion.get_trials()
    assert [t.state for t in runs] == [TrialState.COMPLETE] * 7  # baseline + 2 configs x 3
    assert {t.user_attrs[attrs.JOB] for t in [*trials, *runs]} == ids  # both jobs worked
    # One display, labelled with the worker whose job ran each trial.
    finished = re.findall(r"^(w[01]) trial (\d+): COMPLETE", output, re.M)
    assert sorted(int(n) for _, n in finished) == [0, 1, 2, 3], output
    assert _listed(ids) == set()  # every job has left the queue

    client = MlflowClient(mlflow_server.url)
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 4 + 7 and {r.info.status for r in children} == {"FINISHED"}


@pytest.mark.slow
def test_ctrl_c_cancels_every_job_and_resume_finishes(
    slurm_cluster: str,
    postgres_url: str,
    mlflow_server: ServerInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    salsweep_process: SalsweepProcess,
) -> None:
    name = "slurm-cancel"
    path = _write(tmp_path, tiny_spec(name, n_trials=2, baseline=False))
    home = tmp_path / "home"
    hold = hold_jobs(monkeypatch, tmp_path)  # the launcher's environment: its jobs' too
    common = ["--storage", postgres_url, "--tracking-uri", mlflow_server.url, "--home", str(home)]
    launcher = salsweep_process.popen(
        *("sweep", "launch", str(path), "--executor", "slurm", "--workers", "2", *common),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: held(hold) == 2, "a trial training in each job")
        running = load_study(name, postgres_url).get_trials(states=(TrialState.RUNNING,))
        ids = {str(t.user_attrs[attrs.JOB]) for t in running}
        assert len(ids) == 2
        launcher.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = launcher.communicate(timeout=240)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 130, output
    assert "interrupted" in output
    assert _listed(ids) == set(), output  # no job left queued or running
    trials = load_study(name, postgres_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    statuses = {r.info.status for r in client.search_runs([experiment.experiment_id])}
    assert "RUNNING" not in statuses and "FINISHED" not in statuses  # trials and parent closed

    hold.unlink()
    done = CliRunner().invoke(
        cli, ["sweep", "resume", name, "--executor", "slurm", "--workers", "1", *common]
    )
    assert done.exit_code == 0, done.output + repr(done.exception)
    states = [t.state for t in load_study(name, postgres_url).get_trials()]
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.FAIL) == 2
    assert len(states) == 4  # nothing left queued or running


@pytest.mark.slow
def test_a_requeued_job_fails_its_trial_and_runs_again(
    slurm_cluster: str,
    postgres_url: str,
    mlflow_server: ServerInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "slurm-requeue"
    spec = tiny_spec(name, n_trials=1, baseline=False)
    home = tmp_path / "home"
    hold = hold_jobs(monkeypatch, tmp_path)
    queue = slurm_queue(home, name, SlurmSpec(partition=slurm_cluster, time_limit=20))
    recorder = Recorder()
    result: dict[str, Any] = {}

    def launch() -> None:
        try:
            result["outcome"] = run_cluster(
                spec,
                name,
                SweepTarget(postgres_url, mlflow_server.url, home),
                ClusterRun(queue, workers=1),
                observer=recorder,  # type: ignore[arg-type]
            )
        except BaseException as exc:  # the test reports it
            result["error"] = exc

    thread = threading.Thread(target=launch, daemon=True)
    thread.start()
    try:
        wait_until(lambda: any(": slurm job " in line for line in recorder.lines), "the job")

        wait_until(lambda: held(hold) == 1, "the job's trial training")
        (trial,) = load_study(name, postgres_url).get_trials(states=(TrialState.RUNNING,))
        job_id = str(trial.user_attrs[attrs.JOB])
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)  # preempted

        def failed() -> bool:
            again = load_study(name, postgres_url).get_trials()[trial.number]
            return again.state == TrialState.FAIL and _state(job_id) == "PENDING"

        wait_until(failed, "the trial failed and the job queued again")
        # Slurm holds a requeued job for a while (BeginTime): a cluster may start it at once.
        subprocess.run(
            ["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=60
        )
        hold.unlink()
        thread.join(timeout=400)
    finally:
        hold.unlink(missing_ok=True)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")

    trials = load_study(name, postgres_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert {str(t.user_attrs[attrs.JOB]) for t in trials} == {job_id}  # the same job, again
    assert not any("submitting it again" in line for line in recorder.lines), recorder.lines
    log = (queue.folder / f"{job_id}_0_log.out").read_text()
    assert log.count(f"worker 0 of study {name} in job {job_id}") == 2  # it ran twice
    runs = MlflowClient(mlflow_server.url).search_runs([result["outcome"].experiment_id])
    status = {r.data.tags.get("optuna.trial"): r.info.status for r in runs}
    assert status["0"] in ("FAILED", "KILLED") and status["1"] == "FINISHED"
    assert os.path.exists(queue.folder)
