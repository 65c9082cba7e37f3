"""A sweep run by worker jobs (``salsweep sweep launch SPEC --executor slurm --workers N``,
``sweep resume``, ``studies confirm``): the launcher, which stays attached.

Over 400 lines: one coordinator (`_Launcher`) whose loop, budget, phases, job watching and
stop path share their state, as the local workers' launcher's do; its job queue, phases,
worker and display are modules of their own (studies.cluster).

As with local workers (studies.workers.launcher), the launcher creates the study, the
MLflow parent run, the budget and the baseline's job before any worker starts; then it
submits N jobs (studies.cluster.queue), each running a `studies.cluster.worker.JobWorker`
that takes its work from the storage. The launcher steers them through the storage only:

- the budget: it queues one search trial per trial it grants, while COMPLETE + PRUNED +
  running + queued trials stay within the budget (a trial that fails, or whose worker
  died, frees its place) and at most one per live job waits; a job never starts a trial
  that was not granted, so the study ends with exactly its budget;
- failures in a row (diverged trials) stop the sweep at the budget, as in one process;
- dead trials: every few seconds it fails the trials whose worker died (a stale
  heartbeat, or none at all past the grace period) and closes their MLflow runs; Optuna
  queues each once again with its values;
- the phases: search, then the confirmation's replicates (queued by a ``next_round``
  callable: it returns the replicate jobs of the next round, given the study; the
  launcher queues them, waits until none is queued or running, and asks again; a round
  that queues nothing ends the sweep), then ``end`` (studies.cluster.phase);
- the jobs: a job that ended early (time limit, preemption, SIGKILL, a lost node) is
  submitted again, up to ``resubmits`` times per worker; one whose worker failed (an
  error) stops the sweep with that error and its log; one requeued by Slurm itself is
  still queued and left alone;
- one display, read from the storage (studies.cluster.progress).

Ctrl-C (or SIGTERM) of the launcher cancels every job (each worker fails its running trial
and closes its MLflow run), waits until the queue lists none of them, fails what they left
RUNNING, and ends the parent run KILLED: ``salsweep sweep resume NAME --executor slurm``
continues. What Ctrl-C left queued (at most one search trial per job) is taken first then.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from studies import attrs
from studies.cluster.checks import ClusterError
from studies.cluster.phase import BEAT_S, Phase, say
from studies.cluster.progress import Counts, Progress, count_search
from studies.cluster.queue import JobQueue, SubmittedJob, outcome
from studies.cluster.worker import JobWorker
from studies.confirmation import ConfirmError
from studies.home import study_dir
from studies.run import (
    CommandFailed,
    SweepDiverged,
    SweepObserver,
    SweepOutcome,
    SweepTarget,
    baseline_search_job,
    close_dead_trials,
    enqueue_jobs,
    fail_orphans,
    next_confirmation_jobs,
    open_sweep,
    parent_run,
    start_race,
    top_trials,
    trial_budget,
)
from studies.run.race_rounds import NOTHING_TO_CONFIRM
from studies.run.replicates import ReplicateJob
from studies.run.signals import check_stop
from studies.store import companion_study, stored_spec
from studies.tracking import Tracker
from studies.tracking.layout import TRIAL_TAG
from studies.workers.settings import WorkerSettings
from sweeps import ConfirmSpec, SweepSpec

__all__ = [
    "ClusterRun",
    "NextRound",
    "grant",
    "race_rounds",
    "run_cluster",
    "run_cluster_confirmation",
]

# Seconds between two looks at the storage (the display, the budget) ...
POLL_S = 1.0
# ... at the queue (squeue) ...
QUEUE_S = 3.0
# ... and between two searches for dead trials.
DEAD_S = 5.0
# Seconds the jobs have to leave the queue after the sweep's end (they send their MLflow
# logs first) or after a cancel (the cluster's KillWait, 30 s by default, included).
END_WAIT_S = 180.0
STOP_WAIT_S = 90.0

NextRound = Callable[[optuna.Study], Sequence[ReplicateJob]]
_RUNNING = (TrialState.RUNNING,)
_FAIL = (TrialState.FAIL,)


def race_rounds(spec: SweepSpec, confirm: ConfirmSpec) -> NextRound:
    """The confirmation's race (studies.run.race_rounds), round by round: the first call
    starts it (its design and candidates fixed on the companion study, or the race a
    launch started before), each call returns the jobs of its next round, read from the
    stored replicates; none once it is decided."""

    def next_round(study: optuna.Study) -> Sequence[ReplicateJob]:
        if start_race(study, spec, confirm) is None:
            return []
        return next_confirmation_jobs(study, spec)

    return next_round


def grant(budget: int, counts: Counts, capacity: int) -> int:
    """Search trials to queue now. The budget counts the done, running and queued trials;
    failures in a row plus running and queued trials stay below it (a sweep whose every
    trial diverges stops after exactly ``budget`` of them, as one process does); at most
    ``capacity`` wait at once (one per live job: what a stop leaves queued)."""
    busy = counts.running + counts.waiting
    room = min(budget - counts.done - busy, budget - counts.streak - busy)
    return max(0, min(room, capacity - counts.waiting))


@dataclass
class _Slot:
    """A worker: its current job and how often it was submitted again."""

    index: int
    job: SubmittedJob | None = None
    resubmitted: int = 0
    retired: bool = False  # ended for good (done, or out of resubmits)


@dataclass
class _Totals:
    confirmation_skipped: str | None = None
    failures: list[str] = field(default_factory=list)
    jobs: list[SubmittedJob] = field(default_factory=list)


class _Launcher:
    """Submits the jobs, steers them through the storage, shows their progress, stops them."""

    def __init__(
        self,
        study: optuna.Study,
        tracker: Tracker,
        queue: JobQueue,
        settings: WorkerSettings,
        *,
        workers: int,
        threads: int,
        resubmits: int,
        budget: int,
        phase: Phase,
        timeout: float | None,
        next_round: NextRound | None,
        progress: Progress,
        say_line: Callable[[str], None],
    ) -> None:
        self.study = study
        self.study_id = study._study_id
        self.storage = study._storage
        self.tracker = tracker
        self.queue = queue
        self.settings = settings
        self.threads = threads
        self.resubmits = resubmits
        self.budget = budget
        self.phase: Phase = phase
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.next_round = next_round
        self.progress = progress
        self.say_line = say_line
        self.slots = [_Slot(i) for i in range(workers)]
        self.totals = _Totals()
        self.counts = Counts()
        self._said = 0.0
        self._looked_at_queue = 0.0
        self._looked_for_dead = 0.0
        self._end_at: float | None = None
        # (study name, trial number) of the failed trials whose runs are closed (or were
        # failed before this launch: an earlier launch saw to them).
        self._closed: set[tuple[str, int]] = set()

    # -------------------------------------------------------------- run

    def run(self) -> _Totals:
        try:
            self._say(self.phase)
            self._look()
            for study in (self.study, companion_study(self.study)):
                if study is not None:
                    failed = study.get_trials(deepcopy=False, states=_FAIL)
                    self._closed |= {(study.study_name, t.number) for t in failed}
            # Decide once before submitting: the first trials are queued before any job
            # starts, and a sweep with nothing left to do submits nothing.
            if self.phase == "search":
                self._steer_search()
            else:
                self._next_round()
            if self.phase == "end":
                return self.totals
            for slot in self.slots:
                self._submit(slot)
            while not self._finished():
                check_stop()  # a stop signal whose exception was lost (studies.run.signals)
                self._step()
                time.sleep(POLL_S)
        except BaseException:
            self._stop()
            raise
        return self.totals

    def _step(self) -> None:
        now = time.monotonic()
        if now - self._said >= BEAT_S:
            self._say(self.phase)
        if now - self._looked_for_dead >= DEAD_S:
            self._looked_for_dead = now
            self._close_dead()
        self._look()
        if self.phase == "search":
            self._steer_search()
        if self.phase == "confirm":
            self._steer_confirmation()
        if now - self._looked_at_queue >= QUEUE_S or self.phase == "end":
            self._looked_at_queue = now
            self._watch_jobs()
        if self.totals.failures:
            raise ClusterError("; ".join(self.totals.failures))

    def _finished(self) -> bool:
        if self.phase != "end":
            return False
        live = [s.job for s in self.slots if s.job is not None and not s.retired]
        if not live:
            return True
        if self._end_at is None:
            self._end_at = time.monotonic()
        if time.monotonic() - self._end_at > END_WAIT_S:
            self.say_line(
                f"{len(live)} job(s) still queued or running {END_WAIT_S:.0f} s after the "
                "sweep's end: cancelled"
            )
            self.queue.cancel(live)
            return True
        return False

    # -------------------------------------------------------------- the storage

    def _say(self, phase: Phase) -> None:
        self.phase = phase
        say(self.storage, self.study_id, phase)
        self._said = time.monotonic()

    def _look(self) -> None:
        """Read the studies: the display, and the counts the steering decides by."""
        trials = self.study.get_trials(deepcopy=False)
        self.counts = count_search(trials)
        self.progress.search(trials)
        companion = companion_study(self.study)
        if companion is not None:
            self.progress.replicates_of(companion.get_trials(deepcopy=False))

    def _close_dead(self) -> None:
        """Fail the trials whose worker died (a stale heartbeat, or none past the grace
        period: Optuna queues each once again), and close the runs of the trials failed
        since the last look (`close_dead_trials` reads every failed trial's run: fit for
        once per launch, not every few seconds)."""
        for study in (self.study, companion_study(self.study)):
            if study is not None and study.get_trials(deepcopy=False, states=_RUNNING):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
        self._close_failed_runs()

    # -------------------------------------------------------------- the phases

    @property
    def diverged(self) -> bool:
        return self.counts.streak >= self.budget

    def _steer_search(self) -> None:
        counts = self.counts
        if self.diverged:
            raise SweepDiverged(
                self.study.study_name, counts.streak, CommandFailed(counts.last_failure or "")
            )
        timed_out = self.deadline is not None and time.monotonic() >= self.deadline
        if not timed_out:
            live = sum(1 for s in self.slots if not s.retired)
            for _ in range(grant(self.budget, counts, live)):
                self.study.enqueue_trial({}, skip_if_exists=False)
        if counts.running or counts.waiting:
            return  # a running trial may fail and need a replacement; queued ones run
        if counts.done >= self.budget or timed_out:
            self._end_search()

    def _end_search(self) -> None:
        if self.next_round is None:
            self._say("end")
            return
        if not top_trials(self.study, 1):
            self.totals.confirmation_skipped = NOTHING_TO_CONFIRM
            self._say("end")
            return
        self._say("confirm")
        self._next_round()

    def _steer_confirmation(self) -> None:
        companion = companion_study(self.study)
        if companion is not None:
            busy = companion.get_trials(
                deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)
            )
            if busy:
                return
        self._next_round()

    def _next_round(self) -> None:
        """Queue the next round's replicates; none queued: the sweep ends."""
        assert self.next_round is not None
        spec = self._spec()
        jobs = list(self.next_round(self.study))
        companion = enqueue_jobs(self.study, jobs, spec, self.tracker)
        if not companion.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            self._say("end")

    def _spec(self) -> SweepSpec:
        from sweeps import parse_spec

        return parse_spec(self.study.user_attrs[attrs.SPEC], f"study {self.study.study_name}")

    # -------------------------------------------------------------- the jobs

    def _submit(self, slot: _Slot) -> None:
        settings = self.settings.for_worker(slot.index, self.threads)
        job = self.queue.submit(JobWorker(settings.to_json()), slot.index)
        slot.job = job
        self.totals.jobs.append(job)
        self.say_line(
            f"worker {slot.index}: {self.queue.kind} job {job.job_id} (output {job.stdout}, "
            f"errors {job.stderr})"
        )

    def _watch_jobs(self) -> None:
        current = [s.job for s in self.slots if s.job is not None and not s.retired]
        alive = self.queue.live(current)
        for slot in self.slots:
            job = slot.job
            if job is None or slot.retired or job.job_id in alive:
                continue
            self._ended(slot, job)
        if self.phase != "end" and all(s.retired for s in self.slots):
            raise ClusterError(
                "every worker job has ended and none may be submitted again; the sweep is "
                "not over: see the jobs' logs, then `salsweep sweep resume "
                f"{self.study.study_name} --executor {self.queue.kind}`"
            )

    def _ended(self, slot: _Slot, job: SubmittedJob) -> None:
        ended = outcome(job)
        if ended.kind == "error":
            slot.retired = True
            self.totals.failures.append(
                f"worker {slot.index} (job {job.job_id}) failed: {_last_line(ended.text)} "
                f"(its log: {job.stderr})"
            )
            return
        if self.phase == "end":
            slot.retired = True
            return
        why = "returned" if ended.kind == "done" else "was stopped (time limit, preemption, kill)"
        if slot.resubmitted >= self.resubmits:
            slot.retired = True
            self.say_line(
                f"worker {slot.index}: job {job.job_id} {why}; no resubmit left "
                f"({self.resubmits} used)"
            )
            return
        slot.resubmitted += 1
        self.say_line(
            f"worker {slot.index}: job {job.job_id} {why} before the sweep's end: "
            f"submitting it again ({slot.resubmitted} of {self.resubmits})"
        )
        self._submit(slot)

    # -------------------------------------------------------------- stopping

    def _stop(self) -> None:
        """Cancel every job, wait until the queue lists none, fail what they left running."""
        with contextlib.suppress(Exception):
            self._say("end")  # a job that outlives the cancel takes no more work
        jobs = [s.job for s in self.slots if s.job is not None and not s.retired]
        if not jobs:
            return
        with contextlib.suppress(Exception):
            self.queue.cancel(jobs)
        deadline = time.monotonic() + STOP_WAIT_S
        alive: set[str] = {j.job_id for j in jobs}
        while alive and time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the display must not stop the stop
                self._look()
                alive = self.queue.live(jobs)
            if alive:
                time.sleep(0.5)
        if alive:
            self.say_line(f"job(s) {', '.join(sorted(alive))} still listed after the cancel")
        with contextlib.suppress(Exception):
            self._fail_orphans({j.job_id for j in self.totals.jobs})
            self._close_failed_runs()
            self._look()

    def _fail_orphans(self, job_ids: set[str]) -> None:
        """Fail the trials (search and companion) that the cancelled jobs left RUNNING, and
        close their MLflow runs (else the heartbeat would, a grace period later)."""
        fail_orphans(
            self.study, lambda t: str(t.user_attrs.get(attrs.JOB)) in job_ids, self.tracker.client
        )

    def _close_failed_runs(self) -> None:
        """Close the MLflow runs left RUNNING by the trials that failed since the last look
        (a worker stopped or killed, a trial failed by its heartbeat). A worker stopped by
        a signal closes its run itself, except when the signal lands as the trial opens its
        run: then the run is found here, by the trial's record or, for a search trial that
        never recorded it, by its tag."""
        client = self.tracker.client
        for study in (self.study, companion_study(self.study)):
            if study is None:
                continue
            for trial in study.get_trials(deepcopy=False, states=_FAIL):
                key = (study.study_name, trial.number)
                if key in self._closed:
                    continue
                self._closed.add(key)
                with contextlib.suppress(Exception):  # the server away: `studies sync`
                    run_id = trial.user_attrs.get(attrs.MLFLOW_RUN_ID)
                    if run_id is None and study is self.study:
                        run_id = client.find_run(
                            self.settings.experiment_id, TRIAL_TAG, str(trial.number)
                        )
                    if run_id:
                        client.close_orphan(str(run_id))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _line_to(observer: SweepObserver | None) -> Callable[[str], None]:
    log = getattr(observer, "log", None)
    if callable(log):
        return lambda line: log(line)
    return lambda line: print(line, file=sys.stderr, flush=True)


