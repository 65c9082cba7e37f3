"""Process trees that salsweep starts and stops (the MLflow server, a command trial's
program): a process group and the descendants that left it, found through /proc, stopped
with SIGTERM then SIGKILL. A leaf: the standard library only.

Such a program is started in a session of its own (``start_new_session``): its pid is its
process group id, and one ``killpg`` reaches every process it starts, grandchildren
included. A descendant that starts its own session (MLflow's local job executor does)
leaves the group, so the leader's descendants are signalled too.

The leader is not reaped until its group is gone (its exit is seen with ``waitid(...,
WNOWAIT)``): while it is a zombie, its pid, and so the group id, cannot be given to another
process, so a late ``killpg`` never reaches a stranger.

Linux (/proc). Elsewhere the group is signalled all the same, but who is left cannot be
listed: SIGKILL follows the grace unless the leader has exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HAVE_PROC",
    "StopOutcome",
    "cmdline",
    "exit_status",
    "live_processes",
    "process_stat",
    "signal_processes",
    "stop_group",
    "tree_processes",
]

HAVE_PROC = Path("/proc/self/stat").exists()
_TICK_S = 0.02  # how often a stop looks whether the processes are gone
_KILL_WAIT_S = 5.0  # how long SIGKILLed processes get to disappear (uninterruptible I/O)


def process_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def live_processes() -> dict[int, tuple[int, int]]:
    """Every live (not zombie) process: pid -> (ppid, pgrp). Empty without /proc."""
    out: dict[int, tuple[int, int]] = {}
    if not HAVE_PROC:
        return out
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = process_stat(int(entry))
            if stat is not None and stat[0] != "Z":
                out[int(entry)] = (stat[1], stat[2])
    return out


def cmdline(pid: int) -> str:
    """The command line of ``pid`` (arguments joined by spaces); empty when it is gone."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def tree_processes(pgid: int, leader: int | None = None, known: set[int] | None = None) -> set[int]:
    """Live processes of a tree: its group ``pgid``, the ``leader`` (default: the pid
    ``pgid``) if alive, every descendant of the leader or of a group member, and the
    ``known`` pids still alive."""
    procs = live_processes()
    first = pgid if leader is None else leader
    found = {p for p, (_, pgrp) in procs.items() if pgrp == pgid}
    found |= {p for p in known or () if p in procs}
    frontier = {first} | found
    while frontier:
        children = {p for p, (ppid, _) in procs.items() if ppid in frontier} - found
        found |= children
        frontier = children
    if first in procs:
        found.add(first)
    return found


def exit_status(pid: int) -> int | None:
    """The exit code of child ``pid`` once it has ended (negative: the signal that ended
    it), None while it runs. The child is not reaped (``WNOWAIT``)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None or info.si_pid == 0:
        return None
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status  # CLD_KILLED, CLD_DUMPED


def signal_processes(pgid: int, pids: set[int], sig: signal.Signals) -> None:
    """Send ``sig`` to the group ``pgid`` and to each of ``pids`` (gone ones skipped)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@dataclass(frozen=True)
class StopOutcome:
    """How a stop went: signals sent, the seconds from SIGTERM until nothing was left,
    and the pids that outlived even SIGKILL (processes stuck in the kernel)."""

    sigterm: bool
    sigkill: bool
    seconds: float
    left: frozenset[int]


def _wait_gone(pgid: int, known: set[int], deadline: float) -> set[int]:
    while True:
        if HAVE_PROC:
            left = tree_processes(pgid, known=known)
            known |= left
        else:
            left = set() if exit_status(pgid) is not None else {pgid}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(_TICK_S)


def stop_group(pgid: int, grace_s: float) -> StopOutcome:
    """SIGTERM to the group ``pgid`` and its descendants, SIGKILL to whatever is left
    after ``grace_s`` seconds; returns once nothing is left (or SIGKILL did not end it
    within a few seconds: `StopOutcome.left`). Nothing is sent when nothing is left."""
    started = time.monotonic()
    known = tree_processes(pgid) if HAVE_PROC else {pgid}
    if HAVE_PROC and not known:
        return StopOutcome(False, False, 0.0, frozenset())
    signal_processes(pgid, known, signal.SIGTERM)
    left = _wait_gone(pgid, known, started + grace_s)
    if not left:
        return StopOutcome(True, False, time.monotonic() - started, frozenset())
    signal_processes(pgid, left, signal.SIGKILL)  # alive just now: no pid reused by a stranger
    left = _wait_gone(pgid, known, time.monotonic() + _KILL_WAIT_S)
    return StopOutcome(True, True, time.monotonic() - started, frozenset(left))
