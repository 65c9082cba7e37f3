"""Run one command trial: start the program, follow its metrics, stop it, say how it ended.

`run_command` starts the `LaunchPlan` (studies.command.prepare) in a session and process
group of its own, standard output and error into files of the trial folder, and reads the
metrics as they arrive from one `MetricSource`. Each report goes to ``on_metrics(step,
metrics)``, which returns True to stop the trial (pruning). A stop, for whatever cause
(pruned, ``timeout_s``, the ``stop`` event, an exception such as the sweep's
``KeyboardInterrupt`` on Ctrl-C/SIGTERM), writes the stop file, sends SIGTERM to the
group and SIGKILL after ``grace_s`` (studies.procs). No process of the trial
outlives the call, however it ends.

The callback runs in the calling thread (it may talk to Optuna); the trial's status is
decided here, the run's final status in MLflow is the caller's.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

from studies.command.metrics import (
    JsonLinesTail,
    MetricPoint,
    MetricReport,
    MlflowPoints,
    StdoutMatcher,
)
from studies.command.prepare import LaunchPlan
from studies.procs import StopOutcome, exit_status, stop_group

__all__ = [
    "STDERR_TAIL_LINES",
    "CommandResult",
    "FileSource",
    "MetricSource",
    "MetricsCallback",
    "MetricsPoll",
    "MlflowSource",
    "StdoutSource",
    "TrialStatus",
    "run_command",
]

STDERR_TAIL_LINES = 20
_TICK_S = 0.02  # how often the program's exit, the metrics file and stop requests are read
_READER_JOIN_S = 5.0  # the stdout reader ends at EOF, once every writer is gone

# (step, metrics) -> True to stop the trial (pruned).
MetricsCallback = Callable[[int, Mapping[str, float]], bool]
# Every point of the trial's MLflow run so far (or only the new ones).
MetricsPoll = Callable[[], Iterable[MetricPoint]]


class TrialStatus(StrEnum):
    """How a command trial ended."""

    COMPLETED = "completed"  # exit 0, the objective metric reported
    PRUNED = "pruned"  # on_metrics asked to stop
    TIMED_OUT = "timed_out"  # ran past timeout_s
    FAILED = "failed"  # non-zero exit, killed by a signal, or exit 0 without the objective
    STOPPED = "stopped"  # the `stop` event (the sweep is stopping)


@dataclass(frozen=True)
class FileSource:
    """Metrics from the JSON-lines file ($SALSWEEP_METRICS_FILE)."""


@dataclass(frozen=True)
class StdoutSource:
    """Metrics from lines of standard output matched by ``pattern`` (sweeps.command)."""

    pattern: str


@dataclass(frozen=True)
class MlflowSource:
    """Metrics from the trial's MLflow run, read by ``poll`` every ``interval_s``."""

    poll: MetricsPoll
    interval_s: float = 2.0


MetricSource = FileSource | StdoutSource | MlflowSource


