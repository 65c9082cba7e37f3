"""End to end: real sweeps against the session's real MLflow server and SQLite storage."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
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
    run_sweep,
    write_export,
)
from studies.attrs import companion_name, config_label
from studies.confirmation import ConfirmError
from studies.confirmation.confirmed import load_confirmation
from studies.report.columns import verdict_figure
from studies.report.confirmation import format_estimate
from studies.run.runner import SweepRuns
from studies.store import as_record
from studies.tracking.layout import PRUNED_NOTE
from studies.tracking.server import ServerInfo
from studies.urls import run_page_url
from sweeps import SPEC_DIR, SweepSpec, parse_spec
from tests.process_helpers import SalsweepProcess
from tests.studies.sweep_helpers import CONFIRM, N_TRIALS, SEEDS, Sweep, tiny_spec
from trainer import fit, load_train_config

METRIC = "val/abs_rel_align"  # the default objective
# The smallest race: one candidate (and the baseline), 3 seeds, one round.
ONE_ROUND = {"top_k": 1, "initial_seeds": 3, "max_seeds": 3}


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
    started = study.trials[0].datetime_start
    assert first.datetime_complete is not None and started is not None
    assert first.datetime_complete <= started
    # Then the confirmation: a race of the 2 best distinct configs and the baseline, each
    # replicate s with training seed 1 + s and data seed 1 + s (paired), seeds 1..3.
    confirmations = runs[1:]
    assert sweep.replicates == len(runs) == 1 + 3 * SEEDS
    best = sorted(study.trials, key=lambda t: (t.value, t.number))[: CONFIRM["top_k"]]
    keys = [f"trial-{t.number}" for t in best] + ["baseline"]
    assert sorted((t.user_attrs["config_key"], t.user_attrs["seed"]) for t in confirmations) == (
        sorted((key, seed) for key in keys for seed in range(1, SEEDS + 1))
    )
    for t in confirmations:
        attrs = t.user_attrs
        assert attrs["role"] == "confirmation" and attrs["metric"] == METRIC
        assert attrs["test_metric"] == "test/abs_rel_align"
        index = attrs["seed_index"]
        assert attrs["config"]["seed"] == attrs["seed"] == 1 + index
        # The scenes move with the replicate, the same for every contender of the seed.
        assert attrs["config"]["data"]["seed"] == attrs["data_seed"] == 1 + index
        # The value decides (validation at the selected epoch); the test score reports.
        assert t.value is not None and isinstance(attrs["test_value"], float)
        if attrs["config_key"] != "baseline":
            source = study.trials[int(attrs["config_key"].split("-")[1])]
            assert attrs["params"] == source.params
            assert {
                **attrs["config"],
                "seed": 0,
                "data": {**attrs["config"]["data"], "seed": 0},
            } == source.user_attrs["config"]
    assert companion_attrs(sweep)["race"]["candidates"] == keys[:2]
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None and confirmation.state.done
    assert sorted(c.key for c in confirmation.configs) == sorted(keys)
    assert all(c.seeds == SEEDS for c in confirmation.configs)
    assert confirmation.winner is not None and confirmation.winner.key in keys[:2]
    # Chosen on validation: the best validation mean among the candidates.
    means = _confirmed_means(sweep)
    assert confirmation.winner.key == min(keys[:2], key=lambda k: (means[k], keys.index(k)))


def companion_attrs(sweep: Sweep) -> dict[str, Any]:
    companion = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    )
    return companion.user_attrs


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
    # The spec's lists and nulls as JSON (studies.tracking.layout.flatten_params).
    assert parent.data.params["spec.search.loss.use_inv_depth.choices"] == "[true, false]"
    assert parent.data.params["spec.budget.timeout"] == "null"
    assert parent.data.params["spec.base.data.path"] == "null"
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
    assert len(tagged) == 3 * SEEDS
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
        assert tags["salsweep.label"] == config_label(key, attrs["method"])
        # The loss's own parameters only: the SSI baseline has no lambda_sg.
        assert ("loss.lambda_sg" in run.data.params) == (key != "baseline")
        if role == "confirmation":
            # Scored on validation (its value), tested too; no optuna.value, which ranks
            # the search's trials in the UI.
            test = attrs["test_value"]
            assert run.data.metrics["test/abs_rel_align"] == pytest.approx(test)
            assert run.data.metrics["confirm.test_value"] == pytest.approx(test)
            assert "optuna.value" not in run.data.metrics
            # The race's score under one name on every replicate: a column of the view.
            assert run.data.metrics["confirm.value"] == pytest.approx(trial.value)
        else:
            assert run.data.metrics["optuna.value"] == pytest.approx(trial.value)
            assert not any(k.startswith("test/") for k in run.data.metrics)
            assert "confirm.value" not in run.data.metrics
    parent = client.get_run(sweep.parent_run_id)
    confirmation = load_confirmation(as_record(load_study(sweep.name, sweep.target.storage_url)))
    assert confirmation is not None and confirmation.winner is not None
    winner = confirmation.winner.validation_estimate
    assert parent.data.metrics["confirm/winner_mean"] == pytest.approx(winner.mean)
    assert parent.data.metrics["confirm/winner_ci_low"] == pytest.approx(winner.low)
    assert parent.data.metrics["confirm/winner_ci_high"] == pytest.approx(winner.high)
    assert parent.data.metrics["confirm/winner_test_mean"] == pytest.approx(
        confirmation.winner.test_estimate.mean
    )
    baseline = confirmation.baseline
    assert baseline is not None
    assert parent.data.metrics["confirm/baseline_mean"] == pytest.approx(
        baseline.validation_estimate.mean
    )
    table = Path(client.download_artifacts(sweep.parent_run_id, "confirmation.md")).read_text()
    assert "| config | params | seeds | diverged | validation: mean ± 95% CI |" in table
    assert all(f"- {sentence}" in table for sentence in confirmation.sentences())
    # The verdict's figures on the parent run, as columns of the view, and its description.
    assert parent.data.tags["confirm.winner"] == verdict_figure(confirmation.winner)
    assert parent.data.tags["confirm.baseline"] == verdict_figure(baseline)
    assert parent.data.tags["mlflow.note.content"] == table
    assert f"/runs/{confirmation.winner.mlflow_run_ids[0]}?workflowType=machine_learning" in table


def _confirmed_means(sweep: Sweep, split: str = "validation") -> dict[str, float]:
    """Mean validation (or test) score per confirmed config key, from the companion's
    replicates."""
    companion = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    )
    values: dict[str, list[float]] = {}
    for t in companion.get_trials(states=(TrialState.COMPLETE,)):
        if t.user_attrs["role"] == "confirmation":
            assert t.value is not None
            value = t.value if split == "validation" else t.user_attrs["test_value"]
            values.setdefault(t.user_attrs["config_key"], []).append(value)
    assert all(len(v) == SEEDS for v in values.values())
    return {key: sum(v) / len(v) for key, v in values.items()}


def test_export_reproduces_the_objective(sweep: Sweep, tmp_path: Path) -> None:
    # The winner, found here from the raw replicates: the config with the best mean.
    means = _confirmed_means(sweep)
    winner_key = min((k for k in means if k != "baseline"), key=lambda k: means[k])
    number = int(winner_key.split("-")[1])
    raw = optuna.load_study(study_name=sweep.name, storage=sweep.target.storage_url)
    winner = raw.trials[number]
    assert winner.state == TrialState.COMPLETE and winner.value is not None

    study = load_study(sweep.name, sweep.target.storage_url)
    path = tmp_path / "best.yaml"
    write_export(export_best(as_record(study), "trainer", filename=str(path)), path)
    text = path.read_text()
    assert text.startswith(f"# salsweep: confirmed winner of study '{sweep.name}'")
    assert f"# trial: {number}\n" in text
    assert f"# objective: {METRIC} = {winner.value:.6g} (minimize, best epoch;" in text
    # The header agrees with the stored replicates: validation chose, test reports.
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None and confirmation.winner is not None
    confirmed, baseline = confirmation.winner, confirmation.baseline
    assert baseline is not None
    assert confirmed.validation_estimate.mean == pytest.approx(means[winner_key])
    assert confirmed.test_estimate.mean == pytest.approx(
        _confirmed_means(sweep, "test")[winner_key]
    )
    assert baseline.validation_estimate.mean == pytest.approx(means["baseline"])
    shown = format_estimate(confirmed.validation_estimate)
    assert f"# winner: trial {number}: {METRIC} = {shown} (mean ± 95% CI, validation)" in text
    assert f"over {SEEDS} seeds (training seeds 1-3, data seeds 1-3; paired" in text
    shown = format_estimate(confirmed.test_estimate)
    assert f"; test/abs_rel_align = {shown} (test split, reported only)" in text
    shown = format_estimate(baseline.validation_estimate)
    assert f"# baseline: sparse-ssi: {METRIC} = {shown} over {SEEDS} seeds" in text
    verdicts = [line[11:] for line in text.splitlines() if line.startswith("# verdict: ")]
    assert verdicts == confirmation.sentences()
    # The run's page in the training layout, on the server the sweep logged to, as every
    # MLflow address salsweep prints.
    run_id = winner.user_attrs["mlflow_run_id"]
    page = run_page_url(sweep.target.tracking_uri, sweep.experiment_id, run_id)
    assert "workflowType=machine_learning" in page
    assert f"# mlflow run: {run_id} (experiment {sweep.experiment_id}) at {page}\n" in text
    # The sweep's own export, logged on its parent run, says the same.
    logged = MlflowClient(sweep.target.tracking_uri).download_artifacts(
        sweep.parent_run_id, "best_config.yaml", str(tmp_path / "logged")
    )
    assert f"# mlflow run: {run_id} (experiment {sweep.experiment_id}) at {page}\n" in (
        Path(logged).read_text()
    )
    assert f"# reproduce: salsweep train {path}\n" in text

    # The file holds the winner's params over tiny_spec's base, typed out here.
    doc = yaml.safe_load(text)
    assert doc["loss"]["lambda_sg"] == winner.params["loss.lambda_sg"]
    assert doc["loss"]["num_scales"] == winner.params["loss.num_scales"]
    assert doc["loss"]["use_inv_depth"] is winner.params["loss.use_inv_depth"]
    assert doc["loss"]["method"] == "sparse-scale-adaptive"
    assert {k: doc["data"][k] for k in ("height", "width", "num_train", "num_val")} == {
        "height": 32,
        "width": 64,
        "num_train": 16,
        "num_val": 4,
    }
    assert (doc["model"]["base_channels"], doc["model"]["num_stages"]) == (4, 2)
    assert (doc["epochs"], doc["steps_per_epoch"], doc["batch_size"]) == (2, 2, 2)
    assert (doc["seed"], doc["device"], doc["output_dir"]) == (0, "cpu", None)

    # Trained again, it scores what Optuna recorded for the trial (best epoch, by hand).
    result = fit(load_train_config(path))
    refit = min(epoch[METRIC] for epoch in result.history)
    assert refit == pytest.approx(winner.value, rel=1e-6, abs=1e-9)
    assert [e[METRIC] for e in result.history] == pytest.approx(
        [winner.intermediate_values[1], winner.intermediate_values[2]], rel=1e-6, abs=1e-9
    )


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
    assert "supervised_method: salsweep-sparse-scale-adaptive" in text
    assert "lambda_sg:" in text


def _table_rows(output: str) -> list[list[str]]:
    """The cells of a rich table's body rows (lines framed by │)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.strip().startswith("│")
    ]


