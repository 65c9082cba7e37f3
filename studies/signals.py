"""Stop signals: SIGTERM (``docker stop``, ``kill``) is the same clean stop as Ctrl-C.

`install_stop_handlers` makes the first SIGINT raise ``KeyboardInterrupt`` and the first
SIGTERM raise `Terminated` (a ``KeyboardInterrupt``, so every cleanup path of Ctrl-C runs:
the running trial FAILED in Optuna, its MLflow run closed, the parent run KILLED). Later
signals are ignored, so that a second Ctrl-C (or the one the launcher forwards to a worker
that the terminal already interrupted) cannot break off that cleanup half way; a worker
that does not finish it in time is killed by its launcher (studies.workers).

Imports nothing heavy: the CLI installs the handlers before it loads torch or MLflow.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "Terminated", "exit_code", "install_stop_handlers"]

EXIT_SIGINT = 128 + signal.SIGINT  # 130, the shell's code for a process ended by Ctrl-C
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: stop as on Ctrl-C, exit 143."""

    def __init__(self) -> None:
        super().__init__("SIGTERM")


def exit_code(exc: BaseException) -> int:
    """143 for `Terminated`, 130 for any other interruption."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


class _StopOnce:
    """The handler of both signals: raises on the first one, ignores the rest."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping: let the cleanup finish
        self.received = signum
        if signum == signal.SIGTERM:
            raise Terminated
        raise KeyboardInterrupt


def install_stop_handlers() -> bool:
    """Install the handlers (main thread only; elsewhere nothing is done and False is
    returned). SIGINT keeps being ignored where the process started with it ignored (a
    command run in the background by a shell, or under ``nohup``)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    handler = _StopOnce()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return True
