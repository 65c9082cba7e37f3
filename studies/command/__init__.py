"""Command trials: the user's own training program as a sweep's trial.

- `studies.command.reporter` (standard library only): what the program calls,
  ``report(step, **metrics)`` and ``should_stop()``.
- `studies.command.inputs`: the trial's inputs as values (config copy, ``--key=value``
  arguments, JSON document, argv, environment); pure functions.
- `studies.command.prepare`: writes them into the trial folder (`prepare_trial` ->
  `LaunchPlan`).
- `studies.command.metrics`: readers of the metrics (JSON-lines file, stdout pattern,
  MLflow history).
- `studies.command.procs`: the trial's process group, stopped with SIGTERM then SIGKILL.
- `studies.command.runner`: `run_command` runs one trial to its end (`CommandResult`).
- `studies.command.trial`: `run_trial`, the one call a runner makes per trial.

Names load on first use (PEP 562), so that ``import studies.command.reporter`` in a
user's program loads nothing but the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies.command.inputs import TrackingTarget
    from studies.command.metrics import MetricPoint, MetricReport
    from studies.command.prepare import LaunchPlan, TrialInputs, prepare_trial
    from studies.command.procs import StopOutcome
    from studies.command.runner import (
        CommandResult,
        FileSource,
        MetricsCallback,
        MetricSource,
        MetricsPoll,
        MlflowSource,
        StdoutSource,
        TrialStatus,
        run_command,
    )
    from studies.command.trial import metric_source, run_trial

_NAMES: dict[str, str] = {
    "CommandResult": "studies.command.runner",
    "FileSource": "studies.command.runner",
    "LaunchPlan": "studies.command.prepare",
    "MetricPoint": "studies.command.metrics",
    "MetricReport": "studies.command.metrics",
    "MetricSource": "studies.command.runner",
    "MetricsCallback": "studies.command.runner",
    "MetricsPoll": "studies.command.runner",
    "MlflowSource": "studies.command.runner",
    "StdoutSource": "studies.command.runner",
    "StopOutcome": "studies.command.procs",
    "TrackingTarget": "studies.command.inputs",
    "TrialInputs": "studies.command.prepare",
    "TrialStatus": "studies.command.runner",
    "metric_source": "studies.command.trial",
    "prepare_trial": "studies.command.prepare",
    "run_command": "studies.command.runner",
    "run_trial": "studies.command.trial",
}

__all__ = [
    "CommandResult",
    "FileSource",
    "LaunchPlan",
    "MetricPoint",
    "MetricReport",
    "MetricSource",
    "MetricsCallback",
    "MetricsPoll",
    "MlflowSource",
    "StdoutSource",
    "StopOutcome",
    "TrackingTarget",
    "TrialInputs",
    "TrialStatus",
    "metric_source",
    "prepare_trial",
    "run_command",
    "run_trial",
]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'studies.command' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
