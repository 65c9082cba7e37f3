"""Launch and resume sweeps: the Optuna study, the MLflow parent run, the trial loop.

Several workers may run `launch`/`resume` on one study at once (shared storage and
tracking server): the trial budget is counted in the storage, not per process.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from studies.catalog import StudyMismatch
from studies.export import export_best
from studies.objective import Objective, SweepObserver
from studies.reports import save_study_plots
from studies.search_space import baseline_params, build_pruner, build_sampler
from studies.storage import HEARTBEAT_INTERVAL_S, open_storage
from studies.tracking import Tracker, TrackingError, flatten_params
from sweeps import SweepSpec, spec_to_yaml
from trainer import NonFiniteLoss

__all__ = [
    "COUNTED_STATES",
    "SweepOutcome",
    "SweepTarget",
    "remaining_trials",
    "run_sweep",
]

# Trials that use up the budget; failed ones (a crash, a non-finite loss) do not.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class SweepTarget:
    """Where a sweep keeps its state."""

    storage_url: str
    tracking_uri: str
    home: Path
    # Seconds between a running trial's heartbeats; silent for twice that = stale (died).
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S


@dataclass(frozen=True)
class SweepOutcome:
    study_name: str
    experiment_id: str
    parent_run_id: str
    ran: int
    ui_url: str


def _optuna_study(spec: SweepSpec, name: str, storage: RDBStorage, create: bool) -> optuna.Study:
    sampler, pruner = build_sampler(spec), build_pruner(spec)
    if create:
        return optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=spec.objective.direction,
            load_if_exists=True,
        )
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def remaining_trials(study: optuna.Study, n_trials: int) -> int:
    done = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
    return max(0, n_trials - done)


def _prepare(
    study: optuna.Study,
    spec: SweepSpec,
    tracker: Tracker,
    name: str,
    trials_dir: Path,
    observer: SweepObserver | None,
) -> Objective:
    """Open the experiment and parent run, record them on the study."""
    spec_json = spec.model_dump(mode="json")
    stored = study.user_attrs.get("spec")
    if stored is not None and stored != spec_json:
        raise StudyMismatch(
            f"study {name!r} exists and was launched from a different spec; "
            "run `salsweep sweep resume` to continue it or pick another --study-name"
        )
    experiment_id = tracker.ensure_experiment(name)
    params = flatten_params(spec_json, "spec")
    parent = tracker.find_or_create_parent(experiment_id, name, params, spec_to_yaml(spec))
    if stored is None:
        study.set_user_attr("spec", spec_json)
        study.set_user_attr("objective_metric", spec.objective.metric)
        study.set_user_attr("direction", spec.objective.direction)
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr("mlflow_parent_run_id", parent)
    return Objective(
        spec=spec,
        tracker=tracker,
        experiment_id=experiment_id,
        parent_run_id=parent,
        study_name=name,
        trials_dir=trials_dir,
        observer=observer,
    )


def run_sweep(
    spec: SweepSpec,
    name: str,
    target: SweepTarget,
    *,
    n_trials: int | None = None,
    observer: SweepObserver | None = None,
    create: bool = True,
) -> SweepOutcome:
    """Run the study's remaining trials, then log plots and the best config on the parent.

    ``n_trials`` overrides the spec's budget (total trials of the study, all workers).
    """
    # Check the server before the storage: a sweep that cannot be tracked creates nothing.
    tracker = Tracker(target.tracking_uri)
    tracker.check_reachable()
    storage = open_storage(target.storage_url, heartbeat_interval=target.heartbeat_interval)
    study = _optuna_study(spec, name, storage, create=create)
    objective = _prepare(study, spec, tracker, name, target.home / "studies" / name, observer)
    if observer is not None:
        observer.sweep_started(tracker.experiment_ui_url(objective.experiment_id))
    budget = n_trials if n_trials is not None else spec.budget.n_trials

    baseline = baseline_params(spec)
    if baseline is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(baseline.params, user_attrs=baseline.user_attrs)

    _close_dead_trials(study, tracker)
    todo = remaining_trials(study, budget)
    try:
        if todo:
            study.optimize(
                objective,
                n_trials=todo,
                timeout=spec.budget.timeout,
                catch=(NonFiniteLoss,),
                callbacks=[MaxTrialsCallback(budget, states=COUNTED_STATES)],
                gc_after_trial=True,
            )
    except BaseException:
        # Close the parent on the way out, but never let that hide why we are leaving.
        with contextlib.suppress(TrackingError):
            tracker.end_parent(objective.parent_run_id, "KILLED")
        raise
    _summarise(study, tracker, objective.parent_run_id)
    tracker.end_parent(objective.parent_run_id, "FINISHED")
    return SweepOutcome(
        study_name=name,
        experiment_id=objective.experiment_id,
        parent_run_id=objective.parent_run_id,
        ran=objective.finished,
        ui_url=tracker.experiment_ui_url(objective.experiment_id),
    )


def _close_dead_trials(study: optuna.Study, tracker: Tracker) -> None:
    """Fail the trials whose worker died (no heartbeat) and close their MLflow runs.

    Optuna re-queues each such trial once (see studies.storage); its MLflow run would
    otherwise stay RUNNING forever.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            tracker.close_orphan(run_id)  # one cheap read per failed trial and launch


def _summarise(study: optuna.Study, tracker: Tracker, parent_run_id: str) -> None:
    """Plots and the best configuration on the parent run."""
    with tempfile.TemporaryDirectory(prefix="salsweep-plots-") as tmp:
        plots = save_study_plots(study, Path(tmp))
        if plots:
            tracker.log_artifacts(parent_run_id, Path(tmp), "plots")
    try:
        text = export_best(study, "trainer")
    except ValueError:
        return  # no completed trial yet: nothing to export
    tracker.log_text(parent_run_id, text, "best_config.yaml")
