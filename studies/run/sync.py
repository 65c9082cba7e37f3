"""``salsweep studies sync NAME``: send to the MLflow server what a study's runs journalled
in their outboxes (studies.tracking.outbox) and the server does not have yet.

A sweep whose tracking server was away finishes its trials all the same; their logs wait
in the outboxes under ``<home>/studies/<name>/`` (trial folders, replicates, the parent
run's ``mlflow-parent/``). A sync sends every pending operation, in order, checking first
whether the server has the first one already (a sender may have died mid-request):
nothing is logged twice, and a second sync sends nothing. It may run while a sweep of the
study is running: each operation is sent under the outbox's lock.

A run whose outbox has no end (its process died) and whose Optuna trial has ended (the
trial was failed by its missed heartbeats) is closed with the trial's state.

A run created after its trial ended (the server was away while the trial ran) has its id
recorded on the trial's study (`record_late_run_ids`, `attrs.LATE_RUN_ID`), so that
`studies show` and `export` name it: by the sync, and by the sweep itself as it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies import attrs
from studies.home import study_dir
from studies.store import StudyRecord, apply_late_run_ids
from studies.tracking import (
    ALREADY,
    CHILD_STATUS,
    OP_END,
    OP_LOG,
    REJECTED,
    SENT,
    ChildState,
    Client,
    RunOutbox,
    TrackingError,
    Unreachable,
    find_outboxes,
    now_ms,
    send_next,
)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = ["SyncReport", "late_run_ids", "record_late_run_ids", "sync_study"]


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
    recorded: int = 0  # run ids recorded on the study: runs created after their trial ended
    still_running: list[str] = field(default_factory=list)  # runs whose trial still runs


def _read(name: str, storage_url: str) -> StudyRecord | None:
    """Study ``name`` with its companion; None when the storage has no such study (then
    nothing is closed or recorded)."""
    from studies.store import StudyMismatch, read_study

    try:
        return read_study(name, storage_url)
    except StudyMismatch:
        return None


def _ended_trials(study: StudyRecord | None) -> dict[tuple[str, int], ChildState]:
    """(study, trial number) -> state of every ended trial of the study and its companion."""
    states: dict[str, ChildState] = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAIL": "FAIL"}
    ended: dict[tuple[str, int], ChildState] = {}
    for record in (study, None if study is None else study.companion):
        if record is None:
            continue
        for trial in record.trials:
            if trial.state in states:
                ended[(record.study_name, trial.number)] = states[trial.state]
    return ended


def _lacks_run_ids(study: StudyRecord) -> bool:
    """Whether a trial of ``study`` or of its companion has no MLflow run id."""
    records = (study, study.companion)
    trials = (t for r in records if r is not None for t in r.trials)
    return any(attrs.MLFLOW_RUN_ID not in t.user_attrs for t in trials)


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
            "end_time": now_ms(),
            "state": state,
            "value": None,
        }
    )
    return True


# Optuna's finished states: a trial in one of them has ended and its attributes are fixed.
_ENDED = ("COMPLETE", "PRUNED", "FAIL")


def late_run_ids(record: StudyRecord, outboxes: Sequence[RunOutbox]) -> dict[tuple[str, int], str]:
    """(study name, trial number) -> MLflow run id, for each ended trial of ``record`` (and
    of its companion) that has no run id and whose run the server has created since, as its
    outbox among ``outboxes`` tells."""
    missing: set[tuple[str, int]] = set()
    for each in (record, record.companion):
        if each is None:
            continue
        for trial in each.trials:
            key = f"{attrs.LATE_RUN_ID}{trial.number}"
            if (
                trial.state in _ENDED
                and attrs.MLFLOW_RUN_ID not in trial.user_attrs
                and key not in each.user_attrs
            ):
                missing.add((each.study_name, trial.number))
    found: dict[tuple[str, int], str] = {}
    for outbox in outboxes if missing else ():
        owner, run_id = _owner(outbox), outbox.run_id
        if owner is not None and run_id is not None and owner in missing:
            found[owner] = run_id
            missing.discard(owner)
    return found


def record_late_run_ids(
    storage: BaseStorage, record: StudyRecord, outboxes: Sequence[RunOutbox]
) -> tuple[StudyRecord, int]:
    """Record on the study (and on its companion study) the MLflow run of each ended trial
    that has none, from ``outboxes`` (see `late_run_ids`); returns ``record`` with them,
    and how many there were. An ended trial's attributes cannot change: the id goes on the
    study as `attrs.LATE_RUN_ID` + number, which `studies.store.records` reads as the
    trial's."""
    found = late_run_ids(record, outboxes)
    ids: dict[str, int] = {}
    for (name, number), run_id in found.items():
        if name not in ids:
            ids[name] = storage.get_study_id_from_name(name)
        storage.set_study_user_attr(ids[name], f"{attrs.LATE_RUN_ID}{number}", run_id)
    return apply_late_run_ids(record, found), len(found)


def _sync_one(
    client: Client,
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
            result = send_next(client, outbox)
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
    folder = study_dir(home, name)
    if not folder.is_dir():
        raise TrackingError(
            f"study {name!r} has no folder {folder}: nothing to sync (is --home the data "
            "dir the sweep ran with?)"
        )
    client = Client(tracking_uri)
    client.check_reachable()
    study = _read(name, storage_url)
    ended = _ended_trials(study)
    report = SyncReport()
    for outbox in find_outboxes(folder):
        report.runs += 1
        try:
            _sync_one(client, outbox, ended, report)
        except Unreachable as exc:
            raise TrackingError(
                f"MLflow server {client.shown_uri} stopped answering during the sync "
                f"({report.sent} operations sent so far; run `salsweep studies sync {name}` "
                f"again): {exc}"
            ) from None
    if study is not None and _lacks_run_ids(study):
        from studies.store import open_storage

        _, report.recorded = record_late_run_ids(
            open_storage(storage_url), study, find_outboxes(folder)
        )
    return report
