"""``salsweep studies sync NAME``: send to the MLflow server what a study's runs journalled
in their outboxes (studies.outbox) and the server does not have yet.

A sweep whose tracking server was away finishes its trials all the same; their logs wait
in the outboxes under ``<home>/studies/<name>/`` (trial folders, replicates, the parent
run's ``mlflow-parent/``). A sync sends every pending operation, in order, checking first
whether the server has the first one already (a sender may have died mid-request):
nothing is logged twice, and a second sync sends nothing. It may run while a sweep of the
study is running: each operation is sent under the outbox's lock.

A run whose outbox has no end (its process died) and whose Optuna trial has ended (the
trial was failed by its missed heartbeats) is closed with the trial's state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studies.courier import ALREADY, REJECTED, SENT, Unreachable, send_next
from studies.outbox import OP_END, OP_LOG, RunOutbox, find_outboxes
from studies.tracking import CHILD_STATUS, ChildState, Tracker, TrackingError
from sweeps import check_study_name

__all__ = ["SyncReport", "sync_study"]


@dataclass
class SyncReport:
    """What a sync did, in runs (outboxes) and operations."""

    runs: int = 0  # outboxes of the study
    synced: int = 0  # runs that had operations to send
    sent: int = 0  # operations sent
    epochs: int = 0  # of those: batches of metrics (one per epoch)
    already: int = 0  # operations found on the server, not sent again
    rejected: int = 0  # operations the server refused (reasons in the outbox's state)
    closed: int = 0  # runs closed here: their trial had ended without closing them
    still_running: list[str] = field(default_factory=list)  # runs whose trial still runs


def _ended_trials(name: str, storage_url: str) -> dict[tuple[str, int], ChildState]:
    """(study, trial number) -> state of every ended trial of the study and its companion
    (none when the storage has no such study: nothing is closed then)."""
    from studies.catalog import StudyMismatch, read_study
    from studies.verdict import companion_name

    try:
        study = read_study(name, storage_url)
    except StudyMismatch:
        return {}
    states: dict[str, ChildState] = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAIL": "FAIL"}
    ended: dict[tuple[str, int], ChildState] = {}
    for study_name, record in ((name, study), (companion_name(name), study.companion)):
        for trial in record.trials if record is not None else ():
            if trial.state in states:
                ended[(study_name, trial.number)] = states[trial.state]
    return ended


def _owner(outbox: RunOutbox) -> tuple[str, int] | None:
    owner: Any = outbox.header.get("owner")
    if isinstance(owner, list) and len(owner) == 2:
        return str(owner[0]), int(owner[1])
    return None


def _close_if_ended(outbox: RunOutbox, ended: dict[tuple[str, int], ChildState]) -> bool:
    """Journal the end of a run whose trial ended without it (its process died)."""
    owner = _owner(outbox)
    if outbox.ended or owner is None or owner not in ended:
        return False
    state = ended[owner]
    outbox.append(
        {
            "op": OP_END,
            "status": CHILD_STATUS[state],
            "end_time": _ms_now(),
            "state": state,
            "value": None,
        }
    )
    return True


def _ms_now() -> int:
    return int(time.time() * 1000)


def _sync_one(
    tracker: Tracker,
    outbox: RunOutbox,
    ended: dict[tuple[str, int], ChildState],
    report: SyncReport,
) -> None:
    with outbox.claim(wait=True):
        outbox.refresh()
        if _close_if_ended(outbox, ended):
            report.closed += 1
        if not outbox.has_pending():
            return
    report.synced += 1
    while True:
        with outbox.claim(wait=True):
            outbox.refresh()  # a live sweep may have sent or journalled more meanwhile
            op = outbox.next_op()
            result = send_next(tracker, outbox)
        if result is None:
            break
        if result == SENT:
            report.sent += 1
            report.epochs += int(op is not None and op["op"] == OP_LOG and bool(op["metrics"]))
        elif result == ALREADY:
            report.already += 1
        elif result == REJECTED:
            report.rejected += 1
    if not outbox.ended:
        report.still_running.append(outbox.run_name)


def sync_study(name: str, home: Path, tracking_uri: str, storage_url: str) -> SyncReport:
    """Send every pending operation of every run of study ``name`` (its folder under
    ``home``) to ``tracking_uri``. Raises `TrackingError` when the server does not answer
    (before or during the sync: what was sent stays sent, run it again)."""
    folder = home / "studies" / check_study_name(name)
    if not folder.is_dir():
        raise TrackingError(
            f"study {name!r} has no folder {folder}: nothing to sync (is --home the data "
            "dir the sweep ran with?)"
        )
    tracker = Tracker(tracking_uri)
    tracker.check_reachable()
    ended = _ended_trials(name, storage_url)
    report = SyncReport()
    for outbox in find_outboxes(folder):
        report.runs += 1
        try:
            _sync_one(tracker, outbox, ended, report)
        except Unreachable as exc:
            raise TrackingError(
                f"MLflow server {tracker.shown_uri} stopped answering during the sync "
                f"({report.sent} operations sent so far; run `salsweep studies sync {name}` "
                f"again): {exc}"
            ) from None
    return report
