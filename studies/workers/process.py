"""One local worker of ``salsweep sweep launch --workers N`` (``python -m
studies.workers.process``), started and coordinated by studies.workers.launcher.

Reads its settings as one JSON line on standard input, then talks with the launcher in
lines: it writes JSON messages on standard output (``observe``: a `SweepObserver` call;
``next``: what now?, with how its last search trial ended; ``done``; ``error``) and reads
the launcher's answers on standard input (``trial``: run one search trial; ``confirm``:
run the queued replicates of the race's round until the queue is drained, then ask again:
the launcher queues the next round once every worker is back; ``exit``). Anything else
that writes to standard output (a library's print) is sent to standard error, which the
launcher shows labelled with the worker.

SIGINT and SIGTERM stop it as Ctrl-C stops a sweep (studies.run.signals): its running trial
FAILED, its MLflow run closed; it also stops when its launcher dies (Linux).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from studies.run import exit_code, install_stop_handlers
from studies.workers.settings import WorkerSettings

if TYPE_CHECKING:
    import optuna

    from studies.run import TrialFailure
    from studies.tracking import Tracker
    from sweeps import SweepSpec

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1


class _Channel:
    """The message pipe to the launcher (the process's original standard output)."""

    def __init__(self) -> None:
        self._out: IO[str] = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)  # stray prints (fd 1) go to stderr from now on
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def send(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, **fields})
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def ask(self, last: dict[str, Any] | None) -> str:
        """What the launcher wants next (``exit`` when it is gone)."""
        self.send("next", last=last)
        return sys.stdin.readline().strip() or "exit"


class _ChannelObserver:
    """A `studies.run.objective.SweepObserver` that sends every call to the launcher."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def _send(self, call: str, *args: Any) -> None:
        self._channel.send("observe", call=call, args=list(args))

    def sweep_started(self, ui_url: str) -> None:
        pass  # the launcher shows it

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None:
        self._send("trial_started", number, params, epochs)

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        self._send("epoch_finished", number, epoch, metrics)

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None:
        self._send("trial_finished", number, state, value, reason)

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None:
        self._send("run_started", label, params, epochs)

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None:
        self._send("run_epoch_finished", label, epoch, metrics)

    def run_finished(self, label: str, state: str, value: float | None, reason: str | None) -> None:
        self._send("run_finished", label, state, value, reason)

    def tracking_wait(self, runs: int, seconds: float) -> None:
        self._send("tracking_wait", runs, seconds)


def _die_with_parent(parent_pid: int) -> None:
    """Receive SIGTERM when the launcher dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        sys.exit(1)


def _work(settings: WorkerSettings, channel: _Channel) -> None:
    import torch

    torch.set_num_threads(settings.threads)

    from studies import attrs
    from studies.run import optuna_study
    from studies.store import open_storage, quiet_optuna_logs
    from studies.tracking import Tracker
    from sweeps import parse_spec

    quiet_optuna_logs()
    name, index = settings.study, settings.index
    storage = open_storage(settings.storage, heartbeat_interval=settings.heartbeat)
    # The launcher created the study and stored its spec: read it (no Study built for
    # that), then load the study with this worker's sampler.
    stored = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
    spec = parse_spec(stored[attrs.SPEC], f"study {name}")
    study = optuna_study(spec, name, storage, create=False, worker=index)
    tracker = Tracker(settings.tracking)
    observer = _ChannelObserver(channel)
    try:
        _loop(spec, study, tracker, settings, channel, observer)
    except BaseException:
        tracker.flush_runs(interrupted=True)  # bounded: seconds at most
        raise
    tracker.flush_runs(on_wait=observer.tracking_wait)  # what this process's outboxes hold


def _loop(
    spec: SweepSpec,
    study: optuna.Study,
    tracker: Tracker,
    settings: WorkerSettings,
    channel: _Channel,
    observer: _ChannelObserver,
) -> None:
    """The baseline (worker 0), then search trials and replicates as the launcher says."""
    from optuna.trial import FrozenTrial

    from studies.home import study_dir
    from studies.run import (
        TRIAL_FAILURES,
        Objective,
        SweepRuns,
        optimize,
        replicate_runner,
        run_jobs,
    )

    name, index = settings.study, settings.index
    runs = SweepRuns(spec, tracker, settings.experiment_id, settings.parent_run_id, name, observer)
    objective = Objective(runs, study_dir(settings.home, name))
    runner = replicate_runner(objective)
    if index == 0 and spec.baseline:
        run_jobs(study, [], runner)  # the baseline the launcher queued, before the search

    last: dict[str, Any] | None = None

    def record(_study: optuna.Study, trial: FrozenTrial) -> None:
        nonlocal last
        failure = objective.last_failure if trial.state.name == "FAIL" else None
        last = {"number": trial.number, "state": trial.state.name, "failure": _shown(failure)}

    while True:
        reply = channel.ask(last)
        if reply == "trial":
            last = None
            objective.last_failure = None
            optimize(
                study,
                objective,
                n_trials=1,
                catch=TRIAL_FAILURES,
                callbacks=[record],
                gc_after_trial=True,
            )
        elif reply == "confirm":
            last = None
            run_jobs(study, [], runner)  # the race's queued round; then ask again
        else:
            return


def _shown(failure: TrialFailure | None) -> list[Any] | str | None:
    """A trial's failure for the launcher: [epoch, step, value] of a non-finite loss, the
    message of a command trial's failure (see `studies.workers.launcher`)."""
    if failure is None:
        return None
    from trainer import NonFiniteLoss

    if isinstance(failure, NonFiniteLoss):
        return [failure.epoch, failure.step, failure.value]
    return str(failure)


def _preload() -> None:
    """Load the heavy modules (torch, Optuna, MLflow) before the settings arrive: the
    launcher prepares the study meanwhile."""
    import torch  # noqa: F401

    import studies.run.objective
    import studies.run.replicates
    import studies.run.sweep  # noqa: F401


def main() -> None:
    install_stop_handlers()
    channel = _Channel()
    settings: WorkerSettings | None = None
    try:
        _preload()
        line = sys.stdin.readline()
    except KeyboardInterrupt as exc:
        sys.exit(exit_code(exc))
    if not line.strip():
        sys.exit(0)  # the launch ended before it needed this worker (an error, a stop)
    try:
        settings = WorkerSettings.from_json(line)
        _die_with_parent(settings.parent_pid)
        _work(settings, channel)
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM: the trial is failed and closed
        sys.exit(exit_code(exc))
    except Exception as exc:
        from trainer.errors import UserError

        known = isinstance(exc, UserError)
        if not known and settings is not None and settings.debug:
            import traceback

            traceback.print_exc()  # to stderr: the launcher shows it
        message = str(exc) if known else f"unexpected {type(exc).__name__}: {exc}"
        channel.send("error", message=message, host=socket.gethostname())
        sys.exit(1)
    channel.send("done")


if __name__ == "__main__":
    main()
