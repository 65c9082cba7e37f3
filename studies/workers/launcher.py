"""Local workers: ``salsweep sweep launch --workers N`` runs N processes on one study.

Over 400 lines: one coordinator (`_Launcher`) whose message loop, budget and stop path
share their state; the plan, the settings and the worker process are modules of their own.

The launcher (this module, in the CLI's process) creates the study, the MLflow parent run,
the budget and the baseline's job before any worker starts, so that the workers never race
to create them; then it starts N worker processes (studies.workers.process) and coordinates
them over pipes:

- each worker has its own sampler seed (`studies.run.search_space.worker_seed`: worker 0 keeps
  the spec's), its share of the CPU threads and, where there are GPUs, its own GPU round
  robin (``CUDA_VISIBLE_DEVICES``);
- a worker asks the launcher before each search trial, and the launcher grants trials
  while COMPLETE + PRUNED + running ones stay within the budget: the study ends with
  exactly its budget, where workers counting on their own would each start one more when
  they finish together; a failed (diverged) trial frees its place for another;
- when the search is over (budget, timeout, or as many diverged trials in a row as the
  budget), the launcher starts the confirmation's race and queues its first round
  (studies.run.race_rounds); every worker runs them, claiming one job at a time from the
  companion study's queue, and asks again when the queue is drained; once no worker runs a
  replicate, the launcher reads the next round from the stored replicates and queues it,
  until the race is decided;
- the workers send their progress (the `SweepObserver` calls) as JSON lines; the launcher
  feeds one display with them.

Ctrl-C (SIGINT to the terminal's process group) and SIGTERM to the launcher stop every
worker the way Ctrl-C stops a one-process sweep: the launcher forwards the signal, each
worker fails its running trial in Optuna and closes its MLflow run; a worker still alive
`STOP_GRACE_S` later is killed and the launcher fails its trials for it. The parent run
ends KILLED and `salsweep sweep resume NAME` finishes the study.

Pipes carry no secret: the storage and tracking URLs (which may hold passwords) reach a
worker on its standard input, not on its command line (visible to every user in ``ps``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import optuna

from studies import attrs
from studies.run import (
    COUNTED_STATES,
    CommandFailed,
    SweepDiverged,
    SweepObserver,
    SweepOutcome,
    SweepTarget,
    TrialFailure,
    baseline_search_job,
    close_dead_trials,
    enqueue_jobs,
    fail_orphans,
    next_confirmation_jobs,
    open_sweep,
    parent_run,
    start_race,
    trial_budget,
    worker_id,
)
from studies.run.race_rounds import NOTHING_TO_CONFIRM
from studies.run.signals import check_stop
from studies.tracking import Tracker
from studies.workers.plan import (
    CPU_THREADS_PER_WORKER,
    WorkerPlan,
    auto_workers,
    cpu_count,
    detect_gpus,
    gpu_for_worker,
    parse_visible_devices,
    plan_workers,
    smi_devices,
    spawn_workers,
    threads_per_worker,
)
from studies.workers.settings import WorkerSettings
from sweeps import SweepSpec
from trainer import NonFiniteLoss
from trainer.errors import UserError

__all__ = [
    "CPU_THREADS_PER_WORKER",
    "STOP_GRACE_S",
    "WorkerError",
    "WorkerPlan",
    "auto_workers",
    "cpu_count",
    "detect_gpus",
    "gpu_for_worker",
    "parse_visible_devices",
    "plan_workers",
    "run_workers",
    "smi_devices",
    "spawn_workers",
    "threads_per_worker",
]

# Seconds a worker has to stop after the launcher forwards a stop signal; then SIGKILL.
STOP_GRACE_S = 6.0
# Seconds a worker that closed its output has to exit (it flushes its MLflow outbox, up
# to studies.tracking.courier.SWEEP_FLUSH_S); then SIGKILL.
EXIT_GRACE_S = 60.0
Reply = Literal["trial", "confirm", "exit"]


class WorkerError(UserError, RuntimeError):
    """A worker process failed (its message), or could not be started."""


# ---------------------------------------------------------------------------- the launcher


@dataclass
class _Worker:
    plan: WorkerPlan
    proc: subprocess.Popen[str]
    observer: SweepObserver | None
    waiting: bool = False  # asked what to do next, no answer yet
    ticket: bool = False  # runs a search trial the launcher granted
    confirming: bool = False  # runs the race's queued replicates (answered "confirm")
    round: int = 0  # the last round of the race it was answered "confirm" for
    said_done: bool = False
    eof: bool = False  # its messages are all read
    eof_at: float | None = None
    exited: bool = False  # ... and its process has ended, its exit handled
    dead_at: float | None = None  # when its process was first seen ended
    error: str | None = None


@dataclass
class _Totals:
    ran: int = 0
    replicates: int = 0
    done: int = 0  # COMPLETE and PRUNED trials of the study
    streak: int = 0  # diverged trials in a row
    last_failure: TrialFailure | None = None
    confirmation_skipped: str | None = None
    failures: list[str] = field(default_factory=list)


_OBSERVER_CALLS = frozenset(
    {
        "trial_started",
        "epoch_finished",
        "trial_finished",
        "run_started",
        "run_epoch_finished",
        "run_finished",
        "tracking_wait",
    }
)


class _Launcher:
    """Starts the workers, answers their requests, forwards their progress, stops them."""

    def __init__(
        self,
        spec: SweepSpec,
        study: optuna.Study,
        tracker: Tracker,
        target: SweepTarget,
        plans: Sequence[WorkerPlan],
        budget: int,
        settings: WorkerSettings,
        observer_for: Callable[[int], SweepObserver | None],
    ) -> None:
        self.spec = spec
        self.study = study
        self.tracker = tracker
        self.target = target
        self.plans = plans
        self.budget = budget
        self.settings = settings
        self.observer_for = observer_for
        self.workers: list[_Worker] = []
        self.messages: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        self.totals = _Totals(done=len(study.get_trials(deepcopy=False, states=COUNTED_STATES)))
        self.phase: Literal["search", "confirm", "end"] = "search"
        self.deadline = (
            None if spec.budget.timeout is None else time.monotonic() + spec.budget.timeout
        )
        self.outstanding = 0  # search trials granted and not ended
        self.round = 0  # rounds of the race queued by this launcher
        self._stopping = False  # the workers were told to stop
        self._stop_deadline = 0.0  # ... and are killed after this (monotonic seconds)

    # -------------------------------------------------------------- start and run

    def run(self, procs: Sequence[subprocess.Popen[str]]) -> _Totals:
        """Run the sweep with the started worker processes ``procs`` (one per plan)."""
        try:
            for plan, proc in zip(self.plans, procs, strict=True):
                self._adopt(plan, proc)
            while self._live():
                check_stop()  # a stop signal whose exception was lost (studies.run.signals)
                self._step(0.2)
                if self.totals.failures and not self._stopping:
                    self._signal_all(signal.SIGTERM)  # a worker failed: stop the others
                    self._stop_deadline = time.monotonic() + STOP_GRACE_S
                    self._stopping = True
                if self._stopping and time.monotonic() > self._stop_deadline:
                    self._kill_all()
        except BaseException as exc:
            self._stop(signal.SIGTERM if _is_terminated(exc) else signal.SIGINT)
            raise
        if self.totals.failures:
            raise WorkerError("; ".join(self.totals.failures))
        return self.totals

    def _adopt(self, plan: WorkerPlan, proc: subprocess.Popen[str]) -> None:
        """Take over the started worker of ``plan``: send its settings, read its output."""
        worker = _Worker(plan, proc, self.observer_for(plan.index))
        self.workers.append(worker)
        self._send(worker, self.settings.for_worker(plan.index, plan.threads).to_json())
        assert proc.stdout is not None and proc.stderr is not None
        for stream, kind in ((proc.stdout, "msg"), (proc.stderr, "log")):
            threading.Thread(
                target=_read_lines,
                args=(stream, plan.index, kind, self.messages),
                name=f"salsweep-worker-{plan.index}-{kind}",
                daemon=True,
            ).start()

    def _step(self, timeout: float) -> None:
        try:
            index, kind, payload = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        worker = self.workers[index]
        if kind == "log":
            self._log(worker, payload)
        elif kind == "eof":
            worker.eof, worker.eof_at = True, time.monotonic()
        else:
            self._on_message(worker, payload)

    def _live(self) -> bool:
        """True while a worker runs (each ended one is handled on the way)."""
        return not all([self._ended(w) for w in self.workers])

    def _ended(self, worker: _Worker) -> bool:
        """Whether ``worker`` has ended (its output read, its process gone); the first time
        it is found so, a non-zero exit without an error message is recorded as a failure.
        A worker that closed its output but goes on living is killed after
        `EXIT_GRACE_S` (its exit flushes its MLflow outbox: bounded, but seconds)."""
        if worker.exited:
            return True
        code = worker.proc.poll()
        now = time.monotonic()
        if code is not None and worker.dead_at is None:
            worker.dead_at = now
        if code is None:
            if not worker.eof or now - (worker.eof_at or now) < EXIT_GRACE_S:
                return False
            worker.proc.kill()  # closed its output long ago and hangs
            code = worker.proc.wait(timeout=STOP_GRACE_S)
            self._fail_orphans(worker.proc.pid)
        elif not worker.eof and worker.dead_at is not None and now - worker.dead_at < 5.0:
            return False  # its last messages may still be in the pipe
        worker.exited = True
        if code != 0 and not worker.said_done and worker.error is None and not self._stopping:
            worker.error = f"worker {worker.plan.index} exited with code {code}"
            self.totals.failures.append(worker.error)
        self._dispatch()  # a worker less: the others may be done
        return True

    def _on_message(self, worker: _Worker, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "observe":
            self._observe(worker, str(message["call"]), list(message["args"]))
        elif kind == "next":
            worker.confirming = False
            if worker.ticket:
                worker.ticket = False
                self.outstanding -= 1
                self._account(message.get("last"))
            worker.waiting = True
            self._dispatch()
        elif kind == "done":
            worker.said_done = True
        elif kind == "error":
            worker.error = f"worker {worker.plan.index}: {message.get('message')}"
            self.totals.failures.append(worker.error)

    def _observe(self, worker: _Worker, call: str, args: list[Any]) -> None:
        if call == "trial_finished":
            self.totals.ran += 1
        elif call == "run_finished":
            self.totals.replicates += 1
        if worker.observer is not None and call in _OBSERVER_CALLS:
            getattr(worker.observer, call)(*args)

    def _log(self, worker: _Worker, line: str) -> None:
        """A line a worker wrote to its stderr (a warning, a traceback): shown, labelled."""
        if worker.observer is not None and hasattr(worker.observer, "log"):
            worker.observer.log(line)
        else:
            print(f"worker {worker.plan.index}: {line}", file=sys.stderr)

    # -------------------------------------------------------------- budget and phases

    def _account(self, last: dict[str, Any] | None) -> None:
        """The end of a granted search trial, as its worker read it from the storage."""
        state = None if last is None else last.get("state")
        if state in ("COMPLETE", "PRUNED"):
            self.totals.done += 1
            self.totals.streak = 0
        elif state == "FAIL" and last is not None and last.get("failure"):
            failure = last["failure"]
            self.totals.streak += 1
            if isinstance(failure, str):  # a command trial's failure, in words
                self.totals.last_failure = CommandFailed(failure)
            else:
                epoch, step, value = failure
                self.totals.last_failure = NonFiniteLoss(int(epoch), int(step), float(value))

    @property
    def diverged(self) -> bool:
        return self.totals.streak >= self.budget

    def _may_grant(self) -> bool:
        if self._stopping or self.totals.failures or self.diverged:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        # Within the budget counting the running trials as done; and never more running
        # trials than failures in a row still allowed, so that a sweep whose every trial
        # diverges stops after exactly `budget` of them, as a one-process sweep does.
        running = self.outstanding
        return (
            self.totals.done + running < self.budget and self.totals.streak + running < self.budget
        )

    def _dispatch(self) -> None:
        if self.phase == "confirm":
            self._advance_race()
        for worker in self.workers:
            if not worker.waiting or worker.exited:
                continue
            if self.phase == "search":
                if self._may_grant():
                    worker.ticket = True
                    self.outstanding += 1
                    self._reply(worker, "trial")
                    continue
                if self.outstanding > 0:
                    continue  # a running trial may fail and need a replacement
                self._end_search()
            if self.phase != "confirm":
                self._reply(worker, "exit")
            elif worker.round < self.round:
                worker.round, worker.confirming = self.round, True
                self._reply(worker, "confirm")
            # else: it drained this round's queue; held until the round's last run ends

    def _end_search(self) -> None:
        """The search is over: start the race (studies.run.race_rounds) and queue its first
        round (every job before any runs)."""
        confirm = self.spec.confirm
        self.phase = "end"
        if confirm is None or self.diverged or self.totals.failures or self._stopping:
            return
        if start_race(self.study, self.spec, confirm) is None:
            self.totals.confirmation_skipped = NOTHING_TO_CONFIRM
            return
        self.phase = "confirm"
        self._advance_race()

    def _advance_race(self) -> None:
        """Queue the race's next round once the last one is over: every worker answered
        "confirm" for it has drained the queue and asked again (none runs a replicate, whose
        result may end the race). The round is read from the stored replicates; when the
        race is decided the phase ends (the workers exit)."""
        if self._stopping or self.totals.failures:
            self.phase = "end"
            return
        live = [w for w in self.workers if not w.exited]
        if any(w.confirming for w in live):
            return
        if any(w.waiting and w.round < self.round for w in live):
            return  # a round is queued that waiting workers have not been given yet
        jobs = next_confirmation_jobs(self.study, self.spec)
        if not jobs:
            self.phase = "end"
            return
        enqueue_jobs(self.study, jobs, self.spec, self.tracker)
        self.round += 1

    def _reply(self, worker: _Worker, reply: Reply) -> None:
        worker.waiting = False
        self._send(worker, reply)

    def _send(self, worker: _Worker, line: str) -> None:
        stdin = worker.proc.stdin
        assert stdin is not None
        with contextlib.suppress(OSError):  # a worker that died: its EOF tells the rest
            stdin.write(line + "\n")
            stdin.flush()

    # -------------------------------------------------------------- stopping

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signum)

    def _kill_all(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                worker.proc.wait(timeout=STOP_GRACE_S)
                self._fail_orphans(worker.proc.pid)
            worker.exited = True

    def _stop(self, signum: int) -> None:
        """Stop every worker: forward ``signum`` (each worker fails its trial and closes
        its MLflow run), keep showing their progress for up to `STOP_GRACE_S`, kill the
        ones still alive and fail their trials for them."""
        self._stopping = True
        self._signal_all(signum)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the display must not stop the stop
                if not self._live():
                    break
                self._step(0.1)
        self._kill_all()
        for worker in self.workers:
            for stream in (worker.proc.stdin, worker.proc.stdout, worker.proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def _fail_orphans(self, pid: int) -> None:
        """Fail the trials (search and companion) that killed worker ``pid`` left
        RUNNING, and close their MLflow runs (else the heartbeat would, minutes later)."""
        mine = worker_id(pid)
        fail_orphans(
            self.study, lambda t: t.user_attrs.get(attrs.WORKER) == mine, self.tracker.client
        )


def _is_terminated(exc: BaseException) -> bool:
    from studies.run import Terminated

    return isinstance(exc, Terminated)


def _read_lines(stream: IO[str], index: int, kind: str, out: queue.Queue[Any]) -> None:
    """A worker's stdout (JSON messages) or stderr (text), line by line, into ``out``."""
    try:
        for line in stream:
            text = line.rstrip("\n")
            if kind == "msg":
                try:
                    out.put((index, "msg", json.loads(text)))
                    continue
                except ValueError:
                    pass  # not a message: something printed to stdout; show it
            if text:
                out.put((index, "log", text))
    except (OSError, ValueError):  # closed by the launcher while stopping
        pass
    if kind == "msg":
        out.put((index, "eof", None))


