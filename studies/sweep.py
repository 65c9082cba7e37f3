"""Launch and resume sweeps: the Optuna study, the MLflow parent run, the trial loop, and
the runs beside it (the SSI baseline before the search, the confirmation after it).

Several workers may run `launch`/`resume` on one study at once (shared storage and
tracking server): the trial budget is counted in the storage, not per process; the
baseline run and each confirmation replicate are claimed from a queue in the storage, and
the worker that finishes the search last confirms (one that finishes while another's
trials still run leaves the confirmation to it).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from studies.catalog import StudyMismatch, stored_spec
from studies.confirm import (
    ReplicateRunner,
    baseline_search_job,
    confirmation_jobs,
    run_jobs,
    top_trials,
)
from studies.confirm_report import (
    confirmation_csv,
    confirmation_markdown,
    confirmation_metrics,
    save_confirmation_plot,
)
from studies.export import export_best
from studies.objective import Objective, SweepObserver, close_dead_trials
from studies.reports import save_study_plots
from studies.search_space import build_pruner, build_sampler
from studies.storage import HEARTBEAT_INTERVAL_S, open_storage
from studies.tracking import Tracker, TrackingError, flatten_params
from studies.verdict import ConfirmError, load_confirmation
from sweeps import ConfirmSpec, SweepSpec, spec_to_yaml
from trainer import NonFiniteLoss

__all__ = [
    "COUNTED_STATES",
    "SweepOutcome",
    "SweepTarget",
    "confirm_sweep",
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
    ran: int  # search trials this process ended
    ui_url: str
    replicates: int = 0  # baseline and confirmation runs this process ended
    # Why the confirmation did not run here (None: it ran, or the spec has none).
    confirmation_skipped: str | None = None


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


def _runner(objective: Objective) -> ReplicateRunner:
    """The runner of the runs beside the search, sharing the objective's references."""
    return ReplicateRunner(
        spec=objective.spec,
        tracker=objective.tracker,
        experiment_id=objective.experiment_id,
        parent_run_id=objective.parent_run_id,
        study_name=objective.study_name,
        runs_dir=objective.trials_dir / "replicates",
        observer=objective.observer,
    )


def _still_running(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def run_sweep(
    spec: SweepSpec,
    name: str,
    target: SweepTarget,
    *,
    n_trials: int | None = None,
    observer: SweepObserver | None = None,
    create: bool = True,
) -> SweepOutcome:
    """Run the SSI baseline (once), the study's remaining trials and the confirmation
    (when the spec has one), then log plots, the confirmation and the best config on the
    parent run.

    ``n_trials`` overrides the spec's budget (total search trials of the study, all workers).
    """
    # Check the server before the storage: a sweep that cannot be tracked creates nothing.
    tracker = Tracker(target.tracking_uri)
    tracker.check_reachable()
    storage = open_storage(target.storage_url, heartbeat_interval=target.heartbeat_interval)
    study = _optuna_study(spec, name, storage, create=create)
    objective = _prepare(study, spec, tracker, name, target.home / "studies" / name, observer)
    ui_url = _share_view(tracker, objective.experiment_id, spec)
    if observer is not None:
        observer.sweep_started(ui_url)
    budget = n_trials if n_trials is not None else spec.budget.n_trials

    runner = _runner(objective)
    skipped: str | None = None
    try:
        if spec.baseline:
            # Before the search, outside the study: the sampler never sees its score.
            run_jobs(study, [baseline_search_job(spec)], runner)
        close_dead_trials(study, tracker)
        todo = remaining_trials(study, budget)
        if todo:
            study.optimize(
                objective,
                n_trials=todo,
                timeout=spec.budget.timeout,
                catch=(NonFiniteLoss,),
                callbacks=[MaxTrialsCallback(budget, states=COUNTED_STATES)],
                gc_after_trial=True,
            )
        if spec.confirm is not None:
            running = _still_running(study)
            if running:
                skipped = (
                    f"{running} search trial(s) still running in other workers: the last "
                    "worker confirms (or run `salsweep studies confirm`)"
                )
            elif not _confirm(study, spec, spec.confirm, runner):
                skipped = "no complete search trial to confirm"
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
        ui_url=ui_url,
        replicates=runner.finished,
        confirmation_skipped=skipped,
    )


