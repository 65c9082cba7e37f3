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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from studies import attrs
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
from sweeps import ConfirmSpec, StudyNameError, SweepSpec, check_study_name, spec_to_yaml
from trainer import NonFiniteLoss

__all__ = [
    "COUNTED_STATES",
    "SweepDiverged",
    "SweepOutcome",
    "SweepTarget",
    "confirm_sweep",
    "remaining_trials",
    "run_sweep",
    "study_dir",
    "trial_budget",
]

# Trials that use up the budget; failed ones (a crash, a non-finite loss) do not.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


class SweepDiverged(NonFiniteLoss):
    """The sweep stopped: its last ``count`` trials in a row ended with a non-finite loss
    (``epoch``, ``step``, ``value``: the last one's). Without this bound a search space
    that always diverges would start trials forever, since failed trials use no budget."""

    def __init__(self, study_name: str, count: int, last: NonFiniteLoss) -> None:
        super().__init__(last.epoch, last.step, last.value)
        self.study_name = study_name
        self.count = count
        self.args = (
            f"study {study_name!r} stopped: {count} trials in a row failed, the last with a "
            f"{last}; narrow the search space, then `salsweep sweep resume {study_name}`",
        )


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
    # Runs whose MLflow logs wait in their outbox (the server was away): `studies sync`.
    unsent: tuple[str, ...] = ()


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
    """Trials still to finish (COMPLETE or PRUNED) before the study has ``n_trials``."""
    done = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
    return max(0, n_trials - done)


def trial_budget(
    study: optuna.Study, spec: SweepSpec, n_trials: int | None, *, create: bool
) -> int:
    """The study's budget (search trials, all workers) and record it on the study.

    ``n_trials`` when given; else a launch (``create``) takes the spec's, and a resume the
    one stored by the launch (or by the last resume given ``n_trials``), falling back on
    the spec's for a study that has none stored.
    """
    stored = study.user_attrs.get(attrs.BUDGET)
    if n_trials is not None:
        budget = n_trials
    elif not create and isinstance(stored, int):
        budget = stored
    else:
        budget = spec.budget.n_trials
    if stored != budget:
        study.set_user_attr(attrs.BUDGET, budget)
    return budget


def study_dir(home: Path, name: str) -> Path:
    """``<home>/studies/<name>``: the folder of a study's trial outputs. Raises
    `sweeps.StudyNameError` for a name that is not a plain folder name, or whose folder
    would resolve outside the data dir (a symbolic link named like the study)."""
    check_study_name(name)
    root = (home / "studies").resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise StudyNameError(name, f"its folder {folder} is outside the data dir {home}")
    return home / "studies" / name


