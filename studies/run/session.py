"""What every sweep process opens and closes: the Optuna study, the MLflow experiment and
parent run, the shared runs view, and the parent run's summary at the end.

`run_sweep` and `confirm_sweep` (studies.run.sweep), the local workers' launcher
(studies.workers.launcher) and each worker process (studies.workers.process) start from here, so
that a one-process sweep and N workers open a study the same way.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from studies import attrs
from studies.confirmation import Confirmation, load_confirmation
from studies.home import REPLICATES_DIR, study_dir
from studies.report import export_best, save_study_plots
from studies.report.columns import log_confirmation
from studies.run.objective import Objective
from studies.run.observer import SweepObserver
from studies.run.replicates import ReplicateRunner
from studies.run.runner import SweepRuns
from studies.run.search_space import build_pruner, build_sampler
from studies.run.sync import record_late_run_ids
from studies.store import (
    HEARTBEAT_INTERVAL_S,
    StorageError,
    StudyMismatch,
    StudyRecord,
    as_record,
    companion_study,
    open_storage,
)
from studies.tracking import (
    RunLog,
    RunOutbox,
    Tracker,
    TrackingError,
    find_outboxes,
    flatten_params,
    unsent_runs,
)
from sweeps import SweepSpec, spec_to_yaml

__all__ = [
    "LOSS_CHART_METRICS",
    "ClosedStudy",
    "Closing",
    "OpenSweep",
    "SweepOutcome",
    "SweepTarget",
    "open_sweep",
    "optuna_study",
    "parent_run",
    "replicate_runner",
]

# The built-in trainer's training and validation loss (every loss method reports both:
# trainer.metric_names), drawn on one chart of the sweep's view.
LOSS_CHART_METRICS = ("train/total_loss", "val/total_loss")


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
    # The study as the sweep read it once at its close (companion and late run ids
    # included), and its confirmation (None: none yet): what the CLI prints.
    record: StudyRecord
    confirmation: Confirmation | None = None
    replicates: int = 0  # baseline and confirmation runs this process ended
    # Why the confirmation did not run here (None: it ran, or the spec has none).
    confirmation_skipped: str | None = None
    # Runs whose MLflow logs wait in their outbox (the server was away): `studies sync`.
    unsent: tuple[str, ...] = ()
    # Runs that an earlier process of the sweep left unsent and this one sent.
    earlier_sent: int = 0


def optuna_study(
    spec: SweepSpec, name: str, storage: BaseStorage, *, create: bool, worker: int = 0
) -> optuna.Study:
    """Study ``name`` with the spec's sampler (worker ``worker``'s seed) and pruner:
    created (or loaded where it exists) when ``create``, else loaded."""
    sampler, pruner = build_sampler(spec, worker=worker), build_pruner(spec)
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


def replicate_runner(objective: Objective) -> ReplicateRunner:
    """The runner of the runs beside the search, sharing the objective's references."""
    return ReplicateRunner(objective.runs, objective.trials_dir / REPLICATES_DIR)


@dataclass(frozen=True)
class OpenSweep:
    """A study opened for work, with its experiment, parent run and runs view."""

    study: optuna.Study
    objective: Objective
    parent: RunLog  # the parent run, journalled
    ui_url: str
    # Ended runs whose logs an earlier process left on disk: this one sends them.
    adopted: tuple[RunOutbox, ...] = ()

    @property
    def tracker(self) -> Tracker:
        return self.objective.runs.tracker

    def outcome(
        self,
        closing: Closing,
        *,
        ran: int,
        replicates: int,
        confirmation_skipped: str | None = None,
    ) -> SweepOutcome:
        """What this process did, from what `parent_run` read as the sweep closed."""
        closed = closing.closed
        assert closed is not None, "a sweep's outcome comes after its parent_run closed"
        return SweepOutcome(
            study_name=self.objective.runs.study_name,
            experiment_id=self.objective.runs.experiment_id,
            parent_run_id=self.objective.runs.parent_run_id,
            ran=ran,
            ui_url=self.ui_url,
            record=closed.record,
            confirmation=closed.confirmation,
            replicates=replicates,
            confirmation_skipped=confirmation_skipped,
            unsent=closed.unsent,
            earlier_sent=sum(not o.has_pending() for o in self.adopted),
        )


def open_sweep(
    spec: SweepSpec,
    name: str,
    target: SweepTarget,
    *,
    create: bool,
    observer: SweepObserver | None,
    confirming: bool = False,
) -> OpenSweep:
    """Check the tracking server, open (``create``: or create) study ``name``, its MLflow
    experiment and parent run (recorded on the study), and store the runs view (with the
    confirmation's columns when ``confirming``, the spec confirms or the study has a
    confirmation); tells ``observer`` the view's address. Raises `sweeps.StudyNameError`
    for an unusable ``name`` and `StudyMismatch` for a study launched from another spec,
    before anything is created. The ended runs whose MLflow logs an earlier process of the
    sweep left on disk are sent by this one, in the background."""
    trials_dir = study_dir(target.home, name)
    # Check the server before the storage: a sweep that cannot be tracked creates nothing.
    tracker = Tracker(target.tracking_uri, journal_dir=trials_dir)
    tracker.client.check_reachable()
    storage = open_storage(target.storage_url, heartbeat_interval=target.heartbeat_interval)
    study = optuna_study(spec, name, storage, create=create)
    objective, parent = _prepare(study, spec, tracker, name, trials_dir, observer)
    ui_url = tracker.client.share_sweep_view(
        objective.runs.experiment_id,
        list(spec.searched()),
        spec.objective.metric,
        ascending=spec.objective.direction == "minimize",
        confirming=confirming or spec.confirm is not None or companion_study(study) is not None,
        # The built-in trainer's losses on one chart; a program's metrics are its own.
        loss_metrics=() if spec.is_command() else LOSS_CHART_METRICS,
    )
    if observer is not None:
        observer.sweep_started(ui_url)
    adopted = tuple(tracker.adopt_unsent())
    return OpenSweep(
        study=study, objective=objective, parent=parent, ui_url=ui_url, adopted=adopted
    )


