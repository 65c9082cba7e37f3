"""One worker of a sweep on a cluster: `JobWorker`, the callable each job runs (submitit
pickles it into the job's folder; the job's Python calls it).

A job has no pipe to its launcher: it takes its work from the shared storage itself.

- Search trials: the launcher queues one WAITING trial per trial it grants (the budget,
  counted in the storage: COMPLETE + PRUNED + running + queued stay within it), and the
  worker's study (`TicketStudy`) only ever takes a queued trial, never creates one. The
  sampler still draws each trial's values (a queued trial carries none), with this
  worker's own seed; a trial queued again by the heartbeat (its worker died) keeps its
  values. So the study ends with exactly its budget, however many jobs run at once.
- Replicates (the SSI baseline, the confirmation's runs): claimed one at a time from the
  companion study's queue (studies.run.replicates.run_jobs), as local workers claim them.
- What to do next is the launcher's word in the storage (studies.cluster.phase): search,
  confirm, end. Without work, the worker polls; it exits at ``end``, or when the launcher
  has been silent for `studies.cluster.phase.SILENT_S` and nothing is queued.

SIGTERM (scancel, preemption, ``scontrol requeue``, the time limit) and SIGUSR2 (the
warning submitit asks Slurm to send before the time limit) stop it as Ctrl-C stops a sweep
(studies.run.signals): the running trial FAILED in Optuna, its MLflow run closed; the job
then exits 143 without a result, and the launcher submits another while the sweep has
work. A worker killed outright leaves its trial RUNNING without heartbeats: the launcher
(or any worker) fails it after the grace period and queues it again, whether or not it ever
beat (studies.store.silent).

Each trial and replicate records the job that ran it (`studies.attrs.JOB`), which the
launcher's display shows; the job's standard output has a line per trial and run.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution

from studies.run.replicates import ReplicateRunner
from studies.workers.settings import WorkerSettings

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from studies.run import Objective

__all__ = [
    "JobReplicateRunner",
    "JobWorker",
    "NoTicket",
    "TicketStudy",
    "job_id",
    "sampler_index",
]

# Seconds between two looks at the storage when a worker has nothing to do.
POLL_S = 2.0
# See `sampler_index`: more workers than this share seeds only across restarts.
SAMPLER_STRIDE = 1009


class NoTicket(Exception):
    """No search trial is queued: the launcher has granted none (yet)."""


class TicketStudy(optuna.Study):
    """The search study as a job sees it: `ask` takes a trial the launcher queued and
    never creates one (`NoTicket` when none is queued), so that ``study.optimize`` runs
    granted trials only."""

    def ask(self, fixed_distributions: dict[str, BaseDistribution] | None = None) -> optuna.Trial:
        if fixed_distributions:
            raise ValueError("a job's search trials take no fixed distributions")
        self._thread_local.cached_all_trials = None  # as Study.ask: read the storage anew
        trial_id = self._pop_waiting_trial_id()
        if trial_id is None:
            raise NoTicket()
        return optuna.Trial(self, trial_id)


@dataclass
class JobReplicateRunner(ReplicateRunner):
    """The replicate runner of a job: each run it claims records the job."""

    job: str = ""

    def __call__(self, trial: optuna.Trial) -> float:
        from studies import attrs

        trial.set_user_attr(attrs.JOB, self.job)
        return super().__call__(trial)


def sampler_index(index: int, taken: int) -> int:
    """The sampler seed's index of worker ``index`` in a job that starts when the study
    holds ``taken`` trials: the worker's own on a fresh study (worker 0: the spec's seed),
    else one of its own for this start, so that a job submitted again (or requeued) does
    not draw the same values as the job before it."""
    return index if taken == 0 else index + SAMPLER_STRIDE * taken


def job_id() -> str:
    """This job's id: Slurm's, submitit's local or debug executor's, else ``pid-<pid>``."""
    for name in ("SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID", "SUBMITIT_DEBUG_JOB_ID"):
        value = os.environ.get(name)
        if value:
            return value
    return f"pid-{os.getpid()}"


@dataclass
class _Log:
    """A `studies.run.SweepObserver` that writes a line per trial and run to the job's
    standard output (its log in the study's ``jobs/`` folder)."""

    prefix: str
    trials: int = 0
    replicates: int = 0

    def _line(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {self.prefix}{text}", flush=True)

    def sweep_started(self, ui_url: str) -> None:
        pass

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None:
        self._line(f"trial {number} started: {params}")

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None:
        self.trials += 1
        self._line(f"trial {number}: {state} value={value}" + (f" ({reason})" if reason else ""))

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None:
        self._line(f"{label} started: {params}")

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def run_finished(self, label: str, state: str, value: float | None, reason: str | None) -> None:
        self.replicates += 1
        self._line(f"{label}: {state} value={value}" + (f" ({reason})" if reason else ""))

    def tracking_wait(self, runs: int, seconds: float) -> None:
        self._line(f"sending the MLflow logs of {runs} run(s): up to {seconds:.0f} s")


@dataclass(frozen=True)
class JobWorker:
    """What a worker job runs: the worker of `settings` (`WorkerSettings` as JSON: the
    storage and tracking addresses travel in the job's pickle, not on a command line)."""

    settings: str
    poll_s: float = POLL_S

    def __call__(self) -> str:
        from studies.run import exit_code, install_stop_handlers
        from studies.run.signals import stop_also_on

        install_stop_handlers()
        stop_also_on(_time_limit_signal())
        settings = WorkerSettings.from_json(self.settings)
        job = job_id()
        try:
            return _work(settings, job, self.poll_s)
        except KeyboardInterrupt as exc:
            # No result pickle: the launcher reads "stopped" and submits another job.
            print(
                f"worker {settings.index} (job {job}) stopped by a signal: its running trial "
                "was marked failed and its MLflow run closed",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(exit_code(exc))


def _time_limit_signal() -> int:
    """The signal Slurm sends before the time limit (submitit's ``--signal``: USR2)."""
    import signal

    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    found = getattr(signal, f"SIG{name}", None)
    return int(found) if found is not None else int(signal.SIGUSR2)


def _work(settings: WorkerSettings, job: str, poll_s: float) -> str:
    import torch

    torch.set_num_threads(settings.threads)

    from studies import attrs
    from studies.home import REPLICATES_DIR, study_dir
    from studies.run import Objective, SweepRuns
    from studies.run.search_space import build_pruner, build_sampler
    from studies.store import open_storage, quiet_optuna_logs
    from studies.tracking import Tracker
    from sweeps import parse_spec

    quiet_optuna_logs()
    name, index = settings.study, settings.index
    log = _Log(f"w{index} ")
    log._line(f"worker {index} of study {name} in job {job} on {_host()}")
    storage = open_storage(settings.storage, heartbeat_interval=settings.heartbeat)
    study_id = storage.get_study_id_from_name(name)
    spec = parse_spec(storage.get_study_user_attrs(study_id)[attrs.SPEC], f"study {name}")
    taken = len(storage.get_all_trials(study_id, deepcopy=False))
    study = TicketStudy(
        study_name=name,
        storage=storage,
        sampler=build_sampler(spec, worker=sampler_index(index, taken)),
        pruner=build_pruner(spec),
    )
    tracker = Tracker(settings.tracking)
    runs = SweepRuns(spec, tracker, settings.experiment_id, settings.parent_run_id, name, log)
    objective = Objective(runs, study_dir(settings.home, name))
    runner = JobReplicateRunner(runs, objective.trials_dir / REPLICATES_DIR, job=job)
    try:
        why = _loop(study, storage, study_id, objective, runner, index, spec.baseline, poll_s)
    except BaseException:
        tracker.flush_runs(interrupted=True)  # bounded: seconds at most
        raise
    tracker.flush_runs(on_wait=log.tracking_wait)
    summary = (
        f"worker {index} (job {job}): {log.trials} search trial(s), "
        f"{log.replicates} other run(s); {why}"
    )
    log._line(summary)
    return summary


def _loop(
    study: TicketStudy,
    storage: BaseStorage,
    study_id: int,
    objective: Objective,
    runner: JobReplicateRunner,
    index: int,
    baseline: bool,
    poll_s: float,
) -> str:
    """Work until the launcher says ``end`` (or is gone); returns why the worker stops."""
    from studies.cluster.phase import read_word
    from studies.run.signals import check_stop

    if index == 0 and baseline:
        _replicates(study, runner)  # the baseline the launcher queued, before the search
    while True:
        check_stop()  # a stop signal whose exception was lost (studies.run.signals)
        word = read_word(storage, study_id)
        if word is None:
            return "the study has no launcher's word: nothing to do"
        if word.phase == "end":
            return "the launcher ended the sweep"
        if word.phase == "search" and _search_trial(study, objective, runner.job):
            continue
        if _replicates(study, runner):
            continue
        if word.silent():
            return "the launcher has been silent too long (run `salsweep sweep resume`)"
        time.sleep(poll_s)


def _search_trial(study: TicketStudy, objective: Objective, job: str) -> bool:
    """Run one granted search trial; False when none is queued."""
    from studies import attrs
    from studies.run import TRIAL_FAILURES, optimize

    def tagged(trial: optuna.Trial) -> float:
        trial.set_user_attr(attrs.JOB, job)
        return objective(trial)

    try:
        optimize(study, tagged, n_trials=1, catch=TRIAL_FAILURES, gc_after_trial=True)
    except NoTicket:
        return False
    except ValueError as exc:
        # Optuna's tell found the trial already FAIL: another process took it for dead (its
        # heartbeats were late: a slow database) and queued its values again. The job goes
        # on; the run of this trial ended as it ended.
        if not str(exc).startswith("Cannot tell a FAIL trial"):
            raise
        print(f"a trial of this job was failed by another process: {exc}", file=sys.stderr)
    return True


def _replicates(study: optuna.Study, runner: JobReplicateRunner) -> bool:
    """Run the replicates queued in the companion study (one at a time, each claimed);
    False when none is queued."""
    from optuna.trial import TrialState

    from studies.run import run_jobs
    from studies.store import companion_study

    companion = companion_study(study)
    if companion is None:
        return False
    if not companion.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return False
    return run_jobs(study, [], runner) > 0


def _host() -> str:
    import socket

    return socket.gethostname()
