"""End to end: real sweeps against the session's real MLflow server and SQLite storage."""

from __future__ import annotations

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
from studies.export import exported_trial
from studies.server import ServerInfo
from studies.verdict import companion_name, load_confirmation
from tests.studies.sweep_helpers import CONFIRM, N_TRIALS, Sweep, tiny_spec
from trainer import fit, load_train_config

METRIC = "val/abs_rel_align"  # the default objective


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
    # The sampler's and the pruner's history (optuna's own view of the study) holds the
    # scale-adaptive trials only: no SSI run, no confirmation replicate.
    raw = optuna.load_study(study_name=sweep.name, storage=sweep.target.storage_url)
    assert [t.number for t in raw.trials] == list(range(N_TRIALS))
    for t in trials:
        assert "baseline" not in t.user_attrs
        assert t.user_attrs["config"]["loss"]["method"] == "sparse-scale-adaptive"
        assert 0.1 <= t.params["loss.lambda_sg"] <= 1.0
        assert t.user_attrs["config"]["loss"]["lambda_sg"] == t.params["loss.lambda_sg"]
        # one intermediate value per epoch, and the objective is the best of them
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.value == min(t.intermediate_values.values())
    assert study.user_attrs["mlflow_parent_run_id"] == sweep.parent_run_id
    assert study.user_attrs["objective_metric"] == METRIC


def test_baseline_and_replicates_live_beside_the_study(sweep: Sweep) -> None:
    companion = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    )
    runs = companion.get_trials()
    assert all(t.state == TrialState.COMPLETE for t in runs)
    # The SSI baseline ran once, before the search, with the search's training seed 0,
    # scored on validation like a trial.
    first = runs[0]
    assert first.user_attrs["role"] == "search-baseline"
    assert (first.user_attrs["config_key"], first.user_attrs["seed"]) == ("baseline", 0)
    assert first.user_attrs["config"]["loss"]["method"] == "sparse-ssi"
    assert first.user_attrs["metric"] == METRIC
    study = load_study(sweep.name, sweep.target.storage_url)
    assert first.datetime_complete <= study.trials[0].datetime_start
    # Then the confirmation: the 2 best distinct configs and the baseline, seeds 1 and 2.
    confirmations = runs[1:]
    assert sweep.replicates == len(runs) == 1 + 3 * CONFIRM["seeds"]
    best = sorted(study.trials, key=lambda t: (t.value, t.number))[: CONFIRM["top_k"]]
    keys = [f"trial-{t.number}" for t in best] + ["baseline"]
    assert sorted((t.user_attrs["config_key"], t.user_attrs["seed"]) for t in confirmations) == (
        sorted((key, seed) for key in keys for seed in (1, 2))
    )
    for t in confirmations:
        attrs = t.user_attrs
        assert attrs["role"] == "confirmation" and attrs["metric"] == "test/abs_rel_align"
        assert attrs["config"]["seed"] == attrs["seed"]
        assert attrs["config"]["data"]["seed"] == 0  # the data seed never moves
        if attrs["config_key"] != "baseline":
            source = study.trials[int(attrs["config_key"].split("-")[1])]
            assert attrs["params"] == source.params
            assert {**attrs["config"], "seed": 0} == source.user_attrs["config"]
    confirmation = load_confirmation(study)
    assert confirmation is not None
    assert sorted(c.key for c in confirmation.configs) == sorted(keys)
    assert all(c.estimate.n == 2 for c in confirmation.configs)
    assert confirmation.winner is not None and confirmation.winner.key in keys[:2]


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
    assert {
        "sweep.yaml",
        "best_config.yaml",
        "plots",
        "confirmation.md",
        "confirmation.csv",
        "confirmation.png",
    } <= parent_files

    study = load_study(sweep.name, sweep.target.storage_url)
    runs = {n: r for n, r in children(client, sweep).items() if n.startswith("trial-")}
    assert sorted(runs) == sorted(f"trial-{t.number}" for t in study.get_trials())
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
        history = client.get_metric_history(run.info.run_id, METRIC)
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


