"""The Optuna objective: one trial = one short training run tracked as an MLflow child run."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import optuna

from studies.search_space import suggest_config
from studies.tracking import ParamValue, Tracker, TrackingError, flatten_params
from sweeps import SweepSpec
from trainer import TrainConfig, dump_train_config, fit

__all__ = ["Objective", "SweepObserver", "flatten_config", "objective_value"]

TrialEnd = Literal["COMPLETE", "PRUNED", "FAIL"]


class SweepObserver(Protocol):
    """Receives progress of a sweep (the CLI draws progress bars from it)."""

    def sweep_started(self, ui_url: str) -> None: ...

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None: ...

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None: ...

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None: ...


def flatten_config(config: TrainConfig) -> dict[str, ParamValue]:
    """Every leaf of the config as ``dotted.key: value`` (MLflow params)."""
    return flatten_params(config.model_dump(mode="json"))


def objective_value(
    history: list[dict[str, float]], metric: str, direction: str, reduce: str = "best"
) -> float:
    """``metric`` of the best epoch (``reduce='best'``) or of the last finite one."""
    values = [epoch[metric] for epoch in history if math.isfinite(epoch.get(metric, math.nan))]
    if not values:
        raise ValueError(f"the run never produced a finite {metric!r}")
    if reduce == "last":
        return values[-1]
    return min(values) if direction == "minimize" else max(values)


@dataclass
class Objective:
    """Callable passed to ``study.optimize``; owns nothing but references."""

    spec: SweepSpec
    tracker: Tracker
    experiment_id: str
    parent_run_id: str
    study_name: str
    trials_dir: Path
    observer: SweepObserver | None = None
    # Trials this process ran to an end (any state); other workers count their own.
    finished: int = 0

    def __call__(self, trial: optuna.Trial) -> float:
        config = suggest_config(trial, self.spec)
        metric = self.spec.objective.metric
        out_dir = self.trials_dir / f"trial-{trial.number:04d}"
        run_id = self.tracker.start_child(
            self.experiment_id,
            self.parent_run_id,
            trial.number,
            flatten_config(config),
            self.study_name,
        )

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            self.tracker.log_epoch(run_id, epoch, metrics)
            if self.observer is not None:
                self.observer.epoch_finished(trial.number, epoch, metrics)
            current = metrics.get(metric, math.nan)
            if math.isfinite(current):
                trial.report(current, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric}={current:.4g})")

        state: TrialEnd = "FAIL"
        value: float | None = None
        try:
            trial.set_user_attr("mlflow_run_id", run_id)
            # Which machine and process ran it: several workers may share one study.
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            # The stored config is the runnable one: no output folder of this sweep inside.
            trial.set_user_attr("config", config.model_dump(mode="json"))
            self.tracker.log_text(run_id, dump_train_config(config), "config.yaml")
            if self.observer is not None:
                self.observer.trial_started(trial.number, dict(trial.params), config.epochs)

            result = fit(config.model_copy(update={"output_dir": out_dir}), on_epoch_end)
            objective = self.spec.objective
            value = objective_value(result.history, metric, objective.direction, objective.reduce)
            state = "COMPLETE"
            return value
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            # Runs on success, pruning, errors and Ctrl-C alike: the child run is never
            # left RUNNING, and whatever previews exist are kept. A tracking error while
            # another exception is on its way must not hide that exception.
            error = sys.exc_info()[1]
            in_flight = error is not None and state != "PRUNED"
            with contextlib.suppress(TrackingError) if in_flight else contextlib.nullcontext():
                self._close(run_id, out_dir, state, value)
            self.finished += 1
            if self.observer is not None:
                reason = None if error is None else (str(error) or type(error).__name__)
                self.observer.trial_finished(trial.number, state, value, reason)

    def _close(self, run_id: str, out_dir: Path, state: TrialEnd, value: float | None) -> None:
        previews = out_dir / "previews"
        if previews.is_dir() and any(previews.iterdir()):
            self.tracker.log_artifacts(run_id, previews, "previews")
        self.tracker.end_child(run_id, state, value)
