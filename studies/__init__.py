"""Optuna studies tracked in MLflow: storage, objective, tracking, server, export, reports,
and the confirmation of a sweep's winner.

The only package that imports optuna and mlflow. Its names load on first use (PEP 562),
so that read-only commands (`salsweep studies list|show|export`) import neither mlflow nor
torch, nor Optuna where they read an SQLite storage: `from studies import read_study` loads
studies.store.catalog and what it needs (the SQL reader, the records), no more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.confirmation import (
        Confirmation,
        ConfirmedConfig,
        ConfirmError,
        Estimate,
        Verdict,
        estimate,
        load_confirmation,
        paired_difference,
        t_quantile_975,
    )
    from studies.home import default_storage_url, resolve_storage
    from studies.report import (
        TABLE_HEADER,
        ExportError,
        TrialRow,
        export_best,
        export_header_lines,
        format_estimate,
        save_study_plots,
        table_rows,
        table_title,
        terminal_table,
        trial_rows,
        verdict_lines,
        write_export,
    )
    from studies.run import (
        Objective,
        SweepObserver,
        SweepOutcome,
        SweepTarget,
        confirm_sweep,
        flatten_config,
        objective_value,
        remaining_trials,
        run_sweep,
    )
    from studies.store import (
        StorageError,
        StorageReadError,
        StudyMismatch,
        StudyRecord,
        StudySummary,
        TrialRecord,
        as_record,
        load_study,
        open_storage,
        quiet_optuna_logs,
        read_study,
        stored_spec,
        study_summaries,
    )
    from studies.tracking import (
        ServerError,
        ServerInfo,
        Tracker,
        TrackingError,
        resolve_tracking,
        server_status,
        start_server,
        stop_server,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.confirmation": (
            "ConfirmError",
            "Confirmation",
            "ConfirmedConfig",
            "Estimate",
            "Verdict",
            "estimate",
            "load_confirmation",
            "paired_difference",
            "t_quantile_975",
        ),
        "studies.home": (
            "default_storage_url",
            "resolve_storage",
        ),
        "studies.report": (
            "ExportError",
            "TABLE_HEADER",
            "TrialRow",
            "export_best",
            "export_header_lines",
            "format_estimate",
            "save_study_plots",
            "table_rows",
            "table_title",
            "terminal_table",
            "trial_rows",
            "verdict_lines",
            "write_export",
        ),
        "studies.run": (
            "Objective",
            "SweepObserver",
            "SweepOutcome",
            "SweepTarget",
            "confirm_sweep",
            "flatten_config",
            "objective_value",
            "remaining_trials",
            "run_sweep",
        ),
        "studies.store": (
            "StorageError",
            "StorageReadError",
            "StudyMismatch",
            "StudyRecord",
            "StudySummary",
            "TrialRecord",
            "as_record",
            "load_study",
            "open_storage",
            "quiet_optuna_logs",
            "read_study",
            "stored_spec",
            "study_summaries",
        ),
        "studies.tracking": (
            "ServerError",
            "ServerInfo",
            "Tracker",
            "TrackingError",
            "resolve_tracking",
            "server_status",
            "start_server",
            "stop_server",
        ),
    },
)
