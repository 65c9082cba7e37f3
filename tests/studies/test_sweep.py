"""End to end: real sweeps against the session's real MLflow server and SQLite storage."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from cli import cli
from studies import (
    Objective,
    SweepTarget,
    Tracker,
    export_best,
    load_study,
    objective_value,
    run_sweep,
    write_export,
)
from studies.server import ServerInfo
from tests.studies.sweep_helpers import N_TRIALS, Sweep, tiny_spec
from trainer import fit, load_train_config


def children(client: MlflowClient, sweep: Sweep) -> dict[str, Any]:
    runs = client.search_runs(
        [sweep.experiment_id], f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'"
    )
    return {run.info.run_name: run for run in runs}


def test_optuna_holds_the_trials(sweep: Sweep) -> None:
    study = load_study(sweep.name, sweep.target.storage_url)
    trials = study.get_trials()
    assert sweep.ran == N_TRIALS
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS
    assert trials[0].user_attrs["baseline"] is True
    assert trials[0].user_attrs["config"]["loss"]["method"] == "sparse-ssi"
    for t in trials[1:]:
        assert t.user_attrs["baseline"] is False
        assert t.user_attrs["config"]["loss"]["method"] == "sparse-scale-adaptive"
        assert 0.1 <= t.params["loss.lambda_sg"] <= 1.0
        assert t.user_attrs["config"]["loss"]["lambda_sg"] == t.params["loss.lambda_sg"]
        # one intermediate value per epoch, and the objective is the best of them
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.value == min(t.intermediate_values.values())
    assert study.user_attrs["mlflow_parent_run_id"] == sweep.parent_run_id


def test_mlflow_holds_parent_and_one_child_per_trial(
    sweep: Sweep, mlflow_server: ServerInfo
) -> None:
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment(sweep.experiment_id)
    assert experiment.name == sweep.name
    parent = client.get_run(sweep.parent_run_id)
    assert parent.info.run_name == "sweep"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["spec.budget.n_trials"] == str(N_TRIALS)
    parent_files = {f.path for f in client.list_artifacts(sweep.parent_run_id)}
    assert {"sweep.yaml", "best_config.yaml", "plots"} <= parent_files

    study = load_study(sweep.name, sweep.target.storage_url)
    runs = children(client, sweep)
    assert sorted(runs) == [f"trial-{t.number}" for t in study.get_trials()]
    for trial in study.get_trials():
        run = runs[f"trial-{trial.number}"]
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.study"] == sweep.name
        assert run.data.tags["optuna.trial"] == str(trial.number)
        assert run.data.tags["optuna.state"] == "COMPLETE"
        config = trial.user_attrs["config"]
        assert run.data.params["loss.method"] == config["loss"]["method"]
        assert float(run.data.params["loss.lambda_sg"]) == pytest.approx(
            config["loss"]["lambda_sg"]
        )
        assert run.data.params["data.height"] == "32"
        history = client.get_metric_history(run.info.run_id, "val/abs_rel")
        assert [m.step for m in history] == [1, 2]
        by_step = {m.step: m.value for m in history}
        for epoch, value in trial.intermediate_values.items():
            assert by_step[epoch] == pytest.approx(value)
        for key in ("train/total_loss", "epoch_time_s", "samples_per_s", "val/a1"):
            assert len(client.get_metric_history(run.info.run_id, key)) == 2, key
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "previews"} <= files
        previews = {f.path for f in client.list_artifacts(run.info.run_id, "previews")}
        assert previews == {"previews/epoch_001.png", "previews/epoch_002.png"}


def test_export_reproduces_the_objective(sweep: Sweep, tmp_path: Path) -> None:
    study = load_study(sweep.name, sweep.target.storage_url)
    path = tmp_path / "best.yaml"
    write_export(export_best(study, "trainer", filename=str(path)), path)
    text = path.read_text()
    best = min(
        (t for t in study.get_trials() if not t.user_attrs["baseline"]),
        key=lambda t: t.value or math.inf,
    )
    assert f"trial: {best.number}" in text or f"trial {best.number}" in text
    assert best.user_attrs["mlflow_run_id"] in text
    config = load_train_config(path)
    result = fit(config)
    value = objective_value(result.history, "val/abs_rel", "minimize")
    assert value == pytest.approx(best.value, rel=1e-6, abs=1e-9)


def test_export_cli_packnet(sweep: Sweep, tmp_path: Path) -> None:
    out = tmp_path / "packnet.yaml"
    result = CliRunner().invoke(
        cli,
        [
            "studies",
            "export",
            sweep.name,
            "-o",
            str(out),
            "--format",
            "packnet",
            "--storage",
            sweep.target.storage_url,
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "supervised_method: sparse-scale-adaptive" in text
    assert "lambda_sg:" in text


def test_studies_show_and_list(sweep: Sweep) -> None:
    runner = CliRunner()
    shown = runner.invoke(
        cli, ["studies", "show", sweep.name, "--storage", sweep.target.storage_url]
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("COMPLETE") == N_TRIALS
    assert "baseline (SSI)" in shown.output
    listed = runner.invoke(cli, ["studies", "list", "--storage", sweep.target.storage_url])
    assert listed.exit_code == 0, listed.output
    assert sweep.name in listed.output


def test_pruned_trial_is_killed(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """A real ThresholdPruner prunes every trial whose first epoch is above 0."""
    spec = tiny_spec("pruned", n_trials=1, baseline=False)
    tracker = Tracker(mlflow_server.url)
    experiment = tracker.ensure_experiment("pruned")
    parent = tracker.find_or_create_parent(experiment, "pruned", {}, "x: 1\n")
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'o.db'}",
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),
    )
    objective = Objective(spec, tracker, experiment, parent, "pruned", tmp_path / "trials")
    study.optimize(objective, n_trials=1)
    trial = study.get_trials()[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    run = MlflowClient(mlflow_server.url).get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED"
    assert run.data.tags["optuna.state"] == "PRUNED"


class _InterruptAt:
    """Observer that presses Ctrl-C (raises KeyboardInterrupt) in a given trial's epoch 1."""

    def __init__(self, trial: int) -> None:
        self.trial = trial
        self.finished: list[tuple[int, str, str | None]] = []

    def sweep_started(self, ui_url: str) -> None:
        assert "#/experiments/" in ui_url

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None:
        pass

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        if number == self.trial:
            raise KeyboardInterrupt

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None:
        self.finished.append((number, state, reason))


