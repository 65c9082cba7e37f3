"""The Optuna objective: one trial = one short training run tracked as an MLflow child run.

A trial's MLflow run goes through an outbox in the trial's folder (studies.tracking.courier):
training never waits on the tracking server, and a trial never fails because of it. The
trial's ``mlflow_run_id`` is set when the server created the run in time (as the trial
starts, or at the latest as it ends); a run created later (the server was away) is found
through its outbox, e.g. by ``salsweep studies sync``.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import optuna

from studies import attrs
from studies.home import trial_dir
from studies.run.search_space import suggest_config
from studies.run.signals import hold_stop, release_stop
from studies.tracking import ParamValue, RunLog, Tracker, TrackingError, child_tags, flatten_params
from sweeps import ObjectiveSpec, SweepSpec
from trainer import EpochSelection, NonFiniteLoss, TrainConfig, dump_train_config, fit

__all__ = [
    "Objective",
    "RunEnding",
    "SweepObserver",
    "close_dead_trials",
    "epoch_selection",
    "flatten_config",
    "objective_value",
    "optimize",
    "record_run_id",
    "tracked_run",
]

TrialEnd = Literal["COMPLETE", "PRUNED", "FAIL"]


class SweepObserver(Protocol):
    """Receives progress of a sweep (the CLI draws progress bars from it).

    ``trial_*``: the search's trials, by number. ``run_*``: the runs outside the search
    (the SSI baseline, the confirmation's replicates), by label, e.g. ``baseline`` or
    ``confirm trial-3 seed 2``. ``tracking_wait``: a wait for the tracking server at the
    end, said before it begins.
    """

    def sweep_started(self, ui_url: str) -> None: ...

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None: ...

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None: ...

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None: ...

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None: ...

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def run_finished(
        self, label: str, state: str, value: float | None, reason: str | None
    ) -> None: ...

    def tracking_wait(self, runs: int, seconds: float) -> None:
        """The process ends, and the MLflow logs of ``runs`` runs are not sent yet: it
        waits ``seconds`` at most for the server (then they stay on disk)."""


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


def epoch_selection(objective: ObjectiveSpec) -> EpochSelection:
    """The trainer's epoch selection for ``objective``: the kept checkpoint (and the
    weights a confirmation replicate is tested with) is the epoch the objective scores."""
    return EpochSelection(
        metric=objective.metric, direction=objective.direction, reduce=objective.reduce
    )


def close_dead_trials(study: optuna.Study, tracker: Tracker) -> None:
    """Fail the trials whose worker died (no heartbeat) and close their MLflow runs.

    Optuna re-queues each such trial once (see studies.store.storage); its MLflow run would
    otherwise stay RUNNING forever. With the server away, the runs stay as they are:
    ``salsweep studies sync`` closes them from their outboxes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = trial.user_attrs.get(attrs.MLFLOW_RUN_ID)
        if run_id:
            try:
                tracker.client.close_orphan(run_id)  # one cheap read per failed trial and launch
            except TrackingError:
                return  # the server is away: none of the others can be closed either


def record_run_id(trial: optuna.Trial, run: RunLog) -> None:
    """Set the trial's ``mlflow_run_id`` once the server has created its run (a run created
    while the trial ran, the server having been away as it started)."""
    if run.run_id is not None and attrs.MLFLOW_RUN_ID not in trial.user_attrs:
        trial.set_user_attr(attrs.MLFLOW_RUN_ID, run.run_id)


