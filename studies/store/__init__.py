"""The Optuna storage: a storage that retries what a flaky database makes fail, plain-SQL
reads of a study (no Optuna object, for the read-only commands), and studies as records.

Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.store.catalog import (
        StorageReadError,
        StudyMismatch,
        load_study,
        quiet_optuna_logs,
        read_study,
        stored_spec,
        study_summaries,
    )
    from studies.store.records import (
        COMPLETE,
        FAIL,
        PRUNED,
        StudyRecord,
        StudySummary,
        TrialRecord,
        apply_late_run_ids,
        as_record,
        companion_study,
    )
    from studies.store.storage import (
        HEARTBEAT_INTERVAL_S,
        StorageError,
        open_storage,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.store.catalog": (
            "StorageReadError",
            "StudyMismatch",
            "load_study",
            "quiet_optuna_logs",
            "read_study",
            "stored_spec",
            "study_summaries",
        ),
        "studies.store.records": (
            "COMPLETE",
            "FAIL",
            "PRUNED",
            "StudyRecord",
            "StudySummary",
            "TrialRecord",
            "apply_late_run_ids",
            "as_record",
            "companion_study",
        ),
        "studies.store.storage": (
            "HEARTBEAT_INTERVAL_S",
            "StorageError",
            "open_storage",
        ),
    },
)