def test_studies_show_and_list(sweep: Sweep) -> None:
    runner = CliRunner()
    shown = runner.invoke(
        cli, ["studies", "show", sweep.name, "--storage", sweep.target.storage_url]
    )
    assert shown.exit_code == 0, shown.output
    trials = optuna.load_study(study_name=sweep.name, storage=sweep.target.storage_url).trials
    companion = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    )
    baseline = companion.trials[0]
    assert baseline.user_attrs["role"] == "search-baseline" and baseline.value is not None
    rows = _table_rows(shown.output.split("confirmation: ", 1)[0])
    # trial, state, params, value, duration, MLflow run: the baseline's search run, then
    # the trials in order, each value as Optuna stores it (5 significant digits).
    assert [(r[0], r[1], r[3], r[5]) for r in rows] == [
        ("baseline", "COMPLETE", f"{baseline.value:.5g}", baseline.user_attrs["mlflow_run_id"])
    ] + [
        (str(t.number), "COMPLETE", f"{t.value:.5g}", t.user_attrs["mlflow_run_id"]) for t in trials
    ]
    assert rows[0][2] == "method=sparse-ssi"
    for row, t in zip(rows[1:], trials, strict=True):
        assert row[2] == (
            f"lambda_sg={t.params['loss.lambda_sg']:.4g}, "
            f"num_scales={t.params['loss.num_scales']}, "
            f"use_inv_depth={t.params['loss.use_inv_depth']}"
        )
    printed = " ".join(shown.output.split())
    assert f"confirmation: sequential race on {METRIC} (validation chose;" in printed
    assert "baseline (sparse-ssi)" in shown.output and "(winner)" in shown.output
    means = _confirmed_means(sweep)
    winner = min((k for k in means if k != "baseline"), key=lambda k: means[k])
    assert f"Winner: trial {winner.split('-')[1]}, {METRIC} " in printed
    confirmation = load_confirmation(as_record(load_study(sweep.name, sweep.target.storage_url)))
    assert confirmation is not None
    # The verdict, sentence by sentence: test, seeds, Holm, intervals, split.
    for sentence in confirmation.sentences():
        assert " ".join(sentence.split()) in printed
    assert "Against the baseline, baseline (sparse-ssi): " in printed
    assert "Against the runner-up, trial " in printed and f"{SEEDS} paired seeds" in printed

    listed = runner.invoke(cli, ["studies", "list", "--storage", sweep.target.storage_url])
    assert listed.exit_code == 0, listed.output
    # The companion study is listed right after its study, with no best of its own (issue
    # 20: it is a first-class name); the study's own row below is unchanged.
    names = [r[0] for r in _table_rows(listed.output)]
    assert names[names.index(sweep.name) + 1] == f"{sweep.name}:confirm"
    assert [r[6 - 1] for r in _table_rows(listed.output) if r[0] == f"{sweep.name}:confirm"] == [
        "-"
    ]
    best = min(t.value for t in trials if t.value is not None)
    mine = [r for r in _table_rows(listed.output) if r[0] == sweep.name]
    # study, trials, complete, pruned, failed, best (the baseline is no trial of it)
    assert [r[:6] for r in mine] == [
        [sweep.name, str(N_TRIALS), str(N_TRIALS), "0", "0", f"{best:.5g}"]
    ]


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
    assert "confirmation: sequential race on val/abs_rel_align" in " ".join(result.output.split())
    after = optuna.load_study(
        study_name=companion_name(sweep.name), storage=sweep.target.storage_url
    ).get_trials()
    assert [t.number for t in after] == [t.number for t in before]
    parent = MlflowClient(mlflow_server.url).get_run(sweep.parent_run_id)
    assert parent.info.status == "FINISHED"


