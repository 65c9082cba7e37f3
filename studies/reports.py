"""A study's trials as rows for a table, and its plots as PNG files."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from studies.search_space import is_baseline

__all__ = ["PLOT_NAMES", "TrialRow", "save_study_plots", "trial_rows"]

PLOT_NAMES = ("optimization_history", "param_importances", "parallel_coordinate")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialRow:
    """One trial as the trials table shows it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    params: dict[str, Any]
    value: float | None
    duration: float | None  # seconds; None while running
    mlflow_run_id: str | None
    baseline: bool


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Every trial of ``study``, by number."""
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        run_id = t.user_attrs.get("mlflow_run_id")
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=dict(t.params),
                value=t.value if t.state == TrialState.COMPLETE else None,
                duration=t.duration.total_seconds() if t.duration is not None else None,
                mlflow_run_id=str(run_id) if run_id is not None else None,
                baseline=is_baseline(t),
            )
        )
    return rows


def _sweep_trials(study: optuna.Study) -> optuna.Study:
    """An in-memory copy with the finished trials except the SSI baseline: its value comes
    from another loss, so it would skew importances and the parameter plots."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        copy = optuna.create_study(direction=study.direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    copy.add_trials(
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if not is_baseline(t)
    )
    return copy


def _varied_params(trials: list[FrozenTrial]) -> list[str]:
    names = sorted({name for t in trials for name in t.params})
    return [n for n in names if len({repr(t.params.get(n)) for t in trials}) > 1]


def save_study_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write the optimisation history, parameter importances and parallel coordinates as PNG
    files into ``out_dir``; a plot the trials cannot give yet is skipped. Returns the files
    written. The baseline trial is left out (it is in the trials table and export header).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as oplt

    metric = str(study.user_attrs.get("objective_metric", "Objective Value"))
    sweep = _sweep_trials(study)
    complete = sweep.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varied = _varied_params(complete)
    plots: dict[str, tuple[bool, Callable[[], Any]]] = {
        "optimization_history": (
            bool(complete),
            lambda: oplt.plot_optimization_history(sweep, target_name=metric),
        ),
        # Importances need two complete trials and a param that took two values.
        "param_importances": (
            len(complete) >= 2 and bool(varied),
            lambda: oplt.plot_param_importances(sweep, params=varied, target_name=metric),
        ),
        "parallel_coordinate": (
            len(complete) >= 2 and bool(varied),
            lambda: oplt.plot_parallel_coordinate(sweep, target_name=metric),
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
