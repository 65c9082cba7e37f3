"""Optuna studies tracked in MLflow: storage, objective, tracking, server, export, reports,
and the confirmation of a sweep's winner.

The only package that imports optuna and mlflow. Its names load on first use (PEP 562),
so that read-only commands (`salsweep studies list|show|export`) import neither mlflow nor
torch, nor Optuna where they read an SQLite storage: `from studies import read_study` loads
studies.catalog and what it needs (the SQL reader, the records), no more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies.catalog import (
        StorageReadError,
        StudyMismatch,
        load_study,
        quiet_optuna_logs,
        read_study,
        stored_spec,
        study_summaries,
    )
    from studies.confirm_report import (
        TABLE_HEADER,
        export_header_lines,
        format_estimate,
        table_rows,
        verdict_sentence,
    )
    from studies.export import ExportError, export_best, write_export
    from studies.objective import Objective, SweepObserver, flatten_config, objective_value
    from studies.opening import SweepOutcome, SweepTarget
    from studies.records import StudyRecord, StudySummary, TrialRecord, as_record
    from studies.reports import TrialRow, save_study_plots, trial_rows
    from studies.server import ServerError, ServerInfo, server_status, start_server, stop_server
    from studies.stats import Estimate, Verdict, estimate, paired_difference, t_quantile_975
    from studies.storage import StorageError, open_storage
    from studies.sweep import confirm_sweep, remaining_trials, run_sweep
    from studies.target import default_storage_url, resolve_storage, resolve_tracking
    from studies.tracking import Tracker, TrackingError
    from studies.verdict import Confirmation, ConfirmedConfig, ConfirmError, load_confirmation

# Public name -> the module that defines it (every name of __all__).
_NAMES: dict[str, str] = {
    "ConfirmError": "studies.verdict",
    "Confirmation": "studies.verdict",
    "ConfirmedConfig": "studies.verdict",
    "Estimate": "studies.stats",
    "ExportError": "studies.export",
    "Objective": "studies.objective",
    "ServerError": "studies.server",
    "ServerInfo": "studies.server",
    "StorageError": "studies.storage",
    "StorageReadError": "studies.catalog",
    "StudyMismatch": "studies.catalog",
    "StudyRecord": "studies.records",
    "StudySummary": "studies.records",
    "SweepObserver": "studies.objective",
    "SweepOutcome": "studies.opening",
    "SweepTarget": "studies.opening",
    "TABLE_HEADER": "studies.confirm_report",
    "Tracker": "studies.tracking",
    "TrackingError": "studies.tracking",
    "TrialRecord": "studies.records",
    "TrialRow": "studies.reports",
    "Verdict": "studies.stats",
    "confirm_sweep": "studies.sweep",
    "as_record": "studies.records",
    "default_storage_url": "studies.target",
    "estimate": "studies.stats",
    "export_best": "studies.export",
    "export_header_lines": "studies.confirm_report",
    "flatten_config": "studies.objective",
    "format_estimate": "studies.confirm_report",
    "load_confirmation": "studies.verdict",
    "load_study": "studies.catalog",
    "objective_value": "studies.objective",
    "open_storage": "studies.storage",
    "paired_difference": "studies.stats",
    "quiet_optuna_logs": "studies.catalog",
    "read_study": "studies.catalog",
    "remaining_trials": "studies.sweep",
    "resolve_storage": "studies.target",
    "resolve_tracking": "studies.target",
    "run_sweep": "studies.sweep",
    "save_study_plots": "studies.reports",
    "server_status": "studies.server",
    "start_server": "studies.server",
    "stop_server": "studies.server",
    "stored_spec": "studies.catalog",
    "study_summaries": "studies.catalog",
    "t_quantile_975": "studies.stats",
    "table_rows": "studies.confirm_report",
    "trial_rows": "studies.reports",
    "verdict_sentence": "studies.confirm_report",
    "write_export": "studies.export",
}

__all__ = [
    "TABLE_HEADER",
    "ConfirmError",
    "Confirmation",
    "ConfirmedConfig",
    "Estimate",
    "ExportError",
    "Objective",
    "ServerError",
    "ServerInfo",
    "StorageError",
    "StorageReadError",
    "StudyMismatch",
    "StudyRecord",
    "StudySummary",
    "SweepObserver",
    "SweepOutcome",
    "SweepTarget",
    "Tracker",
    "TrackingError",
    "TrialRecord",
    "TrialRow",
    "Verdict",
    "as_record",
    "confirm_sweep",
    "default_storage_url",
    "estimate",
    "export_best",
    "export_header_lines",
    "flatten_config",
    "format_estimate",
    "load_confirmation",
    "load_study",
    "objective_value",
    "open_storage",
    "paired_difference",
    "quiet_optuna_logs",
    "read_study",
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
    "t_quantile_975",
    "table_rows",
    "trial_rows",
    "verdict_sentence",
    "write_export",
]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'studies' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
