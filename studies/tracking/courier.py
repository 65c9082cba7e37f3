"""Sending the runs' outboxes (studies.tracking.outbox) to the MLflow server, so that
training never waits on it. The training side (studies.tracking.runlog) journals; one
:class:`Courier` per process and server (a daemon thread, handed its `Transport`) sends
the open outboxes' operations in order, one request each. When the server does not
answer it backs off (1, 2, 4 ... 15 s, probing ``/health`` first) and catches up later.
Over 400 lines: the thread, its back-off and the bounded flushes share one lock and one
state; split, each half would reach into the other's.

Waits, all bounded and all skipped while the server is known to be away:

- a new run waits up to ``CREATE_WAIT_S`` for its creation (about 0.1 s when the server
  answers), so that the trial's ``mlflow_run_id`` is known as it starts;
- a run's end waits up to ``END_WAIT_S`` for its last operations, so that the MLflow UI is
  current when a trial ends;
- a sweep's end waits up to ``SWEEP_FLUSH_S`` for all its outboxes, trying a server that
  is away every second (it may be restarting); what is left stays on disk for
  ``salsweep studies sync NAME`` (studies.run.sync). An interrupted sweep waits
  ``END_WAIT_S`` at most, and not at all while the server is away. A wait that lasts
  ``WAIT_NOTICE_S`` is announced (``on_wait``), so that the user knows why nothing moves.

A request that fails is classified by `send_next`: refused by the server (HTTP 4xx other
than 408 and 429, e.g. a deleted run) means the operation is skipped and counted as
rejected in the outbox's state; anything else (refused connection, timeout, 5xx) means the
server is away, and the operation is checked before it is sent again (see
studies.tracking.outbox: nothing is logged twice).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mlflow.exceptions import MlflowException, RestException

from studies.tracking.layout import (
    RunEnd,
)
from studies.tracking.outbox import (
    KEY_TAG,
    OP_ARTIFACT,
    OP_ATTACH,
    OP_CREATE,
    OP_END,
    OP_LOG,
    RunOutbox,
)
from studies.urls import error_line

__all__ = [
    "ALREADY",
    "REJECTED",
    "SENT",
    "Courier",
    "Transport",
    "Unreachable",
    "courier_for",
    "flush_process",
    "send_next",
]

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 15.0
# While a flush waits, a server that is away is tried again at least this often.
FLUSH_RETRY_S = 1.0
HEALTH_TIMEOUT_S = 2.0
# A request unanswered this long: the server is taken as away until it answers (a hung
# server is not waited on by the training side while the courier waits on it).
STUCK_S = 3.0
CREATE_WAIT_S = 5.0
END_WAIT_S = 5.0
SWEEP_FLUSH_S = 30.0
# A flush still waiting after this long calls its ``on_wait`` (the user is told).
WAIT_NOTICE_S = 2.0

SENT = "sent"
ALREADY = "already"
REJECTED = "rejected"


class Unreachable(Exception):
    """The server did not answer (or failed) a request; the operation stays pending."""


class Transport(Protocol):
    """The requests the courier sends, one journalled operation each; they raise the MLflow
    client's own exceptions (studies.tracking.client.Client is one). The courier is handed
    its transport, as MLflow's async logging queue is handed its ``logging_func``."""

    tracking_uri: str

    def answers(self, timeout: float) -> bool: ...

    def create_run(
        self, experiment_id: str, run_name: str, tags: Mapping[str, str], start_time: int
    ) -> str: ...

    def find_run(self, experiment_id: str, tag: str, value: str) -> str | None: ...

    def send_batch(
        self,
        run_id: str,
        metrics: Sequence[tuple[str, float, int, int]],
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> None: ...

    def has_metric(self, run_id: str, key: str, step: int, timestamp: int) -> bool: ...

    def upload(self, run_id: str, path: Path, artifact_path: str | None) -> None: ...

    def finish_run(
        self,
        run_id: str,
        status: RunEnd,
        end_time: int,
        state: str | None = None,
        value: float | None = None,
    ) -> None: ...


def _refused(exc: BaseException) -> bool:
    """A request the server answered with a refusal that will not change on retry."""
    if isinstance(exc, RestException):
        status = exc.get_http_status_code()
    else:
        response = getattr(exc, "response", None)  # requests.HTTPError (artifact uploads)
        status = getattr(response, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


# ---------------------------------------------------------------------------- sending


def _apply(
    transport: Transport, outbox: RunOutbox, op: dict[str, Any], verify: bool
) -> tuple[bool, str | None]:
    """Send ``op`` (checking first, when ``verify``, whether the server has it already).
    Returns (found on the server, the run id when the op gives one)."""
    kind = op["op"]
    if kind == OP_ATTACH:
        return False, str(op["run_id"])
    if kind == OP_CREATE:
        if verify:
            found = transport.find_run(str(op["experiment_id"]), KEY_TAG, outbox.key)
            if found is not None:
                return True, found
        created = transport.create_run(
            str(op["experiment_id"]), str(op["run_name"]), op["tags"], int(op["start_time"])
        )
        return False, created
    run_id = outbox.run_id
    assert run_id is not None
    if kind == OP_LOG:
        metrics = [(str(k), float(v), int(ts), int(step)) for k, v, ts, step in op["metrics"]]
        if verify and metrics:
            key, _, stamp, step = metrics[0]
            if transport.has_metric(run_id, key, step, stamp):
                return True, None
        # Params and tags are idempotent: sending them again changes nothing.
        transport.send_batch(run_id, metrics, op.get("params") or {}, op.get("tags") or {})
    elif kind == OP_ARTIFACT:
        transport.upload(run_id, outbox.resolve(str(op["path"])), op.get("artifact_path"))
    elif kind == OP_END:
        # Idempotent too: a metric with the same key, value, step and time is stored once.
        transport.finish_run(
            run_id, op["status"], int(op["end_time"]), op.get("state"), op.get("value")
        )
    return False, None


def send_next(transport: Transport, outbox: RunOutbox) -> str | None:
    """Send the outbox's next pending operation: ``SENT``, ``ALREADY`` (found on the
    server), ``REJECTED`` (refused for good, skipped) or None (nothing pending).
    Raises `Unreachable` when the server is away; the operation stays pending and is
    checked before it is sent again. Call it holding ``outbox.claim()``."""
    op = outbox.next_op()
    if op is None:
        return None
    seq = int(op["seq"])
    if op["op"] not in (OP_CREATE, OP_ATTACH) and outbox.run_id is None:
        outbox.reject(seq, "its run was never created")
        return REJECTED
    if op["op"] == OP_ARTIFACT and not outbox.resolve(str(op["path"])).exists():
        outbox.reject(seq, f"{op['path']} is gone from {outbox.folder}")
        return REJECTED
    try:
        found, run_id = _apply(transport, outbox, op, outbox.verify_next)
    except (MlflowException, OSError) as exc:
        if _refused(exc):
            outbox.reject(seq, error_line(exc))
            return REJECTED
        outbox.verify_next = True
        raise Unreachable(error_line(exc)) from exc
    outbox.ack(seq, run_id=run_id, already=found)
    return ALREADY if found else SENT


# ---------------------------------------------------------------------------- the thread


class Courier:
    """Sends the outboxes given to :meth:`add` from a daemon thread (see the module)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._cond = threading.Condition()
        self._outboxes: list[RunOutbox] = []
        self._urgent: list[RunOutbox] = []
        self._waiters = 0
        self._thread: threading.Thread | None = None
        # Monotonic time since which the server has not answered (None: it answers).
        self.down_since: float | None = None
        self.last_error = ""
        self._failed_at = -math.inf
        self._backoff = 0.0
        self._retry_at = 0.0
        self._busy_until: dict[int, float] = {}
        self._sending_since: float | None = None

    @property
    def reachable(self) -> bool:
        """False from a failed request until the next one that succeeds, and while a
        request has been waiting for an answer longer than ``STUCK_S``."""
        return self.down_since is None and not self._stuck()

    def _stuck(self) -> bool:
        sending = self._sending_since
        return sending is not None and time.monotonic() - sending > STUCK_S

    def add(self, outbox: RunOutbox) -> None:
        with self._cond:
            self._outboxes.append(outbox)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="salsweep-mlflow-courier", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def notify(self) -> None:
        """New operations were journalled."""
        with self._cond:
            self._cond.notify_all()

    def pending(self, root: Path | None = None) -> list[RunOutbox]:
        """Outboxes (under ``root``) with operations the server does not have yet."""
        with self._cond:
            mine = [o for o in self._outboxes if root is None or o.folder.is_relative_to(root)]
        return [o for o in mine if o.has_pending()]

    def flush(
        self,
        outboxes: Sequence[RunOutbox],
        *,
        timeout: float,
        patience: float,
        on_wait: Callable[[int, float], None] | None = None,
    ) -> bool:
        """Wait until ``outboxes`` are sent, ``timeout`` seconds at most; True when they
        are. Gives up early once an attempt made during the flush has failed and the server
        has been away for ``patience`` seconds; with no patience, also when a request has
        waited ``STUCK_S`` for its answer. Still waiting after ``WAIT_NOTICE_S``: calls
        ``on_wait(outboxes not sent, seconds left at most)`` once."""
        start = time.monotonic()
        deadline = start + timeout
        notice = on_wait
        with self._cond:
            self._urgent.extend(outboxes)
            self._waiters += 1
            self._cond.notify_all()
            try:
                while any(o.has_pending() for o in outboxes):
                    now = time.monotonic()
                    if now >= deadline:
                        return False
                    down = self.down_since
                    if down is not None and self._failed_at >= start and now - down >= patience:
                        return False
                    if patience <= 0.0 and self._stuck():
                        return False
                    if notice is not None and now - start >= WAIT_NOTICE_S:
                        notice(sum(o.has_pending() for o in outboxes), deadline - now)
                        notice = None
                    self._cond.wait(min(deadline - now, 0.5))
                return True
            finally:
                self._waiters -= 1
                for outbox in outboxes:
                    self._urgent.remove(outbox)

    # ------------------------------------------------------------------ inside the thread

    def _loop(self) -> None:
        while True:
            outbox = self._next_outbox()
            if self.down_since is not None and not self.transport.answers(HEALTH_TIMEOUT_S):
                self._failed("no answer from /health")
                continue
            self._sending_since = time.monotonic()
            try:
                with outbox.claim() as mine:
                    if not mine:  # `studies sync` is sending it: look again in a moment
                        with self._cond:
                            self._busy_until[id(outbox)] = time.monotonic() + 0.5
                        continue
                    send_next(self.transport, outbox)
            except Unreachable as exc:
                self._failed(str(exc))
                continue
            except Exception as exc:  # a local problem (a full disk): never end the thread
                self._failed(f"{type(exc).__name__}: {exc}")
                continue
            finally:
                self._sending_since = None
            with self._cond:
                self.down_since = None
                self._backoff = 0.0
                if outbox.ended and not outbox.has_pending():
                    self._outboxes.remove(outbox)
                self._cond.notify_all()

    def _next_outbox(self) -> RunOutbox:
        with self._cond:
            while True:
                now = time.monotonic()
                if self.down_since is not None:
                    retry_at = self._retry_at
                    if self._waiters:
                        retry_at = min(retry_at, self._failed_at + FLUSH_RETRY_S)
                    if now < retry_at:
                        self._cond.wait(retry_at - now)
                        continue
                ready = [
                    o
                    for o in (*self._urgent, *self._outboxes)
                    if o.has_pending() and self._busy_until.get(id(o), 0.0) <= now
                ]
                if ready:
                    return ready[0]
                # Nothing to send, or only outboxes another process holds for a moment.
                self._cond.wait(0.5 if self._busy_until else None)
                self._busy_until = {k: t for k, t in self._busy_until.items() if t > now}

    def _failed(self, error: str) -> None:
        with self._cond:
            now = time.monotonic()
            self.last_error = error
            self._failed_at = now
            if self.down_since is None:
                self.down_since = now
            self._backoff = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * self._backoff))
            self._retry_at = now + self._backoff
            self._cond.notify_all()


_COURIERS: dict[str, Courier] = {}
_COURIERS_LOCK = threading.Lock()


def courier_for(transport: Transport) -> Courier:
    """This process's courier for the transport's server (made on first use, with
    ``transport``; one courier per tracking URI)."""
    with _COURIERS_LOCK:
        courier = _COURIERS.get(transport.tracking_uri)
        if courier is None:
            courier = _COURIERS[transport.tracking_uri] = Courier(transport)
        return courier


def flush_process(
    tracking_uri: str,
    *,
    interrupted: bool = False,
    on_wait: Callable[[int, float], None] | None = None,
) -> bool:
    """Wait for every outbox of this process to be sent: ``SWEEP_FLUSH_S`` at most; when
    ``interrupted`` (Ctrl-C, SIGTERM), ``END_WAIT_S`` at most and not at all while the
    server is away. True when all is sent. A sweep (and each worker process) calls it as
    it ends; ``on_wait``: see `Courier.flush`."""
    with _COURIERS_LOCK:
        courier = _COURIERS.get(tracking_uri)
    if courier is None:
        return True
    mine = courier.pending()
    if not interrupted:
        return courier.flush(mine, timeout=SWEEP_FLUSH_S, patience=math.inf, on_wait=on_wait)
    if courier.reachable:
        return courier.flush(mine, timeout=END_WAIT_S, patience=0.0, on_wait=on_wait)
    return not mine


def adopt(transport: Transport, outboxes: Sequence[RunOutbox]) -> None:
    """Have this process's courier send ``outboxes`` with its own: ended runs whose logs an
    earlier process left on disk (its server was away). Each is sent under its lock and
    checked on the server first, so a `studies sync` or another process sending it at the
    same time never makes it log twice; this process's end waits for them too."""
    courier = courier_for(transport)
    for outbox in outboxes:
        courier.add(outbox)
