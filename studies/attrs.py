"""The keys salsweep stores on Optuna studies and trials (``user_attrs``), and the names of
the companion study and its configuration keys, in one place.

Imports nothing: read-only commands and every module that reads or writes a study use
these names, so a key is spelled once.
"""

from __future__ import annotations

__all__ = [
    "ABOUT",
    "ALT_METRIC",
    "ALT_TEST_VALUE",
    "ALT_VALUE",
    "BASELINE_KEY",
    "BUDGET",
    "COMPANION_METRIC",
    "CONFIG",
    "CONFIG_KEY",
    "CONFIRM_SUFFIX",
    "DATA_SEED",
    "DIRECTION",
    "DUPLICATE_OF",
    "FAIL_REASON",
    "JOB",
    "LABEL",
    "LATE_RUN_ID",
    "METHOD",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_PARENT_RUN_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_TRACKING_URI",
    "NON_FINITE",
    "OBJECTIVE_METRIC",
    "PARAMS",
    "PARAM_PREFIX",
    "RACE",
    "ROLE",
    "ROLE_CONFIRMATION",
    "ROLE_SEARCH_BASELINE",
    "SEARCH_METRIC",
    "SEED",
    "SEED_INDEX",
    "SPEC",
    "TEST_METRIC",
    "TEST_VALUE",
    "WORKER",
    "companion_name",
    "config_label",
    "confirmation_metric",
    "is_companion_name",
    "other_alignment",
    "trial_key",
    "trial_number",
]

# ---- on the search study
SPEC = "spec"  # the sweep spec, as JSON
OBJECTIVE_METRIC = "objective_metric"
DIRECTION = "direction"
MLFLOW_EXPERIMENT_ID = "mlflow_experiment_id"
MLFLOW_PARENT_RUN_ID = "mlflow_parent_run_id"
# The MLflow server the sweep logs to, credentials hidden (studies.urls.redact_url): the
# MLflow addresses an export writes (a run's page) point there.
MLFLOW_TRACKING_URI = "mlflow_tracking_uri"
# The trial budget as the last launch (or a resume given --n-trials) set it; a plain
# resume runs up to it, not up to the spec's.
BUDGET = "n_trials"
# The MLflow run of trial <n>, created after the trial ended (the tracking server was away;
# an ended trial's own attributes cannot change): LATE_RUN_ID + "<n>", on the trial's study
# (the search study or the companion). `studies.store.records` reads it as the trial's
# MLFLOW_RUN_ID.
LATE_RUN_ID = "mlflow_run_id.trial-"

# ---- on a trial (search trials and the companion study's replicates)
MLFLOW_RUN_ID = "mlflow_run_id"
WORKER = "worker"  # host:pid of the process that ran it
CONFIG = "config"  # the runnable TrainConfig, as JSON
FAIL_REASON = "fail_reason"  # why a search trial FAILED (its non-finite loss)
JOB = "job"  # the cluster job (Slurm job id) whose worker ran it (--executor slurm)

# ---- on the companion study ``NAME:confirm`` and its trials (studies.run.replicates, verdict)
CONFIG_KEY = "config_key"  # "baseline" or "trial-<n>"
SEED = "seed"  # the replicate's training seed
# A confirmation replicate's seed index s (0, 1, ...): training seed = the search's + 1 + s,
# data seed = the base's + 1 + s; replicate s of every contender shares both (paired).
SEED_INDEX = "seed_index"
DATA_SEED = "data_seed"  # the replicate's data seed (its scenes); absent for a command
# A confirmation replicate's value is its validation score (the objective metric at the
# selected epoch, as the search scores a trial: it decides the race); its test-split
# counterpart at the same epoch is TEST_VALUE (NaN when the run has none), named TEST_METRIC.
TEST_VALUE = "test_value"
TEST_METRIC = "test_metric"
# When the objective is least-squares aligned (``*_align``: inverse depth, ``*_align_depth``:
# depth), a replicate also keeps the other alignment's scores at the same (selected) epoch:
# ALT_VALUE on validation, ALT_TEST_VALUE on test (None when the run has none), named
# ALT_METRIC (its validation name). They only report (the verdict's alignment line).
ALT_METRIC = "alt_metric"
ALT_VALUE = "alt_value"
ALT_TEST_VALUE = "alt_test_value"
ROLE = "role"  # ROLE_SEARCH_BASELINE or ROLE_CONFIRMATION
PARAMS = "params"  # the searched values (the baseline: its loss method)
METHOD = "method"  # the loss method
NON_FINITE = "non_finite"  # a replicate that diverged (its value counts as NaN)
# A copy of a job that racing launches queued twice: the number of the trial that runs it.
DUPLICATE_OF = "duplicate_of"
COMPANION_METRIC = "metric"  # the metric a replicate (and the companion study) scores
# On the companion study: what its trials are and what their values are not (the best
# configuration), for a reader of the study outside salsweep (optuna-dashboard shows it
# under "Study User Attributes", beside its "Best Trial").
ABOUT = "about"
SEARCH_METRIC = "search_metric"  # on the companion study: the search's objective metric
# On the companion study: the race as it started, fixed from then on (studies.run.race_rounds):
# {"design": {top_k, initial_seeds, max_seeds, indifference_zone, alpha}, "candidates":
# ["trial-3", ...], "baseline": "baseline" or None}.
RACE = "race"
# Readable fields for optuna-dashboard: the configuration's label ("trial 7", "baseline
# (ssi)"), and one scalar per searched value (PARAM_PREFIX + its dotted path).
LABEL = "label"
PARAM_PREFIX = "param."

# Values of ROLE.
ROLE_SEARCH_BASELINE = "search-baseline"
ROLE_CONFIRMATION = "confirmation"

# ---- the companion study and its configuration keys
CONFIRM_SUFFIX = ":confirm"
BASELINE_KEY = "baseline"


def companion_name(study_name: str) -> str:
    """``NAME:confirm``: the study of the runs outside the search."""
    return study_name + CONFIRM_SUFFIX


def is_companion_name(study_name: str) -> bool:
    return study_name.endswith(CONFIRM_SUFFIX)


def trial_key(number: int) -> str:
    """The config key of search trial ``number``: ``trial-<n>``."""
    return f"trial-{number}"


def trial_number(key: str) -> int | None:
    """The search trial of a config key; None for the baseline."""
    prefix, _, number = key.partition("-")
    return int(number) if prefix == "trial" and number.isdigit() else None


def config_label(key: str, method: str | None = None) -> str:
    """How a table names a configuration: ``trial 3``, ``baseline (ssi)``."""
    if key == BASELINE_KEY:
        return f"baseline ({method})" if method else "baseline"
    number = trial_number(key)
    return f"trial {number}" if number is not None else key


def confirmation_metric(metric: str) -> str:
    """The test split's name of a validation metric (``val/x`` -> ``test/x``); other
    metrics are their own."""
    return "test/" + metric.removeprefix("val/") if metric.startswith("val/") else metric


def other_alignment(metric: str) -> str | None:
    """The same metric under the other least-squares alignment: ``*_align`` (inverse depth)
    <-> ``*_align_depth`` (depth); None for any other metric (raw, ``_med``, a loss)."""
    if metric.endswith("_align_depth"):
        return metric.removesuffix("_depth")
    if metric.endswith("_align"):
        return metric + "_depth"
    return None