@dataclass(frozen=True)
class CommandResult:
    """The end of a command trial.

    ``pid``: the program's (its process group id too; None: it could not start).
    ``exit_code``: the program's (negative: the signal that ended it; None: it could not
    start). ``reports``: every metric report, in the order read. ``stop``: the signals of
    the stop and its duration (None when nothing was left to stop). ``problems``: lines
    of metrics that could not be read.
    """

    status: TrialStatus
    reason: str
    pid: int | None
    exit_code: int | None
    reports: tuple[MetricReport, ...]
    duration_s: float
    stop: StopOutcome | None
    stderr_tail: tuple[str, ...]
    problems: tuple[str, ...]

    def values(self, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` of metric ``name``, in the order reported."""
        return [(r.step, r.metrics[name]) for r in self.reports if name in r.metrics]


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> tuple[str, ...]:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(text.splitlines()[-lines:])


def _signal_name(code: int) -> str:
    import signal

    try:
        return f"{signal.Signals(-code).name} ({-code})"
    except ValueError:
        return f"signal {-code}"


def _pump(
    pipe: IO[bytes], log: IO[bytes], matcher: StdoutMatcher, out: queue.SimpleQueue[MetricReport]
) -> None:
    """Copy standard output to its file line by line, matching each line."""
    for raw in iter(lambda: pipe.readline(1 << 20), b""):
        log.write(raw)
        log.flush()  # stdout.log can be followed while the trial runs
        for report in matcher.feed(raw.decode("utf-8", errors="replace").rstrip("\r\n")):
            out.put(report)


class _Trial:
    """The state of one running trial (the loop, its readers, its stop)."""

    def __init__(
        self,
        plan: LaunchPlan,
        objective: str,
        source: MetricSource,
        on_metrics: MetricsCallback | None,
    ) -> None:
        self.plan = plan
        self.objective = objective
        self.source = source
        self.on_metrics = on_metrics
        self.reports: list[MetricReport] = []
        self.cause: TrialStatus | None = None
        self.cause_text = ""
        self.tail = JsonLinesTail(plan.metrics_file) if isinstance(source, FileSource) else None
        self.matcher = (
            StdoutMatcher(source.pattern, objective) if isinstance(source, StdoutSource) else None
        )
        self.points = MlflowPoints() if isinstance(source, MlflowSource) else None
        self.queue: queue.SimpleQueue[MetricReport] = queue.SimpleQueue()
        self.poll_problems: list[str] = []
        self.next_poll = 0.0

    def problems(self) -> list[str]:
        found = self.poll_problems[:]
        found += self.tail.problems if self.tail is not None else []
        found += self.matcher.problems if self.matcher is not None else []
        return found

    def _new_reports(self, *, final: bool) -> list[MetricReport]:
        if self.tail is not None:
            return self.tail.read(final=final)
        if self.points is not None and isinstance(self.source, MlflowSource):
            now = time.monotonic()
            if not final and now < self.next_poll:
                return []
            self.next_poll = now + self.source.interval_s
            try:
                return self.points.feed(self.source.poll())
            except Exception as exc:  # the server away: try again at the next poll
                if len(self.poll_problems) < 5:
                    self.poll_problems.append(f"reading the MLflow run's metrics: {exc}")
                return []
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def drain(self, *, final: bool = False) -> None:
        """Hand every new report to the callback, each once and in order (those read
        after the end too). While the program runs, the first True answer sets the cause
        PRUNED (unless another cause came first); after its end (``final``) the answers
        no longer matter: a program that ended by itself is judged by its exit."""
        for report in self._new_reports(final=final):
            self.reports.append(report)
            asks = self.on_metrics is not None and self.on_metrics(report.step, report.metrics)
            if asks and self.cause is None and not final:
                self.cause = TrialStatus.PRUNED
                self.cause_text = f"pruned at step {report.step}"

    def request_stop(self) -> None:
        with contextlib.suppress(OSError):
            self.plan.stop_file.touch()


def _supervise(
    trial: _Trial,
    proc: subprocess.Popen[bytes],
    timeout_s: float | None,
    stop: threading.Event | None,
    started: float,
) -> None:
    """Follow the program until it exits or a cause to stop it comes up (trial.cause)."""
    deadline = started + timeout_s if timeout_s is not None else float("inf")
    while True:
        ended = exit_status(proc.pid) is not None
        trial.drain()
        if trial.cause is not None or ended:
            return
        if stop is not None and stop.is_set():
            trial.cause, trial.cause_text = TrialStatus.STOPPED, "stopped: the sweep is stopping"
            return
        if time.monotonic() >= deadline:
            trial.cause = TrialStatus.TIMED_OUT
            trial.cause_text = f"timed out after {timeout_s:g} s (command.timeout_s)"
            return
        time.sleep(_TICK_S)


def _finish(
    trial: _Trial, proc: subprocess.Popen[bytes], grace_s: float, *, stop_file: bool
) -> StopOutcome:
    """Stop whatever is left of the trial's processes and reap the leader. A stop signal
    (KeyboardInterrupt) during this finishes the stop first, then is raised."""
    pending: BaseException | None = None
    while True:
        try:
            if stop_file:
                trial.request_stop()
            outcome = stop_group(proc.pid, grace_s)
            proc.wait()
            break
        except KeyboardInterrupt as exc:
            pending = exc
    if pending is not None:
        raise pending
    return outcome


def _verdict(trial: _Trial, code: int, stderr: tuple[str, ...]) -> tuple[TrialStatus, str]:
    if trial.cause is not None:
        return trial.cause, trial.cause_text
    quoted = "".join(f"\n  {line}" for line in stderr)
    tail = f"; last lines of standard error:{quoted}" if stderr else "; standard error is empty"
    if code < 0:
        return TrialStatus.FAILED, f"killed by {_signal_name(code)}{tail}"
    if code != 0:
        return TrialStatus.FAILED, f"exit code {code}{tail}"
    if not any(trial.objective in r.metrics for r in trial.reports):
        names = sorted({n for r in trial.reports for n in r.metrics})
        got = f"it reported {', '.join(names)}" if names else "it reported no metric"
        problems = "".join(f"\n  {p}" for p in trial.problems()[:5])
        unread = f"; unreadable metrics:{problems}" if problems else ""
        return TrialStatus.FAILED, (
            f"exit code 0 without the objective metric {trial.objective!r} ({got}){unread}{tail}"
        )
    return TrialStatus.COMPLETED, ""


def run_command(
    plan: LaunchPlan,
    *,
    objective: str,
    source: MetricSource | None = None,
    on_metrics: MetricsCallback | None = None,
    grace_s: float = 10.0,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
) -> CommandResult:
    """Run the trial of ``plan`` to its end and return how it ended.

    ``objective``: the metric a completed trial must have reported (and the name of a
    stdout pattern's value without a ``name`` group). ``source``: where metrics come from
    (default `FileSource`). ``on_metrics(step, metrics)``: called in this thread for
    each report, True to stop the trial (PRUNED); an exception it raises stops the trial
    and propagates. ``stop``: set by another thread (or a signal handler) to stop the
    trial (STOPPED). A ``KeyboardInterrupt`` (the sweep's Ctrl-C or SIGTERM) stops the
    trial the same way and propagates once its processes are gone.
    """
    source = source if source is not None else FileSource()
    trial = _Trial(plan, objective, source, on_metrics)
    started = time.monotonic()
    if stop is not None and stop.is_set():  # the sweep stopped before this trial began
        reason = "stopped before it started: the sweep is stopping"
        return CommandResult(TrialStatus.STOPPED, reason, None, None, (), 0.0, None, (), ())
    plan.trial_dir.mkdir(parents=True, exist_ok=True)
    piped = isinstance(source, StdoutSource)
    with contextlib.ExitStack() as files:
        stdout_log = files.enter_context(plan.stdout_file.open("wb"))
        stderr_log = files.enter_context(plan.stderr_file.open("wb"))
        try:
            proc = subprocess.Popen(
                list(plan.argv),
                cwd=plan.cwd,
                env=dict(plan.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else stdout_log,
                stderr=stderr_log,
                start_new_session=True,  # own group: one killpg reaches every process
            )
        except OSError as exc:
            reason = f"cannot start {plan.argv[0]!r}: {exc.strerror or exc}"
            elapsed = time.monotonic() - started
            return CommandResult(TrialStatus.FAILED, reason, None, None, (), elapsed, None, (), ())
        reader: threading.Thread | None = None
        followed = False
        try:
            if piped and proc.stdout is not None and trial.matcher is not None:
                reader = threading.Thread(
                    target=_pump,
                    args=(proc.stdout, stdout_log, trial.matcher, trial.queue),
                    name=f"stdout-{proc.pid}",
                    daemon=True,
                )
                reader.start()
            _supervise(trial, proc, timeout_s, stop, started)
            followed = True
        finally:
            # Every path, an exception's too: stop the trial (a program that has ended
            # may have left processes behind: they get SIGTERM and SIGKILL alike).
            asked = not followed or trial.cause is not None
            outcome = _finish(trial, proc, grace_s, stop_file=asked)
            if reader is not None:
                reader.join(_READER_JOIN_S)
            if proc.stdout is not None:
                proc.stdout.close()
            if not followed and trial.tail is not None:
                trial.tail.close()
    trial.drain(final=True)  # what came before the end, e.g. the last epoch's line
    if trial.tail is not None:
        trial.tail.close()
    code = proc.returncode
    stderr = _tail(plan.stderr_file)
    status, reason = _verdict(trial, code, stderr)
    return CommandResult(
        status=status,
        reason=reason,
        pid=proc.pid,
        exit_code=code,
        reports=tuple(trial.reports),
        duration_s=time.monotonic() - started,
        stop=outcome if outcome.sigterm else None,
        stderr_tail=stderr,
        problems=tuple(trial.problems()),
    )