def test_interrupt_then_resume_runs_only_the_rest(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    target = SweepTarget(f"sqlite:///{tmp_path / 'optuna.db'}", mlflow_server.url, tmp_path)
    spec = tiny_spec("resume", n_trials=4)
    observer = _InterruptAt(2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, "resume", target, observer=observer)
    assert observer.finished == [
        (0, "COMPLETE", None),
        (1, "COMPLETE", None),
        (2, "FAIL", "KeyboardInterrupt"),
    ]
    study = load_study("resume", target.storage_url)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    client = MlflowClient(mlflow_server.url)
    failed = client.get_run(study.get_trials()[2].user_attrs["mlflow_run_id"])
    assert failed.info.status == "FAILED"
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert parent.info.status == "KILLED"

    outcome = run_sweep(spec, "resume", target, create=False)
    assert outcome.ran == 2  # only the two trials still missing
    states = [t.state for t in load_study("resume", target.storage_url).get_trials()]
    assert states.count(TrialState.COMPLETE) == 4
    assert len(states) == 5
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"
    assert outcome.parent_run_id == study.user_attrs["mlflow_parent_run_id"]


def test_launch_with_other_spec_refused(sweep: Sweep) -> None:
    from studies import StudyMismatch

    other = tiny_spec("e2e", n_trials=N_TRIALS + 3)
    with pytest.raises(StudyMismatch, match="different spec"):
        run_sweep(other, sweep.name, sweep.target)


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("search: {loss.lambda_sg: {low: 2, high: 1}}\n", 1, "search.loss.lambda_sg"),
        ("search: {loss.nope: 1}\nbudgett: {}\n", 1, "budgett"),
        ("search: [unclosed\n", 1, "line"),
    ],
)
def test_malformed_spec_creates_nothing(tmp_path: Path, text: str, code: int, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    home = tmp_path / "home"
    result = CliRunner().invoke(
        cli,
        ["sweep", "launch", str(spec), "--home", str(home), "--tracking-uri", "http://127.0.0.1:9"],
    )
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    # nothing created: no storage file, no data dir
    assert not home.exists()


def test_ctrl_c_exits_130_and_resume_finishes(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """A real SIGINT to a running `salsweep sweep launch`, then `salsweep sweep resume`."""
    import os
    import signal
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[2]
    data = tiny_spec("ctrlc", n_trials=3).model_dump(mode="json")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SALSWEEP_HOME": str(tmp_path / "home"),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, str(root / "cli.py")]
    proc = subprocess.Popen(
        [*cmd, "sweep", "launch", str(spec)],
        # A shell that runs the tests in the background (as CI may) starts them with SIGINT
        # ignored, and a child inherits that: give the sweep the default Ctrl-C handling.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # wait until trial 1 has started, then press Ctrl-C
        seen.append(line)
        if line.startswith("trial 1:"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=120)[0]
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert "Traceback" not in output

    storage = f"sqlite:///{tmp_path / 'home' / 'optuna.db'}"
    states = [t.state for t in load_study("ctrlc", storage).get_trials()]
    assert states[:1] == [TrialState.COMPLETE]
    assert states[-1] == TrialState.FAIL

    resumed = subprocess.run(
        [*cmd, "sweep", "resume", "ctrlc"],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    states = [t.state for t in load_study("ctrlc", storage).get_trials()]
    assert states.count(TrialState.COMPLETE) == 3
