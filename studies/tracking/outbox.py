"""The MLflow outbox of one run: its MLflow operations journalled on disk, in order, and
how many of them the tracking server has acknowledged.

Training never waits on the tracking server: a trial writes what it would send (create
the run, log params, one batch of metrics per epoch, upload a file, close the run) to its
outbox, and a sender (studies.tracking.courier) sends the operations in order when the server
answers. A server that is away loses nothing: the operations wait on disk, and
``salsweep studies sync NAME`` sends them later, from another process if need be.

Files, in the run's folder (a trial's output folder, a replicate's, or
``<study dir>/mlflow-parent/<key>/`` for a sweep process's parent-run summary):

- ``mlflow-outbox-<key>.jsonl``: one JSON object a line, ``{"seq": n, "op": KIND, ...}``,
  ``seq`` counting from 0; appended and flushed as the run goes (a process that dies
  keeps every line written before). A line cut short by a crash is skipped on reading.
- ``mlflow-outbox-<key>.state.json``: ``{"run_id", "acked", "already", "rejected"}``,
  replaced whole (write and rename) after every acknowledged operation: ``acked`` is how
  many operations are done; only those after it are ever sent.

Nothing is logged twice: an operation whose request failed (or that a crashed process
may have sent without recording it) is *uncertain*, and the sender checks the server for
it before sending it again (``verify_next``). Whoever sends holds an exclusive lock on the
journal (``claim``) and re-reads the state under it, so that a sweep and ``studies sync``
never send the same operation.

Operation kinds (fields besides ``seq`` and ``op``):

- ``create_run``: ``experiment_id``, ``run_name``, ``tags`` (they include ``KEY_TAG``:
  the outbox's key, by which an uncertain creation is found again), ``start_time`` (ms);
- ``attach``: ``run_id`` of a run that exists already (a sweep's parent run);
- ``log_batch``: ``metrics`` (``[key, value, timestamp_ms, step]`` lists; NaN for a
  non-finite value), ``params`` and ``tags`` (string maps); one request's worth;
- ``artifact``: ``path`` (relative to the folder, or absolute) of a file or folder,
  ``artifact_path`` (None: the artifacts' root);
- ``end_run``: ``status`` (FINISHED, KILLED, FAILED), ``end_time`` (ms), optional
  ``state`` (tag ``optuna.state``) and ``value`` (metric ``optuna.value``).

``owner`` of a ``create_run``: ``[study, trial number]`` of the Optuna trial the run
belongs to, so that ``studies sync`` can close a run whose process died with the trial's
state.

Imports neither MLflow nor torch: the sender and ``studies sync`` import what they need.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.io import NO_SPACE_ERRNOS, OutputError, OutputSpaceError

__all__ = [
    "JOURNAL_GLOB",
    "KEY_TAG",
    "OP_ARTIFACT",
    "OP_ATTACH",
    "OP_CREATE",
    "OP_END",
    "OP_LOG",
    "OutboxState",
    "RunOutbox",
    "find_outboxes",
]

# The tag of a run created from an outbox: the outbox's key.
KEY_TAG = "salsweep.outbox"
PREFIX = "mlflow-outbox-"
JOURNAL_SUFFIX = ".jsonl"
STATE_SUFFIX = ".state.json"
JOURNAL_GLOB = f"{PREFIX}*{JOURNAL_SUFFIX}"

OP_CREATE = "create_run"
OP_ATTACH = "attach"
OP_LOG = "log_batch"
OP_ARTIFACT = "artifact"
OP_END = "end_run"
OP_KINDS = frozenset({OP_CREATE, OP_ATTACH, OP_LOG, OP_ARTIFACT, OP_END})
# Rejections kept in the state file (their count is always kept).
MAX_REJECTIONS_KEPT = 20


@dataclass
class OutboxState:
    """What the server has of a run's outbox."""

    run_id: str | None = None
    acked: int = 0  # operations done: sent, found on the server, or rejected
    already: int = 0  # of those: found on the server when checked, not sent again
    rejected: int = 0  # of those: refused by the server (e.g. the run was deleted)
    reasons: list[str] = field(default_factory=list)  # the first rejections' messages


def _write_error(path: Path, exc: OSError) -> OutputError:
    cls = OutputSpaceError if exc.errno in NO_SPACE_ERRNOS else OutputError
    return cls(path.parent, path.name, exc)


def _dumps(data: dict[str, Any]) -> str:
    # allow_nan: a diverged epoch's NaN is kept as NaN (Python's json reads it back).
    return json.dumps(data, separators=(",", ":"), allow_nan=True)