def test_a_pruned_trials_run_ends_finished_and_says_pruned(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    """A real ThresholdPruner prunes every trial whose first epoch is above 0. Its run
    ends FINISHED (MLflow's UI draws KILLED as it draws FAILED, in red), tagged PRUNED and
    described as pruned on purpose."""
    spec = tiny_spec("pruned", n_trials=1, baseline=False)
    tracker = Tracker(mlflow_server.url)
    experiment = tracker.client.ensure_experiment("pruned")
    parent = tracker.client.find_or_create_parent(experiment, "pruned", {}, "x: 1\n")
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'o.db'}",
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),
    )
    objective = Objective(
        SweepRuns(spec, tracker, experiment, parent, "pruned"), tmp_path / "trials"
    )
    study.optimize(objective, n_trials=1)
    trial = study.get_trials()[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    run = MlflowClient(mlflow_server.url).get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["optuna.state"] == "PRUNED"
    assert run.data.tags["mlflow.note.content"] == PRUNED_NOTE
    assert "not a failure" in PRUNED_NOTE.lower()
    assert "optuna.value" not in run.data.metrics


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

    def tracking_wait(self, runs: int, seconds: float) -> None:
        pass


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


class _StopAsTrialEnds(_InterruptAt):
    """Observer that sends SIGTERM to this process as trial ``trial`` ends: after its run's
    end is journalled, before Optuna has stored the trial (the window of a real stop)."""

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None:
        super().trial_finished(number, state, value, reason)
        if number == self.trial:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler would run here, were the stop not held


@pytest.mark.usefixtures("stop_handlers")
def test_a_stop_as_a_trial_ends_keeps_the_trial_and_its_run_complete(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    from studies.run.signals import Terminated

    target = SweepTarget(f"sqlite:///{tmp_path / 'optuna.db'}", mlflow_server.url, tmp_path)
    spec = tiny_spec("stop-at-end", n_trials=3, baseline=False)
    observer = _StopAsTrialEnds(1)
    with pytest.raises(Terminated):
        run_sweep(spec, "stop-at-end", target, observer=observer)
    # Stopped once trial 1 was stored: COMPLETE, as its run; no trial 2 began.
    assert observer.finished == [(0, "COMPLETE", None), (1, "COMPLETE", None)]
    study = load_study("stop-at-end", target.storage_url)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    client = MlflowClient(mlflow_server.url)
    runs = {t.number: client.get_run(t.user_attrs["mlflow_run_id"]) for t in study.get_trials()}
    assert {n: r.info.status for n, r in runs.items()} == {0: "FINISHED", 1: "FINISHED"}
    assert runs[1].data.metrics["optuna.value"] == pytest.approx(study.trials[1].value)
    assert client.get_run(study.user_attrs["mlflow_parent_run_id"]).info.status == "KILLED"


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


def test_ctrl_c_exits_130_and_resume_keeps_the_launch_budget(
    mlflow_server: ServerInfo, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    """A real SIGINT to a running `salsweep sweep launch --n-trials 3` (a child process) of a
    spec whose budget is 4, then `salsweep sweep resume` (in-process): up to 3, the launch's
    budget, not the spec's 4; `sweep resume --n-trials 4` then sets a new budget."""
    import os
    import signal
    import subprocess
    import threading

    data = tiny_spec("ctrlc", n_trials=4).model_dump(mode="json")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    home = tmp_path / "home"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SALSWEEP_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
    }
    proc = salsweep_process.popen(
        *("sweep", "launch", str(spec), "--n-trials", "3"),
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
    # The read below has no timeout of its own: a sweep that never prints "trial 1:" is
    # killed, which closes its output and ends the loop.
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:  # wait until trial 1 has started, then press Ctrl-C
            seen.append(line)
            if line.startswith("trial 1:"):
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.communicate(timeout=120)[0]
    finally:
        watchdog.cancel()
        if proc.poll() is None:  # never leave a sweep running behind a failed test
            proc.kill()
            proc.wait(timeout=30)
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert "Traceback" not in output

    storage = f"sqlite:///{home / 'optuna.db'}"
    study = load_study("ctrlc", storage)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.user_attrs["n_trials"] == 3

    again = ["--storage", storage, "--tracking-uri", mlflow_server.url, "--home", str(home)]
    resumed = CliRunner().invoke(cli, ["sweep", "resume", "ctrlc", *again])
    assert resumed.exit_code == 0, resumed.output
    states = [t.state for t in load_study("ctrlc", storage).get_trials()]
    assert states == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]

    # resume --n-trials: a new budget of 4 complete trials, kept by the next resume.
    more = CliRunner().invoke(cli, ["sweep", "resume", "ctrlc", "--n-trials", "4", *again])
    assert more.exit_code == 0, more.output
    study = load_study("ctrlc", storage)
    assert [t.state for t in study.get_trials()].count(TrialState.COMPLETE) == 4
    assert len(study.trials) == 5 and study.user_attrs["n_trials"] == 4
    # The address is printed whole on its lines (at the start and the end), never wrapped.
    whole = (
        r"^MLflow runs: http://\S+workflowType=machine_learning&viewStateShareKey=salsweep-sweep$"
    )
    assert len(re.findall(whole, more.output, flags=re.M)) == 2, more.output
    rows = _table_rows(more.output.split("unconfirmed:", 1)[0])
    assert [(r[0], r[1]) for r in rows] == [
        ("baseline", "COMPLETE"),
        ("0", "COMPLETE"),
        ("1", "FAIL"),
        ("2", "COMPLETE"),
        ("3", "COMPLETE"),
        ("4", "COMPLETE"),
    ]
    plain = CliRunner().invoke(cli, ["sweep", "resume", "ctrlc", *again])
    assert plain.exit_code == 0, plain.output
    assert len(load_study("ctrlc", storage).trials) == 5  # nothing left to run


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
    spec = tiny_spec("confirm-resume", n_trials=3, confirm=ONE_ROUND)
    observer = _InterruptReplicate(2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, "confirm-resume", target, observer=observer)
    search = _search_snapshot(target.storage_url, "confirm-resume")
    assert [t[1] for t in search] == [TrialState.COMPLETE] * 3
    companion = optuna.load_study(study_name="confirm-resume:confirm", storage=target.storage_url)
    states = [t.state for t in companion.get_trials()]
    # the baseline's search run, replicate 1 done, replicate 2 interrupted, 4 still queued
    assert states == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
        *[TrialState.WAITING] * 4,
    ]
    client = MlflowClient(mlflow_server.url)
    found = client.get_experiment_by_name("confirm-resume")
    assert found is not None
    experiment = found.experiment_id
    interrupted = client.get_run(companion.get_trials()[2].user_attrs["mlflow_run_id"])
    assert interrupted.info.status == "FAILED"
    assert interrupted.data.tags["optuna.state"] == "FAIL"
    stopped = load_confirmation(as_record(load_study("confirm-resume", target.storage_url)))
    assert stopped is not None and not stopped.state.done and stopped.winner is None

    outcome = confirm_sweep("confirm-resume", target)
    assert outcome.replicates == 5  # the interrupted one again and the four queued
    assert _search_snapshot(target.storage_url, "confirm-resume") == search
    done = [
        t
        for t in companion.get_trials(states=(TrialState.COMPLETE,))
        if t.user_attrs["role"] == "confirmation"
    ]
    jobs = sorted((t.user_attrs["config_key"], t.user_attrs["seed"]) for t in done)
    best = min(
        load_study("confirm-resume", target.storage_url).trials, key=lambda t: float(t.value or 0)
    )
    assert jobs == sorted(
        (key, seed) for key in ("baseline", f"trial-{best.number}") for seed in (1, 2, 3)
    )
    runs = _confirmation_runs(client, experiment)
    assert sorted(r.info.status for r in runs) == ["FAILED"] + ["FINISHED"] * 6
    assert sorted(r.info.run_name for r in runs if r.info.status == "FINISHED") == sorted(
        f"confirm-{key}-seed{seed}" for key, seed in jobs
    )

    # A second call adds nothing; another design (a larger top-k) is refused: the race's
    # design is fixed when it starts, and nothing runs.
    assert confirm_sweep("confirm-resume", target).replicates == 0
    with pytest.raises(ConfirmError, match="design is fixed before the first replicate"):
        confirm_sweep("confirm-resume", target, top_k=2)
    assert len(_confirmation_runs(client, experiment)) == 1 + 6
    assert _search_snapshot(target.storage_url, "confirm-resume") == search
    confirmation = load_confirmation(as_record(load_study("confirm-resume", target.storage_url)))
    assert confirmation is not None and confirmation.state.done
    assert len(confirmation.configs) == 2
    assert all(c.seeds == 3 for c in confirmation.configs)


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


def fast_spec(name: str, **extra: Any) -> SweepSpec:
    """`tiny_spec` without preview images (the slowest part of a tiny trial)."""
    data = tiny_spec(name, **extra).model_dump(mode="json")
    data["base"]["previews"] = False
    return parse_spec(data, "test")


class _Record:
    """Observer that records how each search trial ended; ``current``: the running one."""

    def __init__(self) -> None:
        self.current = -1
        self.finished: list[tuple[int, str, str | None]] = []

    def sweep_started(self, ui_url: str) -> None:
        pass

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None:
        self.current = number

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None:
        self.finished.append((number, state, reason))

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None:
        pass

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def run_finished(self, label: str, state: str, value: float | None, reason: str | None) -> None:
        pass

    def tracking_wait(self, runs: int, seconds: float) -> None:
        pass


@contextlib.contextmanager
def _diverging(when: Callable[[], bool]) -> Iterator[None]:
    """A real forward hook on every module: while ``when()``, the network's training
    output becomes NaN, so the trainer raises NonFiniteLoss at that step."""
    import torch

    def poison(module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> object:
        if type(module).__name__ == "DepthNet" and module.training and when():
            return output * math.nan
        return None

    # torch types the hook as returning None, but a forward hook may return a new output.
    handle = torch.nn.modules.module.register_module_forward_hook(poison)  # type: ignore[arg-type]
    try:
        yield
    finally:
        handle.remove()


NON_FINITE = "non-finite training loss (nan) at epoch 1, step 1"


def test_failed_trial_does_not_use_the_budget(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """Trial 1 diverges: FAIL in Optuna, FAILED in MLflow, and a 4th trial makes the 3
    complete trials of the budget."""
    target = SweepTarget(f"sqlite:///{tmp_path / 'optuna.db'}", mlflow_server.url, tmp_path)
    spec = fast_spec("diverge", n_trials=3, baseline=False)
    observer = _Record()
    with _diverging(lambda: observer.current == 1):
        outcome = run_sweep(spec, "diverge", target, observer=observer)
    assert [(n, state) for n, state, _ in observer.finished] == [
        (0, "COMPLETE"),
        (1, "FAIL"),
        (2, "COMPLETE"),
        (3, "COMPLETE"),
    ]
    assert observer.finished[1][2] is not None and observer.finished[1][2].startswith(NON_FINITE)
    assert outcome.ran == 4
    trials = optuna.load_study(study_name="diverge", storage=target.storage_url).trials
    states = [t.state for t in trials]
    complete, fail = TrialState.COMPLETE, TrialState.FAIL
    assert states == [complete, fail, complete, complete]
    assert states.count(TrialState.COMPLETE) == spec.budget.n_trials
    assert trials[1].user_attrs["fail_reason"].startswith(NON_FINITE)
    assert trials[1].intermediate_values == {}
    client = MlflowClient(mlflow_server.url)
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        failed = trial.state == TrialState.FAIL
        assert run.info.status == ("FAILED" if failed else "FINISHED")
        assert run.data.tags["optuna.state"] == trial.state.name
        assert ("optuna.value" in run.data.metrics) is not failed
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"


def test_a_sweep_that_always_diverges_stops(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """Every trial diverges: after as many failures in a row as the budget (2), the sweep
    stops with one line and exit 1 instead of starting trials forever."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(fast_spec("nan", n_trials=4, baseline=False).model_dump(mode="json"))
    )
    home = tmp_path / "home"
    args = ["sweep", "launch", str(spec), "--n-trials", "2", "--home", str(home)]
    with _diverging(lambda: True):
        result = CliRunner().invoke(cli, [*args, "--tracking-uri", mlflow_server.url])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: study 'nan' stopped: 2 trials in a row failed, the last with a {NON_FINITE}: "
        "lower the learning rate or check the ground truth; narrow the search space, then "
        "`salsweep sweep resume nan`"
    ]
    study = optuna.load_study(study_name="nan", storage=f"sqlite:///{home / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    client = MlflowClient(mlflow_server.url)
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert parent.info.status == "KILLED"
    for trial in study.trials:
        assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "FAILED"


class _SlowStart(_Record):
    """Each trial starts ``seconds`` late (a slow trial, without a slower training run)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None:
        super().trial_started(number, params, epochs)
        time.sleep(self.seconds)


def test_budget_timeout_ends_each_launch(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """budget.timeout 0.5 s: the first trial (longer than that) is the launch's only one;
    a resume has its own 0.5 s and runs one more; the confirmation still runs."""
    target = SweepTarget(f"sqlite:///{tmp_path / 'optuna.db'}", mlflow_server.url, tmp_path)
    spec = fast_spec(
        "timeout",
        baseline=False,
        budget={"n_trials": 3, "timeout": 0.5},
        confirm=ONE_ROUND,
    )
    first = run_sweep(spec, "timeout", target, observer=_SlowStart(0.6))
    assert (first.ran, first.replicates, first.confirmation_skipped) == (1, 3, None)
    second = run_sweep(spec, "timeout", target, observer=_SlowStart(0.6), create=False)
    assert second.ran == 1
    study = optuna.load_study(study_name="timeout", storage=target.storage_url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


@pytest.mark.parametrize(
    "command",
    [
        ["sweep", "launch", str(SPEC_DIR / "default.yaml"), "--study-name", "../../evil"],
        ["sweep", "resume", "../../evil"],
        ["studies", "show", "../../evil"],
        ["studies", "export", "../../evil", "-o", "best.yaml"],
        ["studies", "confirm", "../../evil"],
    ],
    ids=["launch", "resume", "show", "export", "confirm"],
)
def test_study_name_cannot_escape_the_data_dir(
    mlflow_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """A study name that is a path: one line, exit 1, nothing written outside the data
    dir (`X/home/studies/../../evil` would be `X/evil`)."""
    x = tmp_path / "X"
    x.mkdir()
    home = x / "home"
    args = [*command, "--home", str(home)]
    if command[1] != "show" and command[1] != "export":
        args += ["--tracking-uri", mlflow_server.url]
    monkeypatch.chdir(x)  # the export's -o best.yaml would land in X
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # One line says what is wrong (the launch's progress bar may be drawn before it).
    errors = [line for line in result.output.splitlines() if "evil" in line]
    assert len(errors) == 1 and errors[0].startswith("Error: ")
    assert "'../../evil'" in errors[0]
    assert not (x / "evil").exists() and not (tmp_path / "evil").exists()
    assert [p.name for p in x.iterdir()] in ([], ["home"])
    assert not (home / "studies").exists()
    if command[1] == "launch":  # refused before anything is created, the data dir too
        assert errors[0].startswith("Error: invalid study name '../../evil': use letters")
        assert not home.exists()
    assert MlflowClient(mlflow_server.url).get_experiment_by_name("../../evil") is None


HANG = """
import sys, time
from pathlib import Path
import optuna, sqlalchemy, yaml
from studies.run.search_space import suggest_config
from studies.store.storage import open_storage
from sweeps import parse_spec
spec = parse_spec(yaml.safe_load(Path(sys.argv[1]).read_text()), "spec")
storage = open_storage(sys.argv[2], heartbeat_interval=1)
study = optuna.load_study(study_name=spec.name, storage=storage)
beats = sqlalchemy.text("SELECT COUNT(*) FROM trial_heartbeats WHERE trial_id = :id")
def hang(trial):
    suggest_config(trial, spec)  # the objective's params (a retried trial keeps them)
    # Only a trial with a heartbeat can go stale: killed before its first one, it would
    # stay RUNNING (Optuna's rule). Wait for the heartbeat thread's first write.
    for _ in range(600):
        with storage.engine.connect() as db:
            if db.execute(beats, {"id": trial._trial_id}).scalar():
                break
        time.sleep(0.1)
    print("running", trial.number, flush=True)
    time.sleep(300)
study.optimize(hang, n_trials=1)
"""


def _die_in_a_trial(spec_file: Path, storage: str) -> int:
    """Run a worker (Optuna heartbeats every 1 s) until its trial runs, then SIGKILL it;
    returns the number of the trial it left RUNNING."""
    import signal
    import subprocess
    import sys

    worker = subprocess.Popen(
        [sys.executable, "-c", HANG, str(spec_file), storage],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert worker.stdout is not None
    watchdog = threading.Timer(120, worker.kill)  # bounds the read below
    watchdog.start()
    try:
        line = worker.stdout.readline()
    finally:
        watchdog.cancel()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert line.startswith("running "), line + worker.stdout.read()
    # Past the grace period (2 heartbeats); SQLite's clock ticks in whole seconds.
    time.sleep(3.2)
    return int(line.split()[1])


def test_second_death_of_a_trial_is_not_retried(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """Trial 0's worker dies: Optuna re-queues it once (trial 1, same params). Trial 1's
    worker dies too: max_retry (1) is used up, so the next sweep fails it and samples a
    fresh trial 2 instead of retrying forever."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    spec = fast_spec("twice", n_trials=1, baseline=False)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    optuna.create_study(study_name="twice", storage=storage)
    assert _die_in_a_trial(spec_file, storage) == 0
    # The second worker fails the stale trial 0 and runs its retry, trial 1; and dies.
    assert _die_in_a_trial(spec_file, storage) == 1
    trials = optuna.load_study(study_name="twice", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING]
    assert trials[1].system_attrs["failed_trial"] == 0
    assert trials[1].params == trials[0].params

    target = SweepTarget(storage, mlflow_server.url, tmp_path, heartbeat_interval=1)
    outcome = run_sweep(spec, "twice", target, create=False)
    trials = optuna.load_study(study_name="twice", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert outcome.ran == 1
    fresh = trials[2]
    assert "failed_trial" not in fresh.system_attrs  # sampled, not a retry of trial 1
    assert fresh.user_attrs["mlflow_run_id"]
    run = MlflowClient(mlflow_server.url).get_run(fresh.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED"


# The SQL statements a sweep's close sends to its Optuna storage (docs/BENCHMARKS.md, "A
# study read once at a sweep's close": 78 before the study was read once, 3 study loads).
CLOSE_STATEMENTS = 14


def test_the_close_reads_the_study_once(sweep: Sweep) -> None:
    """From the end of the confirmation to the outcome: the study and its companion read
    once (a handful of SELECTs each), nothing written (no late run id to record here)."""
    statements = [" ".join(s.split()) for s in sweep.close_statements]
    assert all(s.upper().startswith(("SELECT", "PRAGMA", "BEGIN")) for s in statements), statements
    trial_reads = [
        s for s in statements if s.upper().startswith("SELECT") and " FROM TRIALS" in s.upper()
    ]
    assert len(trial_reads) == 2, trial_reads  # the study's and its companion's trials
    assert len(statements) == CLOSE_STATEMENTS, statements
