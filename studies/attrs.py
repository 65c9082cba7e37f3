"""The keys salsweep stores on Optuna studies and trials (``user_attrs``), in one place.

Imports nothing: read-only commands and every module that reads or writes a study use
these names, so a key is spelled once.
"""

from __future__ import annotations

__all__ = [
    "BUDGET",
    "COMPANION_METRIC",
    "CONFIG",
    "CONFIG_KEY",
    "DIRECTION",
    "DUPLICATE_OF",
    "FAIL_REASON",
    "LATE_RUN_ID",
    "METHOD",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_PARENT_RUN_ID",
    "MLFLOW_RUN_ID",
    "NON_FINITE",
    "OBJECTIVE_METRIC",
    "PARAMS",
    "ROLE",
    "ROLE_CONFIRMATION",
    "ROLE_SEARCH_BASELINE",
    "SEARCH_METRIC",
    "SEED",
    "SPEC",
    "WORKER",
]

# ---- on the search study
SPEC = "spec"  # the sweep spec, as JSON
OBJECTIVE_METRIC = "objective_metric"
DIRECTION = "direction"
MLFLOW_EXPERIMENT_ID = "mlflow_experiment_id"
MLFLOW_PARENT_RUN_ID = "mlflow_parent_run_id"
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

# ---- on the companion study ``NAME:confirm`` and its trials (studies.run.replicates, verdict)
CONFIG_KEY = "config_key"  # "baseline" or "trial-<n>"
SEED = "seed"  # the replicate's training seed
ROLE = "role"  # ROLE_SEARCH_BASELINE or ROLE_CONFIRMATION
PARAMS = "params"  # the searched values (the baseline: its loss method)
METHOD = "method"  # the loss method
NON_FINITE = "non_finite"  # a replicate that diverged (its value counts as NaN)
# A copy of a job that racing launches queued twice: the number of the trial that runs it.
DUPLICATE_OF = "duplicate_of"
COMPANION_METRIC = "metric"  # the metric a replicate (and the companion study) scores
SEARCH_METRIC = "search_metric"  # on the companion study: the search's objective metric

# Values of ROLE.
ROLE_SEARCH_BASELINE = "search-baseline"
ROLE_CONFIRMATION = "confirmation"