class RunOutbox:
    """One run's journal and state (see the module's docstring).

    Thread-safe for one appending thread and one sending thread of a process; processes
    coordinate through :meth:`claim`.
    """

    def __init__(self, journal: Path) -> None:
        name = journal.name
        if not (name.startswith(PREFIX) and name.endswith(JOURNAL_SUFFIX)):
            raise ValueError(f"not an MLflow outbox journal: {journal}")
        self.journal = journal
        self.folder = journal.parent
        self.key = name[len(PREFIX) : -len(JOURNAL_SUFFIX)]
        self.state_path = self.folder / f"{PREFIX}{self.key}{STATE_SUFFIX}"
        self.ops: list[dict[str, Any]] = []
        self.state = OutboxState()
        # Whether the next operation may have reached the server already (a failed
        # request, or a journal read from disk whose sender may have died mid-request).
        self.verify_next = True
        self._read_journal()
        self.reload_state()

    # ------------------------------------------------------------------ creation, reading

    @classmethod
    def create(cls, folder: Path, header: dict[str, Any], *, key: str | None = None) -> RunOutbox:
        """A new outbox in ``folder`` whose first operation is ``header`` (a ``create_run``
        or an ``attach``); an ``attach`` is acknowledged at once."""
        key = key or uuid.uuid4().hex[:16]
        journal = folder / f"{PREFIX}{key}{JOURNAL_SUFFIX}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            journal.touch(exist_ok=False)
        except OSError as exc:
            raise _write_error(journal, exc) from exc
        outbox = cls(journal)
        outbox.verify_next = False  # nothing was ever sent
        outbox.append(dict(header))
        if header["op"] == OP_ATTACH:
            outbox.state.run_id = str(header["run_id"])
            outbox.state.acked = 1
            outbox._write_state()
        return outbox

    def _read_journal(self) -> None:
        try:
            text = self.journal.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        ops: list[dict[str, Any]] = []
        for line in text.splitlines():
            try:
                op = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash; the next op reuses its seq
            if isinstance(op, dict) and op.get("seq") == len(ops) and op.get("op") in OP_KINDS:
                ops.append(op)
        self.ops = ops

    def reload_state(self) -> None:
        """Read the state file again (another process may have sent operations)."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        known = OutboxState.__dataclass_fields__
        self.state = OutboxState(**{k: v for k, v in data.items() if k in known})
        self.state.acked = min(self.state.acked, len(self.ops))

    def refresh(self) -> None:
        """Read journal and state again (operations appended by another process)."""
        self._read_journal()
        self.reload_state()

    # ------------------------------------------------------------------ the training side

    def append(self, op: dict[str, Any]) -> int:
        """Journal ``op`` (its kind in ``op["op"]``); returns its sequence number."""
        if op.get("op") not in OP_KINDS:
            raise ValueError(f"unknown outbox operation {op.get('op')!r}")
        seq = len(self.ops)
        line = _dumps({"seq": seq, **op}) + "\n"
        try:
            with self.journal.open("a", encoding="utf-8") as handle:
                # A previous writer that died mid-line left no newline: end its line first.
                if handle.tell() and not self._ends_with_newline():
                    handle.write("\n")
                handle.write(line)
                handle.flush()
        except OSError as exc:
            raise _write_error(self.journal, exc) from exc
        self.ops.append({"seq": seq, **op})
        return seq

    def _ends_with_newline(self) -> bool:
        with self.journal.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    # ------------------------------------------------------------------ the sending side

    @property
    def run_id(self) -> str | None:
        return self.state.run_id

    @property
    def header(self) -> dict[str, Any]:
        return self.ops[0] if self.ops else {}

    @property
    def run_name(self) -> str:
        return str(self.header.get("run_name") or self.header.get("label") or self.key)

    @property
    def ended(self) -> bool:
        """Whether the run's closing operation is journalled."""
        return any(op["op"] == OP_END for op in self.ops)

    def pending(self) -> list[dict[str, Any]]:
        """The operations the server does not have yet, in order."""
        return self.ops[self.state.acked :]

    def has_pending(self) -> bool:
        return self.state.acked < len(self.ops)

    def next_op(self) -> dict[str, Any] | None:
        return self.ops[self.state.acked] if self.has_pending() else None

    def ack(self, seq: int, *, run_id: str | None = None, already: bool = False) -> None:
        """Operation ``seq`` is on the server (``already``: it was found there, not sent)."""
        if seq != self.state.acked:
            raise ValueError(
                f"acknowledging operation {seq} of {self.journal}, expected {self.state.acked}"
            )
        if run_id is not None:
            self.state.run_id = run_id
        self.state.acked = seq + 1
        self.state.already += int(already)
        self.verify_next = False
        self._write_state()

    def reject(self, seq: int, reason: str) -> None:
        """The server refused operation ``seq`` for good: skip it, keep the reason."""
        if seq != self.state.acked:
            raise ValueError(
                f"rejecting operation {seq} of {self.journal}, expected {self.state.acked}"
            )
        self.state.acked = seq + 1
        self.state.rejected += 1
        if len(self.state.reasons) < MAX_REJECTIONS_KEPT:
            self.state.reasons.append(f"operation {seq} ({self.ops[seq]['op']}): {reason}")
        self.verify_next = False
        self._write_state()

    def _write_state(self) -> None:
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(self.state)), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_error(self.state_path, exc) from exc

    @contextlib.contextmanager
    def claim(self, *, wait: bool = False) -> Iterator[bool]:
        """Hold the journal's lock (yields False when another process holds it and not
        ``wait``); the state is re-read once held."""
        with self.journal.open("rb") as handle:
            flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            try:
                fcntl.flock(handle, flags)
            except BlockingIOError:
                yield False
                return
            try:
                self.reload_state()
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def resolve(self, path: str) -> Path:
        """An ``artifact`` operation's path: relative ones are under the folder."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.folder / candidate

    def __repr__(self) -> str:
        return f"RunOutbox({str(self.journal)!r}, acked={self.state.acked}/{len(self.ops)})"


def find_outboxes(root: Path) -> list[RunOutbox]:
    """Every outbox under ``root`` (a study's folder), in a stable order."""
    if not root.is_dir():
        return []
    return [RunOutbox(path) for path in sorted(root.rglob(JOURNAL_GLOB))]
