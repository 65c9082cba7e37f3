"""A study's trials as rows for a table, and its plots as PNG files.

The SSI baseline's search run lives in the companion study (studies.confirmation.confirmed):
it heads the trials table as ``baseline`` and never enters the plots of the search. Both
take the study as a record (studies.store.records), read once; the plots hand Optuna's
plot functions an in-memory copy of the record's search trials.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies import attrs
from studies.confirmation import search_baseline_trial
from studies.store import COMPLETE, StudyRecord, TrialRecord

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = [
    "PLOT_NAMES",
    "ReplicateRow",
    "TrialRow",
    "replicate_rows",
    "save_study_plots",
    "trial_rows",
]

PLOT_NAMES = ("optimization_history", "param_importances", "parallel_coordinate")
_log = logging.getLogger(__name__)


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
    value: float | None  # NaN: diverged (counted as NaN by the verdict)
    metric: str | None  # what the value is: the search's metric, or its test split's
    duration: float | None  # seconds
    mlflow_run_id: str | None
    note: str  # why a run has no value (diverged, a duplicate, ...), else ""


_ROLES = {attrs.ROLE_SEARCH_BASELINE: "search baseline", attrs.ROLE_CONFIRMATION: "confirmation"}


def replicate_rows(companion: StudyRecord) -> list[ReplicateRow]:
    """Every trial of ``companion`` (a companion study's record) by number."""
    search_metric = companion.user_attrs.get(attrs.SEARCH_METRIC)
    test_metric = companion.user_attrs.get(attrs.COMPANION_METRIC)
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
            search_metric if role == attrs.ROLE_SEARCH_BASELINE else test_metric
        )
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
                duration=t.duration.total_seconds() if t.duration is not None else None,
                mlflow_run_id=str(run_id) if run_id is not None else None,
                note=note,
            )
        )
    return rows


def _in_memory(record: StudyRecord) -> optuna.Study:
    """The record's search trials in an in-memory Optuna study, for Optuna's plots."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(
        study_name=record.study_name,
        direction="maximize" if record.direction == "maximize" else "minimize",
        storage=optuna.storages.InMemoryStorage(),
        sampler=optuna.samplers.RandomSampler(seed=0),  # never asked: no TPE built
    )
    for t in record.trials:
        state = TrialState[t.state]
        if state in (TrialState.RUNNING, TrialState.WAITING):
            continue  # create_trial takes finished trials; a plot shows none of these
        study.add_trial(
            create_trial(
                state=state,
                value=t.value if state == TrialState.COMPLETE else None,
                params=t.params,
                distributions={k: json_to_distribution(d) for k, d in t.distributions.items()},
                user_attrs=t.user_attrs,
            )
        )
    return study


def _varied_params(trials: list[FrozenTrial]) -> list[str]:
    names = sorted({name for t in trials for name in t.params})
    return [n for n in names if len({repr(t.params.get(n)) for t in trials}) > 1]


def save_study_plots(record: StudyRecord, out_dir: Path) -> list[Path]:
    """Write the optimisation history, parameter importances and parallel coordinates as PNG
    files into ``out_dir``; a plot the trials cannot give yet is skipped. Returns the files
    written. The study holds the search's trials only (the baseline is not one of them).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as oplt

    study = _in_memory(record)
    metric = str(record.user_attrs.get(attrs.OBJECTIVE_METRIC, "Objective Value"))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varied = _varied_params(complete)
    plots: dict[str, tuple[bool, Callable[[], Any]]] = {
        "optimization_history": (
            bool(complete),
            lambda: oplt.plot_optimization_history(study, target_name=metric),
        ),
        # Importances need two complete trials and a param that took two values.
        "param_importances": (
            len(complete) >= 2 and bool(varied),
            lambda: oplt.plot_param_importances(study, params=varied, target_name=metric),
        ),
        "parallel_coordinate": (
            len(complete) >= 2 and bool(varied),
            lambda: oplt.plot_parallel_coordinate(study, target_name=metric),
        ),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (possible, draw) in plots.items():
        if not possible:
            continue
        path = out_dir / f"{name}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" notices of the plot functions
                ax = draw()
            figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            # A degenerate study (e.g. every value equal): skip the plot, keep the others.
            _log.info("skipped %s: %s", name, exc)
            plt.close("all")
            continue
        try:
            figure.tight_layout()
            figure.savefig(path, dpi=100)
        finally:
            plt.close(figure)
        written.append(path)
    return written