def _observers(
    observer: SweepObserver | None,
    worker_observer: Callable[[int], SweepObserver | None] | None,
    slots: Callable[[], Sequence[SubmittedJob]],
) -> Callable[[str | None], SweepObserver | None]:
    """The observer of the worker whose job is ``job id`` (``observer`` for an unknown
    job)."""
    made: dict[int, SweepObserver | None] = {}

    def observer_for(job: str | None) -> SweepObserver | None:
        if job is None or worker_observer is None:
            return observer
        for submitted in slots():
            if submitted.job_id == job:
                if submitted.index not in made:
                    made[submitted.index] = worker_observer(submitted.index)
                return made[submitted.index]
        return observer

    return observer_for


@dataclass(frozen=True)
class ClusterRun:
    """Where the jobs run and what each gets."""

    queue: JobQueue
    workers: int
    threads: int = 1
    resubmits: int = 3


def _settings(target: SweepTarget, name: str, experiment_id: str, parent: str) -> WorkerSettings:
    return WorkerSettings(
        study=name,
        storage=target.storage_url,
        tracking=target.tracking_uri,
        home=Path(target.home).resolve(),  # the jobs' working folder may be another
        heartbeat=target.heartbeat_interval,
        experiment_id=experiment_id,
        parent_run_id=parent,
        parent_pid=0,  # none: a job outlives no process; the launcher's word says when to end
    )


