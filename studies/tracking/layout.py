"""What salsweep's runs look like in MLflow: names, tags, statuses, limits, parameter
flattening (DESIGN.md, "Tracking layout"). Imports nothing heavy: the client, the courier
and the run logging all spell the layout from here.

Layout: experiment = study name; a parent run ``sweep`` holding the spec as params and
``sweep.yaml``; one child run ``trial-<n>`` per trial with its parameters, per-epoch
metrics (``step`` = epoch), tags ``optuna.study``, ``optuna.trial``, ``optuna.state`` and
its artifacts. Every trial's and replicate's run is labelled with its configuration
(``salsweep.label``: ``trial 3``, ``baseline (ssi)``); a confirmation replicate holds the
score the verdict uses (``confirm.value``); once confirmed, the parent run holds the
verdict's figures (``confirm.winner``, ``confirm.runner_up``, ``confirm.baseline``) and
the confirmation as its description.
"""

from __future__ import annotations

import json
import time
from typing import Literal

from loss.names import SCALE_ADAPTIVE_PARAMS, SSI_PARAMS, check_method, method_params
from studies.attrs import config_label, trial_key
from trainer.errors import UserError

__all__ = [
    "BASELINE_TAG",
    "CHILD_STATUS",
    "CLIENT_ENV_DEFAULTS",
    "CONFIRM_TEST_METRIC",
    "CONFIRM_VALUE_METRIC",
    "LABEL_TAG",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "METHOD_PARAM",
    "NOTE_TAG",
    "PARENT_ROLE",
    "PARENT_RUN_NAME",
    "PRUNED_NOTE",
    "ROLE_TAG",
    "RUNNER_UP_TAG",
    "SPEC_ARTIFACT",
    "STATE_TAG",
    "STUDY_TAG",
    "SWEEP_VIEW_KEY",
    "TRIAL_TAG",
    "VALUE_METRIC",
    "VERDICT_TAGS",
    "WINNER_TAG",
    "ChildState",
    "ParamValue",
    "RunEnd",
    "TrackingError",
    "child_tags",
    "end_tags",
    "flatten_params",
    "now_ms",
    "without_unused_loss_params",
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
# The configuration a run trains, readable (attrs.config_label): a column of the view that
# groups a configuration's search run and replicates.
LABEL_TAG = "salsweep.label"
# The loss method, a param of every run of the built-in trainer: a column of the view.
METHOD_PARAM = "loss.method"
# A confirmation replicate's score as the race counts it (the objective on validation at
# the selected epoch), under one name on every replicate: a column; and its test-split
# counterpart (e.g. test/abs_rel_align), reported only.
CONFIRM_VALUE_METRIC = "confirm.value"
CONFIRM_TEST_METRIC = "confirm.test_value"
# The verdict's figures on the parent run: "<label>: <mean ± CI>, <n> seeds" per role.
WINNER_TAG = "confirm.winner"
RUNNER_UP_TAG = "confirm.runner_up"
BASELINE_TAG = "confirm.baseline"
VERDICT_TAGS = (WINNER_TAG, RUNNER_UP_TAG, BASELINE_TAG)
# A run's description in the UI (Markdown): the parent run's is the confirmation.
NOTE_TAG = "mlflow.note.content"
# Loss parameters some method takes: a run logs those its own method takes (and the rest).
_LOSS_PARAMS = frozenset(SCALE_ADAPTIVE_PARAMS) | frozenset(SSI_PARAMS)
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
# Optuna's trial state -> MLflow's run status. A pruned trial's run ends FINISHED: the
# pruner stopped it on purpose, and MLflow 3's UI draws KILLED exactly as FAILED (the same
# red icon in the runs table, a red "Killed" on the run's page), so KILLED read as a
# failure. What it was says its tag ``optuna.state`` (PRUNED, a column of the sweep's view)
# and its description (PRUNED_NOTE); optuna-integration's MLflowCallback too ends every
# trial's run normally with the trial's state as a tag. KILLED stays for a parent run whose
# sweep was stopped (Ctrl-C, SIGTERM).
CHILD_STATUS: dict[ChildState, RunEnd] = {
    "COMPLETE": "FINISHED",
    "PRUNED": "FINISHED",
    "FAIL": "FAILED",
}
# A pruned trial's run description (its page, Markdown).
PRUNED_NOTE = (
    "**Pruned**: stopped early by the pruner, on purpose (its reports were worse than the "
    "other trials' at the same epoch). Not a failure: it has no objective value "
    "(`optuna.value`), and its run ends FINISHED with the tag `optuna.state` = PRUNED."
)


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


def without_unused_loss_params(params: dict[str, ParamValue]) -> dict[str, ParamValue]:
    """A run's flattened config without the ``loss.*`` parameters that its loss method
    (``loss.method``) does not take: an SSI run logs no ``loss.lambda_sg``. Parameters no
    method takes are kept, as is everything when there is no known method."""
    try:
        method = check_method(params.get(METHOD_PARAM))
    except ValueError:
        return dict(params)
    unused = {f"loss.{name}" for name in _LOSS_PARAMS - set(method_params(method))}
    return {key: value for key, value in params.items() if key not in unused}


def now_ms() -> int:
    """Now, as MLflow stamps metrics and runs: milliseconds since the epoch."""
    return int(time.time() * 1000)


class TrackingError(UserError, RuntimeError):
    """The MLflow tracking server cannot be reached or refused a request."""


def end_tags(state: str | None) -> dict[str, str]:
    """The tags a trial's (or replicate's) run gets as it ends in Optuna state ``state``:
    ``optuna.state``, and for a pruned trial the description that says what pruned means."""
    if state is None:
        return {}
    tags = {STATE_TAG: state}
    if state == "PRUNED":
        tags[NOTE_TAG] = PRUNED_NOTE
    return tags


def child_tags(parent_run_id: str, study_name: str, trial_number: int) -> dict[str, str]:
    """The tags of search trial ``trial_number``'s run."""
    return {
        "mlflow.parentRunId": parent_run_id,
        STUDY_TAG: study_name,
        TRIAL_TAG: str(trial_number),
        STATE_TAG: "RUNNING",
        LABEL_TAG: config_label(trial_key(trial_number)),
    }
