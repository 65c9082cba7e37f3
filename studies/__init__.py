"""Optuna studies tracked in MLflow: storage, objective, tracking, server, export, reports,
and the confirmation of a sweep's winner.

The only package that imports optuna and mlflow. Its names load on first use (PEP 562),
so that read-only commands (`salsweep studies list|show|export`) import neither mlflow nor
torch, nor Optuna where they read an SQLite storage: `from studies import read_study` loads
studies.store.catalog and what it needs (the SQL reader, the records), no more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies.confirmation.stats import (
        Estimate,
        Verdict,
        estimate,
        paired_difference,
        t_quantile_975,
    )
    from studies.confirmation.verdict import (
        Confirmation,
        ConfirmedConfig,
        ConfirmError,
        load_confirmation,
    )
    from studies.home import default_storage_url, resolve_storage
    from studies.report.confirmation import (
        TABLE_HEADER,
        export_header_lines,
        format_estimate,
        table_rows,
        verdict_sentence,
    )
    from studies.report.export import ExportError, export_best, write_export
    from studies.report.trials import TrialRow, save_study_plots, trial_rows
    from studies.run.objective import Objective, SweepObserver, flatten_config, objective_value
    from studies.run.session import SweepOutcome, SweepTarget
    from studies.run.sweep import confirm_sweep, remaining_trials, run_sweep
    from studies.store.catalog import (
        StorageReadError,
        StudyMismatch,
        load_study,
        quiet_optuna_logs,
        read_study,
        stored_spec,
        study_summaries,
    )
    from studies.store.records import StudyRecord, StudySummary, TrialRecord, as_record
    from studies.store.storage import StorageError, open_storage
    from studies.tracking.layout import TrackingError
    from studies.tracking.runs import Tracker
    from studies.tracking.server import (
        ServerError,
        ServerInfo,
        resolve_tracking,
        server_status,
        start_server,
        stop_server,
    )

# Public name -> the module that defines it (every name of __all__).
_NAMES: dict[str, str] = {
    "ConfirmError": "studies.confirmation.verdict",
    "Confirmation": "studies.confirmation.verdict",
    "ConfirmedConfig": "studies.confirmation.verdict",
    "Estimate": "studies.confirmation.stats",
    "ExportError": "studies.report.export",
    "Objective": "studies.run.objective",
    "ServerError": "studies.tracking.server",
    "ServerInfo": "studies.tracking.server",
    "StorageError": "studies.store.storage",
    "StorageReadError": "studies.store.catalog",
    "StudyMismatch": "studies.store.catalog",
    "StudyRecord": "studies.store.records",
    "StudySummary": "studies.store.records",
    "SweepObserver": "studies.run.objective",
    "SweepOutcome": "studies.run.session",
    "SweepTarget": "studies.run.session",
    "TABLE_HEADER": "studies.report.confirmation",
    "Tracker": "studies.tracking.runs",
    "TrackingError": "studies.tracking.layout",
    "TrialRecord": "studies.store.records",
    "TrialRow": "studies.report.trials",
    "Verdict": "studies.confirmation.stats",
    "confirm_sweep": "studies.run.sweep",
    "as_record": "studies.store.records",
    "default_storage_url": "studies.home",
    "estimate": "studies.confirmation.stats",
    "export_best": "studies.report.export",
    "export_header_lines": "studies.report.confirmation",
    "flatten_config": "studies.run.objective",
    "format_estimate": "studies.report.confirmation",
    "load_confirmation": "studies.confirmation.verdict",
    "load_study": "studies.store.catalog",
    "objective_value": "studies.run.objective",
    "open_storage": "studies.store.storage",
    "paired_difference": "studies.confirmation.stats",
    "quiet_optuna_logs": "studies.store.catalog",
    "read_study": "studies.store.catalog",
    "remaining_trials": "studies.run.sweep",
    "resolve_storage": "studies.home",
    "resolve_tracking": "studies.tracking.server",
    "run_sweep": "studies.run.sweep",
    "save_study_plots": "studies.report.trials",
    "server_status": "studies.tracking.server",
    "start_server": "studies.tracking.server",
    "stop_server": "studies.tracking.server",
    "stored_spec": "studies.store.catalog",
    "study_summaries": "studies.store.catalog",
    "t_quantile_975": "studies.confirmation.stats",
    "table_rows": "studies.report.confirmation",
    "trial_rows": "studies.report.trials",
    "verdict_sentence": "studies.report.confirmation",
    "write_export": "studies.report.export",
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