class _FailureStreak:
    """Optuna callback: stops the study after ``limit`` trials in a row of this process
    FAILED; ``tripped`` says that it did."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.count += 1
            if self.count >= self.limit:
                self.tripped = True
                study.stop()
        elif trial.state in COUNTED_STATES:
            self.count = 0


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
    stored = study.user_attrs.get(attrs.SPEC)
    if stored is not None and stored != spec_json:
        raise StudyMismatch(
            f"study {name!r} exists and was launched from a different spec; "
            "run `salsweep sweep resume` to continue it or pick another --study-name"
        )
    experiment_id = tracker.ensure_experiment(name)
    params = flatten_params(spec_json, "spec")
    parent = tracker.find_or_create_parent(experiment_id, name, params, spec_to_yaml(spec))
    if stored is None:
        study.set_user_attr(attrs.SPEC, spec_json)
        study.set_user_attr(attrs.OBJECTIVE_METRIC, spec.objective.metric)
        study.set_user_attr(attrs.DIRECTION, spec.objective.direction)
    study.set_user_attr(attrs.MLFLOW_EXPERIMENT_ID, experiment_id)
    study.set_user_attr(attrs.MLFLOW_PARENT_RUN_ID, parent)
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

    The budget (see `trial_budget`: ``n_trials``, else the spec's on a launch and the
    stored one on a resume) counts the study's COMPLETE and PRUNED trials, all workers
    together: a trial that fails (non-finite loss) is replaced by another. After as many
    failures in a row as the budget, the sweep stops with `SweepDiverged`.
    Raises `sweeps.StudyNameError` for an unusable ``name`` before anything is created.
    """
    trials_dir = study_dir(target.home, name)
    # Check the server before the storage: a sweep that cannot be tracked creates nothing.
    tracker = Tracker(target.tracking_uri, journal_dir=trials_dir)
    tracker.check_reachable()
    storage = open_storage(target.storage_url, heartbeat_interval=target.heartbeat_interval)
    study = _optuna_study(spec, name, storage, create=create)
    objective = _prepare(study, spec, tracker, name, trials_dir, observer)
    ui_url = _share_view(tracker, objective.experiment_id, spec)
    if observer is not None:
        observer.sweep_started(ui_url)
    budget = trial_budget(study, spec, n_trials, create=create)

    runner = _runner(objective)
    skipped: str | None = None
    with _parent_run(study, tracker, objective.parent_run_id):
        if spec.baseline:
            # Before the search, outside the study: the sampler never sees its score.
            run_jobs(study, [baseline_search_job(spec)], runner)
        close_dead_trials(study, tracker)
        _search(study, objective, budget, spec.budget.timeout)
        if spec.confirm is not None:
            running = _still_running(study)
            if running:
                skipped = (
                    f"{running} search trial(s) still running in other workers: the last "
                    "worker confirms (or run `salsweep studies confirm`)"
                )
            elif not _confirm(study, spec, spec.confirm, runner):
                skipped = "no complete search trial to confirm"
    return SweepOutcome(
        study_name=name,
        experiment_id=objective.experiment_id,
        parent_run_id=objective.parent_run_id,
        ran=objective.finished,
        ui_url=ui_url,
        replicates=runner.finished,
        confirmation_skipped=skipped,
        unsent=tuple(tracker.unsent_runs()),
    )


def _search(study: optuna.Study, objective: Objective, budget: int, timeout: float | None) -> None:
    """Run trials until the study has ``budget`` COMPLETE or PRUNED ones (Optuna's
    ``n_trials`` would count failed ones too), ``timeout`` seconds have passed, or
    ``budget`` trials in a row failed (then raises `SweepDiverged`)."""
    if not remaining_trials(study, budget):
        return
    streak = _FailureStreak(limit=budget)
    study.optimize(
        objective,
        n_trials=None,  # MaxTrialsCallback ends the loop: the budget counts finished trials
        timeout=timeout,
        catch=(NonFiniteLoss,),
        callbacks=[MaxTrialsCallback(budget, states=COUNTED_STATES), streak],
        gc_after_trial=True,
    )
    if streak.tripped:
        assert objective.last_failure is not None  # only NonFiniteLoss is caught
        raise SweepDiverged(study.study_name, streak.count, objective.last_failure)


@contextlib.contextmanager
def _parent_run(study: optuna.Study, tracker: Tracker, parent_run_id: str) -> Iterator[None]:
    """Around a sweep's work: on success the summary goes on the parent run and it ends
    FINISHED; on any exit by exception (Ctrl-C included) it ends KILLED, and a tracking
    error then never hides why we are leaving."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(TrackingError):
            tracker.end_parent(parent_run_id, "KILLED")
        raise
    _summarise(study, tracker, parent_run_id)
    tracker.end_parent(parent_run_id, "FINISHED")


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
    trials_dir = study_dir(target.home, name)
    tracker = Tracker(target.tracking_uri, journal_dir=trials_dir)
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
    objective = _prepare(study, spec, tracker, name, trials_dir, observer)
    ui_url = _share_view(tracker, objective.experiment_id, spec)
    if observer is not None:
        observer.sweep_started(ui_url)
    runner = _runner(objective)
    with _parent_run(study, tracker, objective.parent_run_id):
        if not _confirm(study, spec, confirm, runner):
            raise ConfirmError(f"study {name!r} has no complete search trial to confirm yet")
    return SweepOutcome(
        study_name=name,
        experiment_id=objective.experiment_id,
        parent_run_id=objective.parent_run_id,
        ran=0,
        ui_url=ui_url,
        replicates=runner.finished,
        unsent=tuple(tracker.unsent_runs()),
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
