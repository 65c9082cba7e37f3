"""The search's trials: one trial = one short training run with the values the sampler
suggests, tracked as an MLflow child run (through `studies.run.runner.run_trial`), its
epochs reported to Optuna for pruning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from studies import attrs
from studies.home import trial_dir
from studies.run.commands import CommandFailed, command_params, command_train
from studies.run.runner import (
    EpochCallback,
    RunEnding,
    SweepRuns,
    TrialPlan,
    builtin_params,
    close_runs,
    run_trial,
)
from studies.run.search_space import suggest_values
from studies.tracking import RunLog, Tracker, child_tags
from sweeps import ObjectiveSpec
from trainer import EpochSelection, NonFiniteLoss, TrainConfig, fit

# What a trial may fail with and the sweep goes on (counted in its failure streak).
TRIAL_FAILURES = (NonFiniteLoss, CommandFailed)
TrialFailure = NonFiniteLoss | CommandFailed
TrainStep = Callable[[EpochCallback, RunLog, RunEnding], float]

__all__ = [
    "TRIAL_FAILURES",
    "Objective",
    "TrialFailure",
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
    # The last trial of this process that failed (diverged, or its command failed).
    last_failure: TrialFailure | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        runs = self.runs
        spec = runs.spec
        objective = spec.objective
        metric = objective.metric
        out_dir = trial_dir(self.trials_dir, trial.number)
        observer = runs.observer
        values = suggest_values(trial, spec)

        def score(history: list[dict[str, float]]) -> float:
            return objective_value(history, metric, objective.direction, objective.reduce)

        user_attrs: dict[str, object]
        if spec.command is not None:
            seed = spec.training_seed()
            run_values = {**spec.fixed(), **values}
            epochs = spec.command.steps or 0  # unknown unless the spec says
            params, config_yaml = command_params(spec.command, run_values, seed)
            train = command_train(runs, trial.number, run_values, seed, out_dir, score)
            user_attrs = {attrs.SEED: seed}
        else:
            config = spec.config_for(values)
            epochs = config.epochs
            params, config_yaml = builtin_params(config)
            train = _builtin_train(config, out_dir, objective, score)
            # The stored config is the runnable one: no output folder of this sweep inside.
            user_attrs = {attrs.CONFIG: config.model_dump(mode="json")}

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
                observer.trial_started(trial.number, dict(trial.params), epochs)

        def on_finish(ending: RunEnding) -> None:
            self.finished += 1
            if observer is not None:
                reason = ending.reason if ending.state != "COMPLETE" else None
                observer.trial_finished(trial.number, ending.state or "FAIL", ending.value, reason)

        plan = TrialPlan(
            run_name=f"trial-{trial.number}",
            out_dir=out_dir,
            tags=child_tags(runs.parent_run_id, runs.study_name, trial.number),
            params=params,
            config_yaml=config_yaml,
            train=self._failing(trial, train),
            on_epoch=on_epoch,
            on_start=on_start,
            on_finish=on_finish,
            log_epochs=spec.command is None or spec.command.metrics != "mlflow",
            user_attrs=user_attrs,
        )
        return run_trial(runs, trial, plan)

    def _failing(self, trial: optuna.Trial, train: TrainStep) -> TrainStep:
        """``train`` that records why the trial failed: Optuna keeps no reason for a FAIL,
        the trial carries it (`attrs.FAIL_REASON`), and the sweep its last failure."""

        def wrapped(on_epoch_end: EpochCallback, run: RunLog, ending: RunEnding) -> float:
            try:
                return train(on_epoch_end, run, ending)
            except TRIAL_FAILURES as exc:
                trial.set_user_attr(attrs.FAIL_REASON, str(exc))
                self.last_failure = exc
                raise

        return wrapped


def _builtin_train(
    config: TrainConfig,
    out_dir: Path,
    objective: ObjectiveSpec,
    score: Callable[[list[dict[str, float]]], float],
) -> TrainStep:
    """``train`` of a built-in trial: `trainer.fit` in this process."""

    def train(on_epoch_end: EpochCallback, _run: RunLog, _ending: RunEnding) -> float:
        result = fit(
            config.model_copy(update={"output_dir": out_dir}),
            on_epoch_end,
            select=epoch_selection(objective),
        )
        return score(result.history)

    return train
