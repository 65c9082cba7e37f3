"""SIGTERM (``docker stop``, ``kill``) and Ctrl-C to a running ``salsweep sweep launch``,
alone and with local workers: the same clean stop.

Real processes: the CLI in its own session (so that a signal to its process group reaches
it and its workers only), the session's real MLflow server, SQLite storage. SIGTERM goes
to the launching process alone, as ``docker stop`` sends it; SIGINT goes to the whole
process group, as a terminal's Ctrl-C does. Each test then counts: the exit code, the
trials in Optuna (none left RUNNING, the interrupted ones FAIL), the MLflow runs (none
left RUNNING, the parent KILLED), and that ``sweep resume`` completes the budget (run
in-process, click's CliRunner: what it checks is the study the stop left, not a signal;
with ``--workers 2`` its workers are real processes all the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from cli import cli
from studies.tracking.server import ServerInfo
from tests.process_helpers import SalsweepProcess
from tests.studies.sweep_helpers import tiny_spec

BUDGET = 2
# Seconds the whole stop may take: the workers' grace (studies.workers.launcher.STOP_GRACE_S, 6 s)
# and the MLflow calls of the cleanup, on a loaded 2-core machine.
STOP_BOUND_S = 60


def _spec_file(tmp_path: Path, name: str) -> Path:
    # Trials of a few seconds: long enough to be caught running.
    base = {
        "loss": {"method": "sparse-scale-adaptive"},
        "data": {"height": 32, "width": 64, "num_train": 16, "num_val": 4, "num_test": 4},
        "model": {"base_channels": 4, "num_stages": 2},
        "epochs": 3,
        "steps_per_epoch": 8,
        "batch_size": 2,
        "device": "cpu",
    }
    data = tiny_spec(name, n_trials=BUDGET, base=base, baseline=False).model_dump(mode="json")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _wait_for(check: Callable[[], bool], proc: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout is not None else ""
            pytest.fail(f"the sweep ended (exit {proc.returncode}) before {what}:\n{output}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _running(home: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's RUNNING trials; none before the launch has created the study (the
    test must not create the database itself: it would race the launch to make it)."""
    database = home / "optuna.db"
    if not database.exists():
        return []
    try:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{database}")
    except (KeyError, SQLAlchemyError):  # not created yet, or its tables being created
        return []
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_fails_running_trials_and_resume_finishes(
    mlflow_server: ServerInfo,
    tmp_path: Path,
    workers: int,
    signum: int,
    assert_group_gone: Callable[[int], None],
    salsweep_process: SalsweepProcess,
) -> None:
    name = f"stop-{signal.Signals(signum).name.lower()}-{workers}"
    spec = _spec_file(tmp_path, name)
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.url, "SALSWEEP_HOME": str(home)}
    proc = salsweep_process.popen(
        "sweep",
        "launch",
        str(spec),
        "--workers",
        str(workers),
        env=env,
        start_new_session=True,  # its own process group: the "terminal" of this test
        # A shell that runs the tests in the background starts them with SIGINT ignored,
        # and a child inherits that: give the sweep the default Ctrl-C handling.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Every worker is inside a trial, one has reported an epoch: training is under way.
        def training() -> bool:
            running = _running(home, name)
            return len(running) == workers and any(t.intermediate_values for t in running)

        _wait_for(training, proc, f"{workers} running trial(s)")
        if signum == signal.SIGTERM:
            os.kill(proc.pid, signum)  # as `docker stop`: the main process only
        else:
            os.killpg(proc.pid, signum)  # as Ctrl-C in a terminal: the whole group
        output = proc.communicate(timeout=STOP_BOUND_S)[0]
    finally:
        if proc.poll() is None:  # never leave a sweep running behind a failed test
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    expected = 143 if signum == signal.SIGTERM else 130
    assert proc.returncode == expected, output
    assert "Traceback" not in output
    assert ("terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted") in output
    assert_group_gone(proc.pid)  # no worker outlives the launcher

    study = optuna.load_study(study_name=name, storage=storage)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states
    # The trials the signal caught are FAILED (one per worker; a trial that ended in the
    # same instant may have completed instead), none is left RUNNING, none is lost.
    assert 1 <= states.count(TrialState.FAIL) <= workers, states
    assert set(states) <= {TrialState.COMPLETE, TrialState.FAIL}, states
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parent = study.user_attrs["mlflow_parent_run_id"]
    status = {r.info.run_id: r.info.status for r in runs}
    assert status[parent] == "KILLED"
    assert "RUNNING" not in status.values(), status
    # Each trial's run (found by its tag: a trial records the run's id only once the
    # server has created it, which an outbox may do after the trial began) is closed
    # with the trial's state.
    by_trial = {r.data.tags.get("optuna.trial"): r.info.status for r in runs}
    for trial in study.trials:
        expected_run = "FAILED" if trial.state == TrialState.FAIL else "FINISHED"
        assert by_trial[str(trial.number)] == expected_run

    resume = ["sweep", "resume", name, "--workers", str(workers), "--home", str(home)]
    resumed = CliRunner().invoke(cli, [*resume, "--tracking-uri", mlflow_server.url])
    assert resumed.exit_code == 0, resumed.output + repr(resumed.exception)
    study = optuna.load_study(study_name=name, storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == BUDGET, states
    assert TrialState.RUNNING not in states
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert "RUNNING" not in {r.info.status for r in runs}
    assert client.get_run(parent).info.status == "FINISHED"
