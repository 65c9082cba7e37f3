"""What salsweep's runs look like in MLflow: names, tags, statuses, limits, parameter
flattening (DESIGN.md, "Tracking layout"). Imports nothing heavy: the client, the courier
and the run logging all spell the layout from here.

Layout: experiment = study name; a parent run ``sweep`` holding the spec as params and
``sweep.yaml``; one child run ``trial-<n>`` per trial with its parameters, per-epoch
metrics (``step`` = epoch), tags ``optuna.study``, ``optuna.trial``, ``optuna.state`` and
its artifacts.
"""

from __future__ import annotations

import json
import time
from typing import Literal

from trainer.errors import UserError

__all__ = [
    "CHILD_STATUS",
    "CLIENT_ENV_DEFAULTS",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "PARENT_ROLE",
    "PARENT_RUN_NAME",
    "ROLE_TAG",
    "SPEC_ARTIFACT",
    "STATE_TAG",
    "STUDY_TAG",
    "SWEEP_VIEW_KEY",
    "TRIAL_TAG",
    "VALUE_METRIC",
    "ChildState",
    "ParamValue",
    "RunEnd",
    "TrackingError",
    "child_tags",
    "flatten_params",
    "now_ms",
]

PARENT_RUN_NAME = "sweep"
SPEC_ARTIFACT = "sweep.yaml"
# MLflow's per-request limits (mlflow.utils.validation).
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
# Marks the parent run, so that it is found again without parsing run names.
ROLE_TAG = "salsweep.role"
PARENT_ROLE = "sweep-parent"
STUDY_TAG = "optuna.study"
TRIAL_TAG = "optuna.trial"
STATE_TAG = "optuna.state"
# The trial's objective value, as a metric so the runs table can sort by it.
VALUE_METRIC = "optuna.value"
# The experiment's shared view of the sweep: tag mlflow.sharedViewState.<key>.
SWEEP_VIEW_KEY = "salsweep-sweep"
# The MLflow client's retries and request timeout, unless the environment sets them. The
# courier retries on its own; the client's defaults (7 retries with back-off, 120 s a
# request) kept a trial waiting 8.6 minutes on a server that was gone, and a retry of a
# request whose answer was lost repeats it (a second run created): the courier checks
# the server before it sends such a request again (studies.tracking.courier).
CLIENT_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

ParamValue = str | float | int | bool
ChildState = Literal["COMPLETE", "PRUNED", "FAIL"]
RunEnd = Literal["FINISHED", "KILLED", "FAILED"]
# Optuna's trial state -> MLflow's run status.
CHILD_STATUS: dict[ChildState, RunEnd] = {
    "COMPLETE": "FINISHED",
    "PRUNED": "KILLED",
    "FAIL": "FAILED",
}


def flatten_params(data: object, prefix: str = "") -> dict[str, ParamValue]:
    """A nested mapping as MLflow params: ``{"loss": {"lambda_sg": 0.5}}`` ->
    ``{"loss.lambda_sg": 0.5}``; lists as JSON, None as ``"null"``."""
    if isinstance(data, dict):
        flat: dict[str, ParamValue] = {}
        for key, value in data.items():
            flat.update(flatten_params(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(data, list):
        return {prefix: json.dumps(data)}
    if isinstance(data, str | int | float | bool):
        return {prefix: data}
    return {prefix: "null" if data is None else str(data)}


def now_ms() -> int:
    """Now, as MLflow stamps metrics and runs: milliseconds since the epoch."""
    return int(time.time() * 1000)


class TrackingError(UserError, RuntimeError):
    """The MLflow tracking server cannot be reached or refused a request."""


def child_tags(parent_run_id: str, study_name: str, trial_number: int) -> dict[str, str]:
    """The tags of search trial ``trial_number``'s run."""
    return {
        "mlflow.parentRunId": parent_run_id,
        STUDY_TAG: study_name,
        TRIAL_TAG: str(trial_number),
        STATE_TAG: "RUNNING",
    }