def _epochs(spec: SweepSpec) -> int:
    try:
        return spec.max_epochs()
    except ValueError:
        return 0


def run_cluster(
    spec: SweepSpec,
    name: str,
    target: SweepTarget,
    cluster: ClusterRun,
    *,
    n_trials: int | None = None,
    observer: SweepObserver | None = None,
    worker_observer: Callable[[int], SweepObserver | None] | None = None,
    create: bool = True,
    next_round: NextRound | None = None,
) -> SweepOutcome:
    """`studies.run_sweep` with the trials and replicates run by worker jobs (see the
    module). ``next_round``: the confirmation's rounds (default: `race_rounds` of the
    spec's ``confirm``; none without one)."""
    opened = open_sweep(spec, name, target, create=create, observer=observer)
    study, tracker, objective = opened.study, opened.tracker, opened.objective
    budget = trial_budget(study, spec, n_trials, create=create)
    settings = _settings(target, name, objective.runs.experiment_id, objective.runs.parent_run_id)
    if next_round is None and spec.confirm is not None:
        next_round = race_rounds(spec, spec.confirm)
    launcher: _Launcher | None = None
    with parent_run(opened, observer) as closing:
        if spec.baseline:
            enqueue_jobs(study, [baseline_search_job(spec)], spec, tracker)
        close_dead_trials(study, tracker)
        launcher = _launcher(
            study,
            tracker,
            cluster,
            settings,
            budget,
            "search",
            spec,
            next_round,
            observer,
            worker_observer,
        )
        totals = launcher.run()
    return opened.outcome(
        closing,
        ran=launcher.progress.ran,
        replicates=launcher.progress.replicates,
        confirmation_skipped=totals.confirmation_skipped,
    )