def _prepare(
    study: optuna.Study,
    spec: SweepSpec,
    tracker: Tracker,
    name: str,
    trials_dir: Path,
    observer: SweepObserver | None,
) -> tuple[Objective, RunLog]:
    """Open the experiment and parent run, record them on the study."""
    spec_json = spec.model_dump(mode="json")
    stored = study.user_attrs.get(attrs.SPEC)
    if stored is not None and stored != spec_json:
        raise StudyMismatch(
            f"study {name!r} exists and was launched from a different spec; "
            "run `salsweep sweep resume` to continue it or pick another --study-name"
        )
    experiment_id = tracker.client.ensure_experiment(name)
    params = flatten_params(spec_json, "spec")
    parent = tracker.open_parent(experiment_id, name, params, spec_to_yaml(spec))
    assert parent.run_id is not None  # an attached run has its id
    if stored is None:
        study.set_user_attr(attrs.SPEC, spec_json)
        study.set_user_attr(attrs.OBJECTIVE_METRIC, spec.objective.metric)
        study.set_user_attr(attrs.DIRECTION, spec.objective.direction)
    study.set_user_attr(attrs.MLFLOW_EXPERIMENT_ID, experiment_id)
    study.set_user_attr(attrs.MLFLOW_PARENT_RUN_ID, parent.run_id)
    study.set_user_attr(attrs.MLFLOW_TRACKING_URI, tracker.client.shown_uri)  # no password
    runs = SweepRuns(spec, tracker, experiment_id, parent.run_id, name, observer)
    objective = Objective(runs, trials_dir)
    return objective, parent


@dataclass(frozen=True)
class ClosedStudy:
    """What a sweep reads as it closes, once: the study (with its companion and the late
    run ids), its confirmation, and the names of the runs whose logs still wait on disk."""

    record: StudyRecord
    confirmation: Confirmation | None
    unsent: tuple[str, ...]


@dataclass
class Closing:
    """Filled by `parent_run` when the sweep's work ends without an exception."""

    closed: ClosedStudy | None = None


@contextlib.contextmanager
def parent_run(opened: OpenSweep, observer: SweepObserver | None) -> Iterator[Closing]:
    """Around a sweep's work: on success the study is read once (`ClosedStudy`, left in
    the yielded `Closing`), the summary goes on the parent run and it ends FINISHED; on
    any exit by exception (Ctrl-C included) it ends KILLED, and a tracking error then never
    hides why we are leaving. Either way this process's MLflow outboxes are sent for a
    bounded time; ``observer`` hears when that has to wait."""
    parent = opened.parent
    notice = None if observer is None else observer.tracking_wait
    closing = Closing()
    try:
        yield closing
    except BaseException:
        with contextlib.suppress(TrackingError):
            parent.end_sweep("KILLED", on_wait=notice)
        raise
    record = as_record(opened.study)
    confirmation = load_confirmation(record)
    _summarise(record, confirmation, parent)
    parent.end_sweep("FINISHED", on_wait=notice)
    outboxes = find_outboxes(opened.objective.trials_dir)
    # The runs the server created after their trial ended: named in `studies show`. The
    # sweep's work is done and stored: a storage that fails past its retries now loses
    # only these ids, which `studies sync` records as well.
    with contextlib.suppress(StorageError):
        record, _ = record_late_run_ids(opened.study._storage, record, outboxes)
    closing.closed = ClosedStudy(record, confirmation, tuple(unsent_runs(outboxes)))


def _summarise(record: StudyRecord, confirmation: Confirmation | None, parent: RunLog) -> None:
    """Plots, the confirmation and the best configuration on the parent run."""
    with tempfile.TemporaryDirectory(prefix="salsweep-plots-") as tmp:
        plots = save_study_plots(record, Path(tmp))
        if plots:
            parent.log_artifacts(Path(tmp), "plots")
    if confirmation is not None:
        experiment_id = record.user_attrs.get(attrs.MLFLOW_EXPERIMENT_ID)
        log_confirmation(
            parent,
            confirmation,
            parent.courier.transport.tracking_uri,
            None if experiment_id is None else str(experiment_id),
        )
    try:
        text = export_best(
            record,
            "trainer",
            confirmation=confirmation,
            tracking_uri=parent.courier.transport.tracking_uri,
        )
    except ValueError:
        return  # no completed trial yet: nothing to export
    parent.log_text(text, "best_config.yaml")