def optimize(
    study: optuna.Study,
    func: Callable[[optuna.Trial], float],
    *,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    **kwargs: Any,
) -> None:
    """``study.optimize`` for objectives whose runs go through `tracked_run`: a stop signal
    (Ctrl-C, SIGTERM) held while a trial's end was recorded is raised once Optuna has
    stored that end, after ``callbacks``. A trial that finished as the signal came stays
    COMPLETE, its run FINISHED; without the hold, its run was FINISHED and Optuna failed
    the trial."""

    def release(_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        release_stop()

    try:
        study.optimize(func, callbacks=[*callbacks, release], **kwargs)
    except BaseException:
        release_stop(raise_pending=False)  # the exception on its way says what happened
        raise
    release_stop()


@dataclass
class RunEnding:
    """How a tracked run ended. The body sets ``state`` (and ``value``) when it has a say;
    left None, the exception decides: FAIL, or PRUNED for ``optuna.TrialPruned``."""

    state: TrialEnd | None = None
    value: float | None = None
    reason: str | None = None


@contextlib.contextmanager
def tracked_run(
    run: RunLog,
    out_dir: Path,
    *,
    log_value: bool = True,
    on_end: Callable[[RunEnding], None] | None = None,
) -> Iterator[RunEnding]:
    """Close MLflow run ``run`` however the body ends: success, pruning, an error or
    Ctrl-C. The run's end is journalled whatever the server does (it is never left
    RUNNING once sent); whatever previews exist in ``out_dir`` are uploaded; ``value`` is
    logged as ``optuna.value`` when ``log_value``. An error of the outbox (a full disk)
    while another exception is on its way must not hide that exception. ``on_end`` is
    called last, with the ending (and the reason of a failure or pruning).

    From the body's end, a stop signal is held until Optuna has stored the trial's end
    (see `optimize`): the run's end and the trial's state then agree.
    """
    ending = RunEnding()
    error: BaseException | None = None
    try:
        yield ending
        if ending.state is None:
            ending.state = "COMPLETE"
    except optuna.TrialPruned as exc:
        error = exc
        ending.state = ending.state or "PRUNED"
        raise
    except BaseException as exc:
        error = exc
        ending.state = ending.state or "FAIL"
        raise
    finally:
        hold_stop()
        state: TrialEnd = ending.state or "FAIL"
        if error is not None:
            ending.reason = str(error) or type(error).__name__
        in_flight = error is not None and not isinstance(error, optuna.TrialPruned)
        with contextlib.suppress(OSError) if in_flight else contextlib.nullcontext():
            previews = out_dir / "previews"
            if previews.is_dir() and any(previews.iterdir()):
                run.log_artifacts(previews, "previews")
            run.end(state, ending.value if log_value else None)
        if on_end is not None:
            on_end(ending)


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
    # The last trial of this process that diverged (None: none did).
    last_failure: NonFiniteLoss | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        config = suggest_config(trial, self.spec)
        metric = self.spec.objective.metric
        out_dir = trial_dir(self.trials_dir, trial.number)
        run = self.tracker.open_run(
            out_dir,
            self.experiment_id,
            f"trial-{trial.number}",
            child_tags(self.parent_run_id, self.study_name, trial.number),
            flatten_config(config),
            owner=(self.study_name, trial.number),
        )
        if run.run_id is not None:
            trial.set_user_attr(attrs.MLFLOW_RUN_ID, run.run_id)

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            run.log_epoch(epoch, metrics)
            if self.observer is not None:
                self.observer.epoch_finished(trial.number, epoch, metrics)
            current = metrics.get(metric, math.nan)
            if math.isfinite(current):
                trial.report(current, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric}={current:.4g})")

        def on_end(ending: RunEnding) -> None:
            self.finished += 1
            record_run_id(trial, run)
            if self.observer is not None:
                reason = ending.reason if ending.state != "COMPLETE" else None
                self.observer.trial_finished(
                    trial.number, ending.state or "FAIL", ending.value, reason
                )

        with tracked_run(run, out_dir, on_end=on_end) as ending:
            # Which machine and process ran it: several workers may share one study.
            trial.set_user_attr(attrs.WORKER, f"{socket.gethostname()}:{os.getpid()}")
            # The stored config is the runnable one: no output folder of this sweep inside.
            trial.set_user_attr(attrs.CONFIG, config.model_dump(mode="json"))
            run.log_text(dump_train_config(config), "config.yaml")
            if self.observer is not None:
                self.observer.trial_started(trial.number, dict(trial.params), config.epochs)

            objective = self.spec.objective
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
            ending.value = objective_value(
                result.history, metric, objective.direction, objective.reduce
            )
        assert ending.value is not None
        return ending.value
