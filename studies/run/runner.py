"""One runner for every kind of trial: a search trial (studies.run.objective), the SSI
baseline's search run and a confirmation replicate (studies.run.replicates), and a
command trial (a user's own training program).

What they share is written here once: the trial's MLflow run opened through an outbox in
its folder (studies.tracking.courier: training never waits on the tracking server, and a
trial never fails because of it), its id set on the trial when the server created it in
time (as the trial starts, or at the latest as it ends; a run created later is found
through its outbox, e.g. by ``salsweep studies sync``), the worker that ran it, its
``config.yaml``, each epoch's metrics logged before the kind hears of them, and a run
closed however the trial ends (`tracked_run`). What differs comes in a `TrialPlan`: the
run's name, tags and folder, the config, what to tell the observer, and ``train``, which
trains (in this process, or as a subprocess) and returns the trial's value.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial

from studies import attrs
from studies.run.observer import SweepObserver
from studies.run.signals import check_stop, hold_stop, release_stop
from studies.store import companion_study
from studies.tracking import (
    Client,
    ParamValue,
    RunLog,
    Tracker,
    TrackingError,
    flatten_params,
    without_unused_loss_params,
)
from sweeps import SweepSpec
from trainer import TrainConfig, dump_train_config

__all__ = [
    "EpochCallback",
    "RunEnding",
    "SweepRuns",
    "TrialEnd",
    "TrialPlan",
    "builtin_params",
    "close_runs",
    "fail_orphans",
    "fail_trials",
    "flatten_config",
    "optimize",
    "record_run_id",
    "run_trial",
    "tracked_run",
    "worker_id",
]

TrialEnd = Literal["COMPLETE", "PRUNED", "FAIL"]
EpochCallback = Callable[[int, dict[str, float]], None]


def worker_id(pid: int | None = None) -> str:
    """``host:pid`` of the process that runs a trial (this one, or ``pid``): several
    workers, on several machines, may share one study."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def flatten_config(config: TrainConfig) -> dict[str, ParamValue]:
    """Every leaf of the config as ``dotted.key: value`` (MLflow params), less the loss
    parameters that its loss method does not take (an SSI run has no ``loss.lambda_sg``)."""
    return without_unused_loss_params(flatten_params(config.model_dump(mode="json")))


def builtin_params(config: TrainConfig) -> tuple[dict[str, ParamValue], str]:
    """(MLflow params, config.yaml) of a trial of the built-in trainer."""
    return flatten_config(config), dump_train_config(config)


@dataclass(frozen=True)
class SweepRuns:
    """What every kind of trial of a sweep shares: its spec, where its runs go in MLflow
    (the experiment and the parent run), the study's name, who hears of progress."""

    spec: SweepSpec
    tracker: Tracker
    experiment_id: str
    parent_run_id: str
    study_name: str
    observer: SweepObserver | None = None


@dataclass
class RunEnding:
    """How a tracked run ended. The body sets ``state`` (and ``value``) when it has a say;
    left None, the exception decides: FAIL, or PRUNED for ``optuna.TrialPruned``."""

    state: TrialEnd | None = None
    value: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TrialPlan:
    """What one kind of trial hands `run_trial` for one Optuna trial.

    ``train(on_epoch_end, run, ending)`` trains and returns the trial's value (it may set
    ``ending.state``, or raise: ``optuna.TrialPruned``, an error); ``on_epoch_end`` logs
    the epoch's metrics on the run and then calls ``on_epoch`` (the observer; pruning).
    ``user_attrs`` are set on the trial as it starts. ``log_value``: the value is logged
    as ``optuna.value``, the metric the runs table ranks the search by. A built-in trial's
    params and config come from its `TrainConfig` (`builtin_params`)."""

    run_name: str
    out_dir: Path
    tags: Mapping[str, str]
    params: Mapping[str, ParamValue]  # the run's MLflow params
    config_yaml: str  # the run's config.yaml artifact
    train: Callable[[EpochCallback, RunLog, RunEnding], float]
    on_epoch: EpochCallback
    on_start: Callable[[], None]
    on_finish: Callable[[RunEnding], None]
    log_value: bool = True
    log_epochs: bool = True  # False: the program logs its own metrics on the run
    user_attrs: Mapping[str, Any] = field(default_factory=dict)


def run_trial(runs: SweepRuns, trial: optuna.Trial, plan: TrialPlan) -> float:
    """Run one trial of any kind (see the module): its MLflow run opened, ``plan.train``
    run inside `tracked_run`, its value returned."""
    run = runs.tracker.open_run(
        plan.out_dir,
        runs.experiment_id,
        plan.run_name,
        plan.tags,
        plan.params,
        owner=(trial.study.study_name, trial.number),
    )
    if run.run_id is not None:
        trial.set_user_attr(attrs.MLFLOW_RUN_ID, run.run_id)

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        check_stop()  # a stop signal whose exception was lost (studies.run.signals)
        if plan.log_epochs:
            run.log_epoch(epoch, metrics)
        plan.on_epoch(epoch, metrics)

    def on_end(ending: RunEnding) -> None:
        record_run_id(trial, run)
        plan.on_finish(ending)

    with tracked_run(run, plan.out_dir, log_value=plan.log_value, on_end=on_end) as ending:
        trial.set_user_attr(attrs.WORKER, worker_id())
        for key, value in plan.user_attrs.items():
            trial.set_user_attr(key, value)
        run.log_text(plan.config_yaml, "config.yaml")
        plan.on_start()
        ending.value = plan.train(on_epoch_end, run, ending)
    assert ending.value is not None
    return ending.value


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
        check_stop()  # a stop signal whose exception was lost (studies.run.signals)

    try:
        study.optimize(func, callbacks=[*callbacks, release], **kwargs)
    except BaseException:
        release_stop(raise_pending=False)  # the exception on its way says what happened
        raise
    release_stop()


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


def close_runs(trials: Iterable[FrozenTrial], client: Client) -> None:
    """Close the MLflow runs that ``trials`` (failed: their worker died) left RUNNING. With
    the server away, the runs stay as they are: ``salsweep studies sync`` closes them from
    their outboxes."""
    for trial in trials:
        run_id = trial.user_attrs.get(attrs.MLFLOW_RUN_ID)
        if run_id:
            try:
                client.close_orphan(run_id)  # one cheap read per failed trial
            except TrackingError:
                return  # the server is away: none of the others can be closed either


def fail_orphans(study: optuna.Study, owned: Callable[[FrozenTrial], bool], client: Client) -> None:
    """Fail the RUNNING trials of ``study`` and of its companion study that ``owned``
    picks (those a stopped or killed worker left), and close their MLflow runs."""
    for each in (study, companion_study(study)):
        if each is not None:
            running = each.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            fail_trials(each, [t for t in running if owned(t)], client)


def fail_trials(study: optuna.Study, trials: Sequence[FrozenTrial], client: Client) -> None:
    """Fail ``trials`` of ``study`` (running ones whose worker died) and close their runs."""
    for trial in trials:
        with contextlib.suppress(Exception):  # ended meanwhile, or the storage is away
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    close_runs(trials, client)
