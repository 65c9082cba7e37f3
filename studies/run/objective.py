"""The search's trials: one trial = one short training run with the values the sampler
suggests, tracked as an MLflow child run (through `studies.run.runner.run_trial`), its
epochs reported to Optuna for pruning.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from studies import attrs
from studies.home import trial_dir
from studies.run.runner import (
    EpochCallback,
    RunEnding,
    SweepRuns,
    TrialPlan,
    close_runs,
    run_trial,
)
from studies.run.search_space import suggest_config
from studies.tracking import RunLog, Tracker, child_tags
from sweeps import ObjectiveSpec
from trainer import EpochSelection, NonFiniteLoss, fit

__all__ = [
    "Objective",
    "close_dead_trials",
    "epoch_selection",
    "objective_value",
]


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


def epoch_selection(objective: ObjectiveSpec) -> EpochSelection:
    """The trainer's epoch selection for ``objective``: the kept checkpoint (and the
    weights a confirmation replicate is tested with) is the epoch the objective scores."""
    return EpochSelection(
        metric=objective.metric, direction=objective.direction, reduce=objective.reduce
    )


def close_dead_trials(study: optuna.Study, tracker: Tracker) -> None:
    """Fail the trials whose worker died (no heartbeat) and close their MLflow runs.

    Optuna re-queues each such trial once (see studies.store.storage); its MLflow run would
    otherwise stay RUNNING forever.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    close_runs(failed, tracker.client)


@dataclass
class Objective:
    """Callable passed to ``study.optimize``: one search trial per call."""

    runs: SweepRuns
    trials_dir: Path
    # Trials this process ran to an end (any state); other workers count their own.
    finished: int = 0
    # The last trial of this process that diverged (None: none did).
    last_failure: NonFiniteLoss | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        runs = self.runs
        config = suggest_config(trial, runs.spec)
        objective = runs.spec.objective
        metric = objective.metric
        out_dir = trial_dir(self.trials_dir, trial.number)
        observer = runs.observer

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            if observer is not None:
                observer.epoch_finished(trial.number, epoch, metrics)
            current = metrics.get(metric, math.nan)
            if math.isfinite(current):
                trial.report(current, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric}={current:.4g})")

        def on_start() -> None:
            if observer is not None:
                observer.trial_started(trial.number, dict(trial.params), config.epochs)

        def on_finish(ending: RunEnding) -> None:
            self.finished += 1
            if observer is not None:
                reason = ending.reason if ending.state != "COMPLETE" else None
                observer.trial_finished(trial.number, ending.state or "FAIL", ending.value, reason)

        def train(on_epoch_end: EpochCallback, _run: RunLog, _ending: RunEnding) -> float:
            try:
                result = fit(
                    config.model_copy(update={"output_dir": out_dir}),
                    on_epoch_end,
                    select=epoch_selection(objective),
                )
            except NonFiniteLoss as exc:
                # Optuna keeps no reason for a FAIL: the trial carries it.
                trial.set_user_attr(attrs.FAIL_REASON, str(exc))
                self.last_failure = exc
                raise
            return objective_value(result.history, metric, objective.direction, objective.reduce)

        plan = TrialPlan(
            run_name=f"trial-{trial.number}",
            out_dir=out_dir,
            tags=child_tags(runs.parent_run_id, runs.study_name, trial.number),
            config=config,
            train=train,
            on_epoch=on_epoch,
            on_start=on_start,
            on_finish=on_finish,
            # The stored config is the runnable one: no output folder of this sweep inside.
            user_attrs={attrs.CONFIG: config.model_dump(mode="json")},
        )
        return run_trial(runs, trial, plan)
