"""Several workers on one study, and a worker that dies mid-trial.

Workers are real `salsweep` / Python processes sharing one Optuna storage (SQLite or the
real PostgreSQL server) and the session's real MLflow server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from studies import SweepTarget, load_study, run_sweep
from studies.tracking.server import ServerInfo
from sweeps import parse_spec
from tests.process_helpers import SalsweepProcess

ROOT = Path(__file__).resolve().parents[3]


def spec_data(name: str, n_trials: int, epochs: int = 2, steps: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "base": {
            "data": {"height": 32, "width": 64, "num_train": 16, "num_val": 4},
            "model": {"base_channels": 4, "num_stages": 2},
            "epochs": epochs,
            "steps_per_epoch": steps,
            "batch_size": 2,
            "device": "cpu",
        },
        "search": {
            "loss.lambda_sg": {"low": 0.1, "high": 1.0},
            "loss.num_scales": {"low": 1, "high": 3},
        },
        "budget": {"n_trials": n_trials},
        # no seed: workers must not draw the same suggestions
        "sampler": {"type": "random", "seed": None},
        "pruner": {"type": "none"},
    }


def test_two_workers_share_a_postgres_study(
    postgres_url: str, mlflow_server: ServerInfo, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data("shared", n_trials=4)))
    env = {
        **os.environ,
        "SALSWEEP_STORAGE": postgres_url,
        "MLFLOW_TRACKING_URI": mlflow_server.url,
    }
    workers = [
        salsweep_process.popen(
            *("sweep", "launch", str(spec), "--home", str(tmp_path / f"w{i}")),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output

    study = load_study("shared", postgres_url)
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # The budget is the study's: two workers together run 4 trials (one more at most,
    # when both start a trial at the same moment the count reaches the budget).
    assert 4 <= len(complete) <= 5
    assert len({t.user_attrs["worker"] for t in complete}) == 2
    runs = {t.user_attrs["mlflow_run_id"] for t in complete}
    assert len(runs) == len(complete)
    client = MlflowClient(mlflow_server.url)
    parent = study.user_attrs["mlflow_parent_run_id"]
    experiment = client.get_experiment_by_name("shared")
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert {r.info.run_id for r in children} == runs
    parents = client.search_runs([experiment.experiment_id], "attributes.run_name = 'sweep'")
    assert [r.info.run_id for r in parents] == [parent]


WORKER = """
import sys
from pathlib import Path
import yaml
from studies import SweepTarget, run_sweep
from sweeps import parse_spec
spec = parse_spec(yaml.safe_load(Path(sys.argv[1]).read_text()), "spec")
target = SweepTarget(sys.argv[2], sys.argv[3], Path(sys.argv[4]), heartbeat_interval=1)
run_sweep(spec, "crash", target)
"""


def test_killed_worker_trial_is_failed_and_retried(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    # Epochs long enough that the trial cannot end between the look that sees epoch 1 and
    # the kill (3 x 6 steps did, once, in a fresh-clone CI run).
    data = spec_data("crash", n_trials=1, epochs=4, steps=40)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(spec_file), storage, mlflow_server.url, str(tmp_path)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait until the worker has reported epoch 1 of trial 0, then kill it hard.
    deadline = time.monotonic() + 180
    study = None
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name="crash", storage=storage)
            trials = study.get_trials()
            if trials and trials[0].intermediate_values:
                break
        except KeyError:  # study not created yet
            pass
        assert worker.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("the worker never reported an epoch")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert study is not None
    dead = study.get_trials()[0]
    assert dead.state == TrialState.RUNNING  # nobody has noticed yet
    # Past the grace period (2 x 1 s heartbeat); SQLite clocks tick in whole seconds.
    time.sleep(4.5)

    target = SweepTarget(storage, mlflow_server.url, tmp_path, heartbeat_interval=1)
    outcome = run_sweep(parse_spec(data, "spec"), "crash", target, create=False)
    trials = optuna.load_study(study_name="crash", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    retry = trials[1]
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.params == dead.params
    assert outcome.ran == 1
    client = MlflowClient(mlflow_server.url)
    assert client.get_run(dead.user_attrs["mlflow_run_id"]).info.status == "FAILED"
    assert retry.user_attrs["mlflow_run_id"] != dead.user_attrs["mlflow_run_id"]
    assert client.get_run(retry.user_attrs["mlflow_run_id"]).info.status == "FINISHED"