def run_cluster_confirmation(
    name: str,
    target: SweepTarget,
    cluster: ClusterRun,
    *,
    design: Mapping[str, Any] | None = None,
    observer: SweepObserver | None = None,
    worker_observer: Callable[[int], SweepObserver | None] | None = None,
    next_round: NextRound | None = None,
) -> SweepOutcome:
    """`studies.confirm_sweep` with the replicates run by worker jobs: the race of study
    ``name`` with ``design`` (the ``confirm`` keys given: top_k, initial_seeds, max_seeds,
    indifference_zone, alpha; the others the spec's, else the defaults), or the race it
    started. Raises `ConfirmError` with no complete search trial, or for a bad design."""
    study_dir(target.home, name)  # a name that is a path: refused before anything is read
    spec = stored_spec(name, target.storage_url)
    defaults = (spec.confirm or ConfirmSpec()).model_dump()
    given = {k: v for k, v in (design or {}).items() if v is not None}
    try:
        confirm = ConfirmSpec.model_validate({**defaults, **given})
    except ValueError as exc:  # pydantic's ValidationError: a bad combination of options
        raise ConfirmError(f"study {name!r}: {' '.join(str(exc).split())}") from None
    opened = open_sweep(spec, name, target, create=False, observer=observer, confirming=True)
    study, tracker, objective = opened.study, opened.tracker, opened.objective
    settings = _settings(target, name, objective.runs.experiment_id, objective.runs.parent_run_id)
    with parent_run(opened, observer) as closing:
        if not top_trials(study, 1):
            raise ConfirmError(f"study {name!r} has no complete search trial to confirm yet")
        rounds = next_round or race_rounds(spec, confirm)
        launcher = _launcher(
            study,
            tracker,
            cluster,
            settings,
            0,
            "confirm",
            spec,
            rounds,
            observer,
            worker_observer,
        )
        launcher.run()
    return opened.outcome(closing, ran=0, replicates=launcher.progress.replicates)


def _launcher(
    study: optuna.Study,
    tracker: Tracker,
    cluster: ClusterRun,
    settings: WorkerSettings,
    budget: int,
    phase: Phase,
    spec: SweepSpec,
    next_round: NextRound | None,
    observer: SweepObserver | None,
    worker_observer: Callable[[int], SweepObserver | None] | None,
) -> _Launcher:
    holder: list[_Launcher] = []
    observer_for = _observers(observer, worker_observer, lambda: holder[0].totals.jobs)
    progress = Progress(spec.objective.metric, _epochs(spec), observer_for)
    launcher = _Launcher(
        study,
        tracker,
        cluster.queue,
        settings,
        workers=cluster.workers,
        threads=cluster.threads,
        resubmits=cluster.resubmits,
        budget=budget,
        phase=phase,
        timeout=spec.budget.timeout,
        next_round=next_round,
        progress=progress,
        say_line=_line_to(observer),
    )
    holder.append(launcher)
    return launcher