def test_replicate_runs_in_mlflow(sweep: Sweep, mlflow_server: ServerInfo) -> None:
    client = MlflowClient(mlflow_server.url)
    companion = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    )
    runs = children(client, sweep)
    tagged = client.search_runs(
        [sweep.experiment_id], "tags.`salsweep.role` = 'confirmation'", max_results=100
    )
    assert len(tagged) == 3 * CONFIRM["seeds"]
    for trial in companion.get_trials():
        attrs = trial.user_attrs
        key, seed, role = attrs["config_key"], attrs["seed"], attrs["role"]
        name = f"baseline-seed{seed}" if role == "search-baseline" else f"confirm-{key}-seed{seed}"
        run = runs[name]
        assert run.info.run_id == attrs["mlflow_run_id"]
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert (tags["salsweep.role"], tags["salsweep.config"]) == (role, key)
        assert tags["salsweep.seed"] == str(seed)
        assert run.data.params["seed"] == str(seed)
        assert run.data.params["loss.method"] == attrs["config"]["loss"]["method"]
        assert len(client.get_metric_history(run.info.run_id, METRIC)) == 2  # per epoch
        if role == "confirmation":
            # Scored on test; no optuna.value, which ranks the search's trials in the UI.
            assert run.data.metrics["test/abs_rel_align"] == pytest.approx(trial.value)
            assert "optuna.value" not in run.data.metrics
        else:
            assert run.data.metrics["optuna.value"] == pytest.approx(trial.value)
            assert not any(k.startswith("test/") for k in run.data.metrics)
    parent = client.get_run(sweep.parent_run_id)
    confirmation = load_confirmation(load_study(sweep.name, sweep.target.storage_url))
    assert confirmation is not None and confirmation.winner is not None
    winner = confirmation.winner.estimate
    assert parent.data.metrics["confirm/winner_mean"] == pytest.approx(winner.mean)
    assert parent.data.metrics["confirm/winner_ci_low"] == pytest.approx(winner.low)
    assert parent.data.metrics["confirm/winner_ci_high"] == pytest.approx(winner.high)
    baseline = confirmation.baseline
    assert baseline is not None
    assert parent.data.metrics["confirm/baseline_mean"] == pytest.approx(baseline.estimate.mean)
    table = Path(client.download_artifacts(sweep.parent_run_id, "confirmation.md")).read_text()
    assert "| config | params | seeds | mean ± 95% CI | vs baseline ± 95% CI |" in table
    assert "The winner, trial " in table


def test_export_reproduces_the_objective(sweep: Sweep, tmp_path: Path) -> None:
    study = load_study(sweep.name, sweep.target.storage_url)
    path = tmp_path / "best.yaml"
    write_export(export_best(study, "trainer", filename=str(path)), path)
    text = path.read_text()
    # The confirmed winner (best mean over seeds 1, 2), not the luckiest single trial.
    winner, confirmation = exported_trial(study)
    assert confirmation is not None and confirmation.winner is not None
    assert confirmation.winner.key == f"trial-{winner.number}"
    assert text.startswith(f"# salsweep: confirmed winner of study '{sweep.name}'")
    assert f"# trial: {winner.number}\n" in text
    assert "# confirmed: test/abs_rel_align = " in text and "on 2 training seeds (1, 2)" in text
    assert "# baseline: sparse-ssi: test/abs_rel_align = " in text
    assert winner.user_attrs["mlflow_run_id"] in text
    config = load_train_config(path)
    result = fit(config)
    value = objective_value(result.history, METRIC, "minimize")
    assert value == pytest.approx(winner.value, rel=1e-6, abs=1e-9)


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
    assert shown.output.count("COMPLETE") == N_TRIALS + 1  # and the baseline's run
    assert "│ baseline │ COMPLETE │ method=sparse-ssi" in shown.output
    assert "confirmation: test/abs_rel_align on the test split, 95% intervals" in shown.output
    assert "baseline (sparse-ssi)" in shown.output and "(winner)" in shown.output
    sentence = " ".join(shown.output.split("The winner, trial ", 1)[1].split())
    assert "the baseline (sparse-ssi)" in sentence and "runner-up" in sentence
    assert "2 pairs" in sentence
    listed = runner.invoke(cli, ["studies", "list", "--storage", sweep.target.storage_url])
    assert listed.exit_code == 0, listed.output
    assert sweep.name in listed.output
    assert ":confirm" not in listed.output