def _share_view(tracker: Tracker, experiment_id: str, spec: SweepSpec) -> str:
    """Store the sweep's runs view (searched params and objective as columns, best first)
    on the experiment; returns the address that opens it."""
    return tracker.share_sweep_view(
        experiment_id,
        list(spec.searched()),
        spec.objective.metric,
        ascending=spec.objective.direction == "minimize",
    )


def _confirm(
    study: optuna.Study, spec: SweepSpec, confirm: ConfirmSpec, runner: ReplicateRunner
) -> bool:
    """Run the confirmation's missing replicates; False when no search trial is complete."""
    if not top_trials(study, 1):
        return False
    run_jobs(study, confirmation_jobs(study, spec, confirm.top_k, confirm.seeds), runner)
    return True


def confirm_sweep(
    name: str,
    target: SweepTarget,
    *,
    top_k: int | None = None,
    seeds: int | None = None,
    observer: SweepObserver | None = None,
) -> SweepOutcome:
    """Confirm the finished study ``name``: its top ``top_k`` configurations and the
    baseline, each with ``seeds`` further training seeds (default: the spec's ``confirm``,
    else 3 and 3). Runs only the replicates not done yet; logs the confirmation on the
    parent run."""
    tracker = Tracker(target.tracking_uri)
    tracker.check_reachable()
    spec = stored_spec(name, target.storage_url)
    defaults = spec.confirm or ConfirmSpec()
    confirm = ConfirmSpec(
        top_k=defaults.top_k if top_k is None else top_k,
        seeds=defaults.seeds if seeds is None else seeds,
    )
    study = _optuna_study(
        spec,
        name,
        open_storage(target.storage_url, heartbeat_interval=target.heartbeat_interval),
        create=False,
    )
    objective = _prepare(study, spec, tracker, name, target.home / "studies" / name, observer)
    ui_url = _share_view(tracker, objective.experiment_id, spec)
    if observer is not None:
        observer.sweep_started(ui_url)
    runner = _runner(objective)
    try:
        if not _confirm(study, spec, confirm, runner):
            raise ConfirmError(f"study {name!r} has no complete search trial to confirm yet")
    except BaseException:
        with contextlib.suppress(TrackingError):
            tracker.end_parent(objective.parent_run_id, "KILLED")
        raise
    _summarise(study, tracker, objective.parent_run_id)
    tracker.end_parent(objective.parent_run_id, "FINISHED")
    return SweepOutcome(
        study_name=name,
        experiment_id=objective.experiment_id,
        parent_run_id=objective.parent_run_id,
        ran=0,
        ui_url=ui_url,
        replicates=runner.finished,
    )


def _summarise(study: optuna.Study, tracker: Tracker, parent_run_id: str) -> None:
    """Plots, the confirmation and the best configuration on the parent run."""
    with tempfile.TemporaryDirectory(prefix="salsweep-plots-") as tmp:
        plots = save_study_plots(study, Path(tmp))
        if plots:
            tracker.log_artifacts(parent_run_id, Path(tmp), "plots")
    confirmation = load_confirmation(study)
    if confirmation is not None:
        with tempfile.TemporaryDirectory(prefix="salsweep-confirm-") as tmp:
            folder = Path(tmp)
            (folder / "confirmation.md").write_text(confirmation_markdown(confirmation))
            (folder / "confirmation.csv").write_text(confirmation_csv(confirmation))
            save_confirmation_plot(confirmation, folder / "confirmation.png")
            tracker.log_artifacts(parent_run_id, folder, None)
        tracker.log_epoch(parent_run_id, 0, confirmation_metrics(confirmation))
    try:
        text = export_best(study, "trainer")
    except ValueError:
        return  # no completed trial yet: nothing to export
    tracker.log_text(parent_run_id, text, "best_config.yaml")