def run_workers(
    spec: SweepSpec,
    name: str,
    target: SweepTarget,
    plans: Sequence[WorkerPlan],
    *,
    n_trials: int | None = None,
    observer: SweepObserver | None = None,
    worker_observer: Callable[[int], SweepObserver | None] | None = None,
    create: bool = True,
    debug: bool = False,
    started: Sequence[subprocess.Popen[str]] | None = None,
) -> SweepOutcome:
    """`studies.run_sweep` with the trials and replicates run by the local workers of
    ``plans`` (see the module's description); ``worker_observer(i)`` receives worker i's
    progress (default: ``observer``); ``debug``: a worker shows the traceback of an
    unexpected error. ``started``: their processes, started by `spawn_workers` (so that
    they load while this prepares the study); else they are started here."""
    if started is None:
        with spawn_workers(plans) as procs:
            return run_workers(
                spec,
                name,
                target,
                plans,
                n_trials=n_trials,
                observer=observer,
                worker_observer=worker_observer,
                create=create,
                debug=debug,
                started=procs,
            )
    # The launcher's objective trains nothing: it names the experiment and the parent run.
    opened = open_sweep(spec, name, target, create=create, observer=observer)
    study, tracker, objective = opened.study, opened.tracker, opened.objective
    budget = trial_budget(study, spec, n_trials, create=create)
    settings = WorkerSettings(
        study=name,
        storage=target.storage_url,
        tracking=target.tracking_uri,
        home=target.home,
        heartbeat=target.heartbeat_interval,
        experiment_id=objective.runs.experiment_id,
        parent_run_id=objective.runs.parent_run_id,
        parent_pid=os.getpid(),
        debug=debug,
    )
    launcher = _Launcher(
        spec,
        study,
        tracker,
        target,
        plans,
        budget,
        settings,
        worker_observer or (lambda _i: observer),
    )
    with parent_run(opened, observer) as closing:
        if spec.baseline:
            enqueue_jobs(study, [baseline_search_job(spec)], spec, tracker)
        close_dead_trials(study, tracker)
        totals = launcher.run(started)
        if launcher.diverged:
            assert totals.last_failure is not None
            raise SweepDiverged(name, totals.streak, totals.last_failure)
    return opened.outcome(
        closing,
        ran=totals.ran,
        replicates=totals.replicates,
        confirmation_skipped=totals.confirmation_skipped,
    )
