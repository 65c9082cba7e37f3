"""`run_trial`: one command trial from the spec's ``command`` section, the call a runner
makes per trial (prepare the inputs, run, return the `CommandResult`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from studies.command.prepare import TrialInputs, prepare_trial
from studies.command.runner import (
    CommandResult,
    FileSource,
    MetricsCallback,
    MetricSource,
    MetricsPoll,
    MlflowSource,
    StdoutSource,
    run_command,
)
from sweeps.command import CommandSpec

__all__ = ["metric_source", "run_trial"]


def metric_source(command: CommandSpec, mlflow_poll: MetricsPoll | None = None) -> MetricSource:
    """The reader of ``command.metrics``. ``mlflow_poll``: required for ``mlflow``: every
    point of the trial's run (e.g. ``MlflowClient.get_metric_history`` for each key of
    ``get_run(run_id).data.metrics``). Raises ``ValueError`` when it is missing."""
    if command.metrics == "stdout":
        if command.pattern is None:  # the spec checks refuse this
            raise ValueError("metrics: stdout needs command.pattern")
        return StdoutSource(command.pattern)
    if command.metrics == "mlflow":
        if mlflow_poll is None:
            raise ValueError("metrics: mlflow needs a poll of the trial's MLflow run")
        return MlflowSource(mlflow_poll, command.poll_s)
    return FileSource()


def run_trial(
    command: CommandSpec,
    inputs: TrialInputs,
    *,
    objective: str,
    on_metrics: MetricsCallback | None = None,
    stop: threading.Event | None = None,
    mlflow_poll: MetricsPoll | None = None,
    base_env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Write the trial's inputs into ``inputs.trial_dir`` and run it to its end, with the
    spec's metrics source, ``grace_s`` and ``timeout_s`` (see `run_command`)."""
    source = metric_source(command, mlflow_poll)
    plan = prepare_trial(command, inputs, base_env=base_env)
    return run_command(
        plan,
        objective=objective,
        source=source,
        on_metrics=on_metrics,
        grace_s=command.grace_s,
        timeout_s=command.timeout_s,
        stop=stop,
    )
