"""Command trials as a kind of trial for `studies.run.runner.run_trial`: the user's own
training program runs as a subprocess (studies.command), its metrics come back as it
reports them (each one logged on the trial's run, unless the program logs to the run
itself, and handed to the trial: Optuna's report and pruning), and its end becomes the
trial's: the objective's value, a pruned trial, or a failure whose reason holds the last
lines of the program's standard error. The run's ``config.yaml`` is the config the program
reads (the trial's copy of the base config), and the program's standard output and error
(``stdout.log``, ``stderr.log`` in the trial's folder) become artifacts of the run as the
trial ends, however it ends. salsweep closes the run itself afterwards, whatever the
program did to it (MLflow's exit hook marks a resumed run FINISHED, even when the trial
was pruned).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
import yaml

from studies.command import TrackingTarget, TrialInputs, TrialStatus, run_trial
from studies.command.metrics import MetricPoint
from studies.command.prepare import STDERR_FILE, STDOUT_FILE, config_text
from studies.run.runner import EpochCallback, RunEnding, SweepRuns
from studies.tracking import Client, ParamValue, RunLog, TrackingError, flatten_params
from sweeps.command import CommandSpec
from trainer.errors import UserError

__all__ = ["CommandFailed", "command_params", "command_train"]


class CommandFailed(UserError, RuntimeError):
    """A command trial failed: its program exited non-zero, exited without reporting the
    objective's metric, or ran past its time limit. The message says why, with the last
    lines of its standard error."""


def command_params(
    command: CommandSpec, values: Mapping[str, Any], seed: int
) -> tuple[dict[str, ParamValue], str]:
    """(MLflow params, config.yaml) of a command trial. Params: its values and training
    seed. config.yaml: the config the program reads, the trial's copy of
    ``command.base_config`` (the same text as the copy at {config}); without a base
    config, the values and the seed."""
    shown = {**values, "seed": seed}
    text = config_text(command, values, seed)
    if text is None:
        text = yaml.safe_dump(shown, sort_keys=False)
    return flatten_params(shown), text


def _mlflow_poll(client: Client, run_id: str) -> Iterable[MetricPoint]:
    """The run's metric points; none while the server does not answer (the program goes
    on, and the next poll reads them)."""
    try:
        points = client.metric_points(run_id)
    except TrackingError:
        return []
    return [MetricPoint(k, step, value) for k, step, value in points]


def _log_output(run: RunLog, out_dir: Path, *, quiet: bool) -> None:
    """The program's standard output and error (in its folder) as artifacts of the run.
    ``quiet``: an exception is on its way (e.g. Ctrl-C), which a full disk must not hide."""
    with contextlib.suppress(OSError) if quiet else contextlib.nullcontext():
        for name in (STDOUT_FILE, STDERR_FILE):
            path = out_dir / name
            if path.is_file():
                run.log_file(path)


def command_train(
    runs: SweepRuns,
    number: int,
    values: Mapping[str, Any],
    seed: int,
    out_dir: Path,
    score: Any,
) -> Any:
    """``train`` of a command trial's `TrialPlan`: runs the spec's command for trial
    ``number`` with ``values`` (searched and fixed) and training ``seed`` in ``out_dir``;
    ``score(history)`` turns the reports of the objective metric (one dict per report, with
    the report's other metrics) into the trial's value."""
    command = runs.spec.command
    assert command is not None, "a command trial of a spec without a command"
    metric = runs.spec.objective.metric

    def train(on_epoch_end: EpochCallback, run: RunLog, _ending: RunEnding) -> float:
        tracking = None
        if run.run_id is not None:
            uri = runs.tracker.tracking_uri
            tracking = TrackingTarget(uri, runs.experiment_id, run.run_id)
        inputs = TrialInputs(
            number=number,
            values=dict(values),
            seed=seed,
            trial_dir=out_dir,
            tracking=tracking,
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
        pruned: list[optuna.TrialPruned] = []

        def on_metrics(step: int, metrics: Mapping[str, float]) -> bool:
            try:
                on_epoch_end(step, {k: float(v) for k, v in metrics.items()})
            except optuna.TrialPruned as exc:
                pruned.append(exc)
                return True  # stop the program: stop file, SIGTERM, SIGKILL
            return False

        poll = None
        if command.metrics == "mlflow":
            if run.run_id is None:
                raise CommandFailed(
                    f"{command.program()}: not started: metrics: mlflow needs the trial's "
                    "MLflow run, which the tracking server did not create in time"
                )
            client, run_id = runs.tracker.client, run.run_id

            def poll() -> Iterable[MetricPoint]:
                return _mlflow_poll(client, run_id)

        try:
            result = run_trial(
                command, inputs, objective=metric, on_metrics=on_metrics, mlflow_poll=poll
            )
        except BaseException:
            _log_output(run, out_dir, quiet=True)
            raise
        _log_output(run, out_dir, quiet=False)
        if result.status == TrialStatus.PRUNED:
            raise pruned[0] if pruned else optuna.TrialPruned(result.reason)
        if result.status != TrialStatus.COMPLETED:
            raise CommandFailed(f"{command.program()}: {result.reason}")
        # Each report that has the objective, with the rest of its metrics (a confirmation
        # replicate takes the test split's counterpart from the selected report).
        history = [
            {k: float(v) for k, v in r.metrics.items()}
            for r in result.reports
            if metric in r.metrics
        ]
        try:
            return float(score(history))
        except ValueError as exc:
            raise CommandFailed(f"{command.program()}: {exc}") from None

    return train
