"""Command trials: the user's own training program as a sweep's trial.

- `studies.command.reporter` (standard library only): what the program calls,
  ``report(step, **metrics)`` and ``should_stop()``.
- `studies.command.inputs`: the trial's inputs as values (config copy, ``--key=value``
  arguments, JSON document, argv, environment); pure functions.
- `studies.command.prepare`: writes them into the trial folder (`prepare_trial` ->
  `LaunchPlan`).
- `studies.command.metrics`: readers of the metrics (JSON-lines file, stdout pattern,
  MLflow history).
- `studies.procs`: the trial's process group, stopped with SIGTERM then SIGKILL.
- `studies.command.runner`: `run_command` runs one trial to its end (`CommandResult`).
- `studies.command.trial`: `run_trial`, the one call a runner makes per trial.

Names load on first use (PEP 562), so that ``import studies.command.reporter`` in a
user's program loads nothing but the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.command.inputs import (
        TrackingTarget,
    )
    from studies.command.metrics import (
        MetricPoint,
        MetricReport,
    )
    from studies.command.prepare import (
        LaunchPlan,
        TrialInputs,
        prepare_trial,
    )
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
    from studies.command.trial import (
        metric_source,
        run_trial,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.command.inputs": ("TrackingTarget",),
        "studies.command.metrics": (
            "MetricPoint",
            "MetricReport",
        ),
        "studies.command.prepare": (
            "LaunchPlan",
            "TrialInputs",
            "prepare_trial",
        ),
        "studies.command.runner": (
            "CommandResult",
            "FileSource",
            "MetricSource",
            "MetricsCallback",
            "MetricsPoll",
            "MlflowSource",
            "StdoutSource",
            "TrialStatus",
            "run_command",
        ),
        "studies.command.trial": (
            "metric_source",
            "run_trial",
        ),
    },
)
