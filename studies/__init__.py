"""Optuna studies tracked in MLflow: storage, objective, tracking, server, export, reports.

The only package that imports optuna and mlflow.
"""

from __future__ import annotations

from studies.catalog import (
    StudyMismatch,
    StudySummary,
    load_study,
    quiet_optuna_logs,
    stored_spec,
    study_summaries,
)
from studies.export import ExportError, export_best, write_export
from studies.objective import Objective, SweepObserver, flatten_config, objective_value
from studies.reports import TrialRow, save_study_plots, trial_rows
from studies.server import ServerError, ServerInfo, server_status, start_server, stop_server
from studies.storage import StorageError, default_storage_url, open_storage
from studies.sweep import SweepOutcome, SweepTarget, remaining_trials, run_sweep
from studies.target import resolve_storage, resolve_tracking
from studies.tracking import Tracker, TrackingError

__all__ = [
    "ExportError",
    "Objective",
    "ServerError",
    "ServerInfo",
    "StorageError",
    "StudyMismatch",
    "StudySummary",
    "SweepObserver",
    "SweepOutcome",
    "SweepTarget",
    "Tracker",
    "TrackingError",
    "TrialRow",
    "default_storage_url",
    "export_best",
    "flatten_config",
    "load_study",
    "objective_value",
    "open_storage",
    "quiet_optuna_logs",
    "remaining_trials",
    "resolve_storage",
    "resolve_tracking",
    "run_sweep",
    "save_study_plots",
    "server_status",
    "start_server",
    "stop_server",
    "stored_spec",
    "study_summaries",
    "trial_rows",
    "write_export",
]
