"""Stop signals: SIGTERM (``docker stop``, ``kill``) is the same clean stop as Ctrl-C.

`install_stop_handlers` makes the first SIGINT raise ``KeyboardInterrupt`` and the first
SIGTERM raise `Terminated` (a ``KeyboardInterrupt``, so every cleanup path of Ctrl-C runs:
the running trial FAILED in Optuna, its MLflow run closed, the parent run KILLED). Later
signals are ignored, so that a second Ctrl-C (or the one the launcher forwards to a worker
that the terminal already interrupted) cannot break off that cleanup half way; a worker
that does not finish it in time is killed by its launcher (studies.workers.launcher).

`hold_stop` / `release_stop` bracket the recording of a trial's end (its MLflow run's end
journalled and sent, then Optuna's tell): a stop signal that arrives in between takes
effect at `release_stop`, once Optuna has stored the trial. Without it, Ctrl-C in that
window left a run FINISHED for a trial that Optuna then failed.

`check_stop` raises the stop again at the points where training goes on (each epoch's
end, each trial's end): Python drops an exception raised while it runs a garbage-collection
callback or a ``__del__`` ("Exception ignored in ..."), and a signal that arrives there
would otherwise be lost, the sweep running on to its end (seen in a whole-suite run: Ctrl-C
during SQLAlchemy's ``_collection_gced``). Once a stop has really propagated, training does
not reach those points again.

Imports nothing heavy: the CLI installs the handlers before it loads torch or MLflow.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = [
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "Terminated",
    "check_stop",
    "exit_code",
    "hold_stop",
    "install_stop_handlers",
    "release_stop",
    "stop_also_on",
]

EXIT_SIGINT = 128 + signal.SIGINT  # 130, the shell's code for a process ended by Ctrl-C
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: stop as on Ctrl-C, exit 143."""

    def __init__(self) -> None:
        super().__init__("SIGTERM")


def exit_code(exc: BaseException) -> int:
    """143 for `Terminated`, 130 for any other interruption."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def _stop_exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class _StopOnce:
    """The handler of both signals: raises on the first one (or, while held, records it
    for `release`), ignores the rest."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.held = False
        self.pending = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping: let the cleanup finish
        self.received = signum
        if self.held:
            self.pending = True
            return
        raise _stop_exception(signum)

    def release(self, *, raise_pending: bool) -> None:
        self.held = False
        if self.pending and self.received is not None:
            self.pending = False
            if raise_pending:
                raise _stop_exception(self.received)


_HANDLER: _StopOnce | None = None  # the installed handler (main thread only)


def hold_stop() -> None:
    """From now until `release_stop`, a stop signal is recorded, not raised (a no-op where
    the handlers are not installed, or off the main thread)."""
    if _HANDLER is not None and threading.current_thread() is threading.main_thread():
        _HANDLER.held = True


def release_stop(*, raise_pending: bool = True) -> None:
    """End a `hold_stop`: the stop signal that arrived meanwhile is raised now (dropped
    with ``raise_pending=False``, where another exception is already on its way; the
    process still counts as stopping: later signals are ignored)."""
    if _HANDLER is not None and threading.current_thread() is threading.main_thread():
        _HANDLER.release(raise_pending=raise_pending)


def check_stop() -> None:
    """Raise the stop signal received earlier (its exception lost: see the module), unless
    it is held; a no-op where no stop signal came, off the main thread, or where the
    handlers are not installed. Call it only where training goes on, never in cleanup."""
    handler = _HANDLER
    if (
        handler is not None
        and handler.received is not None
        and not handler.held
        and threading.current_thread() is threading.main_thread()
    ):
        raise _stop_exception(handler.received)


def install_stop_handlers() -> bool:
    """Install the handlers (main thread only; elsewhere nothing is done and False is
    returned). SIGINT keeps being ignored where the process started with it ignored (a
    command run in the background by a shell, or under ``nohup``)."""
    global _HANDLER
    if threading.current_thread() is not threading.main_thread():
        return False
    handler = _HANDLER = _StopOnce()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return True


def stop_also_on(signum: int) -> bool:
    """Make ``signum`` stop this process as SIGTERM does (`Terminated`, exit 143), once
    `install_stop_handlers` has run (else nothing is done and False is returned): the
    warning a cluster sends before a job's time limit (SIGUSR2, studies.cluster.worker)."""
    handler = _HANDLER
    if handler is None or threading.current_thread() is not threading.main_thread():
        return False

    def as_sigterm(_signum: int, frame: FrameType | None) -> None:
        handler(signal.SIGTERM, frame)

    signal.signal(signum, as_sigterm)
    return True