def test_studies_confirm_twice_adds_nothing(sweep: Sweep, mlflow_server: ServerInfo) -> None:
    """`salsweep studies confirm` on the confirmed session sweep: every replicate exists."""
    before = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    ).get_trials()
    result = CliRunner().invoke(
        cli,
        [
            "studies",
            "confirm",
            sweep.name,
            "--storage",
            sweep.target.storage_url,
            "--tracking-uri",
            mlflow_server.url,
            "--home",
            str(sweep.target.home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "confirmation: test/abs_rel_align" in result.output
    after = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    ).get_trials()
    assert [t.number for t in after] == [t.number for t in before]
    parent = MlflowClient(mlflow_server.url).get_run(sweep.parent_run_id)
    assert parent.info.status == "FINISHED"


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

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None:
        pass

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def run_finished(self, label: str, state: str, value: float | None, reason: str | None) -> None:
        self.finished.append((-1, f"{label} {state}", reason))


def test_interrupt_then_resume_runs_only_the_rest(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    target = SweepTarget(f"sqlite:///{tmp_path / 'optuna.db'}", mlflow_server.url, tmp_path)
    spec = tiny_spec("resume", n_trials=4)
    observer = _InterruptAt(2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, "resume", target, observer=observer)
    assert observer.finished == [
        (-1, "baseline COMPLETE", None),  # before the search, beside the study
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


class _InterruptReplicate(_InterruptAt):
    """Presses Ctrl-C in epoch 1 of the ``nth`` confirmation replicate (1-based)."""

    def __init__(self, nth: int) -> None:
        super().__init__(-1)
        self.nth = nth
        self.started: list[str] = []

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None:
        self.started.append(label)

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None:
        confirmations = [s for s in self.started if s.startswith("confirm ")]
        if len(confirmations) == self.nth and label == confirmations[-1]:
            raise KeyboardInterrupt


def _search_snapshot(storage: str, name: str) -> list[tuple[Any, ...]]:
    """What the sampler and pruner read: every trial of the study, as Optuna stores it."""
    study = optuna.load_study(study_name=name, storage=storage)
    return [
        (t.number, t.state, t.params, t.value, t.intermediate_values, t.distributions)
        for t in study.trials
    ]


def _confirmation_runs(client: MlflowClient, experiment_id: str) -> list[Any]:
    return client.search_runs(
        [experiment_id], "tags.`salsweep.role` = 'confirmation'", max_results=200
    )


def test_confirmation_interrupted_and_resumed_runs_each_replicate_once(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    from studies import confirm_sweep

    target = SweepTarget(f"sqlite:///{tmp_path / 'optuna.db'}", mlflow_server.url, tmp_path)
    spec = tiny_spec("confirm-resume", n_trials=3, confirm={"top_k": 1, "seeds": 2})
    observer = _InterruptReplicate(2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, "confirm-resume", target, observer=observer)
    search = _search_snapshot(target.storage_url, "confirm-resume")
    assert [t[1] for t in search] == [TrialState.COMPLETE] * 3
    companion = optuna.load_study(study_name="confirm-resume:confirm", storage=target.storage_url)
    states = [t.state for t in companion.get_trials()]
    # the baseline's search run, replicate 1 done, replicate 2 interrupted, 2 still queued
    assert states == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.WAITING,
        TrialState.WAITING,
    ]
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("confirm-resume").experiment_id
    interrupted = client.get_run(companion.get_trials()[2].user_attrs["mlflow_run_id"])
    assert interrupted.info.status == "FAILED"
    assert interrupted.data.tags["optuna.state"] == "FAIL"
    assert load_confirmation(load_study("confirm-resume", target.storage_url)) is not None

    outcome = confirm_sweep("confirm-resume", target)
    assert outcome.replicates == 3  # the interrupted one again and the two queued
    assert _search_snapshot(target.storage_url, "confirm-resume") == search
    done = [
        t
        for t in companion.get_trials(states=(TrialState.COMPLETE,))
        if t.user_attrs["role"] == "confirmation"
    ]
    jobs = sorted((t.user_attrs["config_key"], t.user_attrs["seed"]) for t in done)
    best = min(load_study("confirm-resume", target.storage_url).trials, key=lambda t: t.value)
    assert jobs == [
        ("baseline", 1),
        ("baseline", 2),
        (f"trial-{best.number}", 1),
        (f"trial-{best.number}", 2),
    ]
    runs = _confirmation_runs(client, experiment)
    assert sorted(r.info.status for r in runs) == ["FAILED"] + ["FINISHED"] * 4
    assert sorted(r.info.run_name for r in runs if r.info.status == "FINISHED") == sorted(
        f"confirm-{key}-seed{seed}" for key, seed in jobs
    )

    # A second call adds nothing; a larger top-k adds only the new configuration's seeds.
    assert confirm_sweep("confirm-resume", target).replicates == 0
    assert confirm_sweep("confirm-resume", target, top_k=2).replicates == 2
    assert len(_confirmation_runs(client, experiment)) == 5 + 2
    assert _search_snapshot(target.storage_url, "confirm-resume") == search
    confirmation = load_confirmation(load_study("confirm-resume", target.storage_url))
    assert confirmation is not None and len(confirmation.configs) == 3
    assert all(c.estimate.n == 2 for c in confirmation.configs)


def test_confirm_needs_a_complete_trial(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    spec = tiny_spec("empty", n_trials=1)
    study = optuna.create_study(study_name="empty", storage=storage)
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    result = CliRunner().invoke(
        cli,
        ["studies", "confirm", "empty", "--storage", storage, "--tracking-uri", mlflow_server.url],
    )
    assert result.exit_code == 1, result.output
    assert "study 'empty' has no complete search trial to confirm yet" in result.output
    assert "Traceback" not in result.output
