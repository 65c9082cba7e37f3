"""A study's trials as rows for a table, and its companion study's runs as rows.

The SSI baseline's search run lives in the companion study (studies.confirmation.confirmed):
it heads the trials table as ``baseline`` (and never enters the plots of the search,
studies.report.plots). Both take the study as a record (studies.store.records), read once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from studies import attrs
from studies.confirmation import search_baseline_trial
from studies.store import COMPLETE, StudyRecord, TrialRecord

__all__ = ["ReplicateRow", "TrialRow", "replicate_rows", "trial_rows"]


@dataclass(frozen=True)
class TrialRow:
    """One trial as the trials table shows it; the SSI baseline's run has no number."""

    number: int | None
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    params: dict[str, Any]
    value: float | None
    duration: float | None  # seconds; None while running
    mlflow_run_id: str | None
    baseline: bool


def trial_rows(record: StudyRecord) -> list[TrialRow]:
    """The SSI baseline's search run first (when there is one), then every trial of
    ``record`` by number."""
    rows = []
    baseline = search_baseline_trial(record)
    if baseline is not None:
        rows.append(_row(baseline, None, dict(baseline.user_attrs.get(attrs.PARAMS) or {})))
    for t in record.trials:
        rows.append(_row(t, t.number, dict(t.params)))
    return rows


def _row(t: TrialRecord, number: int | None, params: dict[str, Any]) -> TrialRow:
    run_id = t.user_attrs.get(attrs.MLFLOW_RUN_ID)
    return TrialRow(
        number=number,
        state=t.state,
        params=params,
        value=t.value if t.state == COMPLETE else None,
        duration=t.duration.total_seconds() if t.duration is not None else None,
        mlflow_run_id=str(run_id) if run_id is not None else None,
        baseline=number is None,
    )


@dataclass(frozen=True)
class ReplicateRow:
    """One trial of a companion study ``NAME:confirm``: a run outside the search (the SSI
    baseline's search run, or a confirmation replicate), as `salsweep studies show
    NAME:confirm` lists it."""

    number: int  # the trial's number in the companion study
    config: str  # the configuration's label: "trial 3", "baseline (ssi)"
    params: dict[str, Any]  # the searched values it runs (the baseline: its loss method)
    seed: int | None  # the training seed
    role: str  # "search baseline" or "confirmation"
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None  # NaN: diverged (counted as the worst of its seed by the race)
    metric: str | None  # what the value is: the search's metric (on validation)
    test_value: float | None  # a race replicate's test-split score (reported only)
    duration: float | None  # seconds
    mlflow_run_id: str | None
    note: str  # why a run has no value (diverged, a duplicate, ...), else ""


_ROLES = {attrs.ROLE_SEARCH_BASELINE: "search baseline", attrs.ROLE_CONFIRMATION: "confirmation"}


def replicate_rows(companion: StudyRecord) -> list[ReplicateRow]:
    """Every trial of ``companion`` (a companion study's record) by number."""
    search_metric = companion.user_attrs.get(attrs.SEARCH_METRIC)
    replicate_metric = companion.user_attrs.get(attrs.COMPANION_METRIC)
    rows = []
    for t in companion.trials:
        stored = t.user_attrs
        key = stored.get(attrs.CONFIG_KEY)
        role = str(stored.get(attrs.ROLE, attrs.ROLE_CONFIRMATION))
        method = stored.get(attrs.METHOD)
        value: float | None = t.value if t.state == COMPLETE else None
        note = ""
        if stored.get(attrs.NON_FINITE):
            value, note = math.nan, f"diverged: {stored[attrs.NON_FINITE]}"
        elif stored.get(attrs.DUPLICATE_OF) is not None:
            note = f"a duplicate of trial {stored[attrs.DUPLICATE_OF]}, which runs this job"
        elif key is None:
            note = "no job (the queue was empty)"
        metric = stored.get(attrs.COMPANION_METRIC) or (
            search_metric if role == attrs.ROLE_SEARCH_BASELINE else replicate_metric
        )
        test_value = stored.get(attrs.TEST_VALUE)
        seed = stored.get(attrs.SEED)
        run_id = stored.get(attrs.MLFLOW_RUN_ID)
        rows.append(
            ReplicateRow(
                number=t.number,
                config=attrs.config_label(str(key), method) if key is not None else "-",
                params=dict(stored.get(attrs.PARAMS) or {}),
                seed=int(seed) if seed is not None else None,
                role=_ROLES.get(role, role),
                state=t.state,
                value=value,
                metric=str(metric) if metric is not None else None,
                test_value=float(test_value) if isinstance(test_value, int | float) else None,
                duration=t.duration.total_seconds() if t.duration is not None else None,
                mlflow_run_id=str(run_id) if run_id is not None else None,
                note=note,
            )
        )
    return rows
