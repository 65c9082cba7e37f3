"""studies.tracking.outbox (the journal of a run's MLflow operations) and
studies.tracking.courier (sending it), against the session's real MLflow server.

Faults are real: a crash mid-send is a journal whose last operation reached the server
while its acknowledgement was never written; an ambiguous failure is a loopback proxy
that forwards a request to the server and then drops the connection instead of
answering; a refusal is a request for a run deleted on the server.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from studies.tracking.client import Client
from studies.tracking.courier import (
    ALREADY,
    REJECTED,
    SENT,
    WAIT_NOTICE_S,
    Courier,
    Unreachable,
    send_next,
)
from studies.tracking.outbox import KEY_TAG, OP_ATTACH, OP_CREATE, OP_END, OP_LOG, RunOutbox
from studies.tracking.runlog import RunLog
from studies.tracking.server import ServerInfo
from tests.port_helpers import free_port

EPOCHS = 3


def _create_op(experiment_id: str, key: str, name: str = "trial-0") -> dict[str, Any]:
    return {
        "op": OP_CREATE,
        "experiment_id": experiment_id,
        "run_name": name,
        "tags": {KEY_TAG: key, "optuna.trial": "0"},
        "start_time": int(time.time() * 1000),
        "owner": ["s", 0],
    }


def _epoch_op(epoch: int, value: float = 0.5) -> dict[str, Any]:
    stamp = 1_700_000_000_000 + epoch
    return {"op": OP_LOG, "metrics": [["val/abs_rel", value / epoch, stamp, epoch]]}


def _journal(tmp_path: Path, experiment_id: str = "0") -> RunOutbox:
    key = uuid.uuid4().hex[:16]
    outbox = RunOutbox.create(tmp_path / "trial-0000", _create_op(experiment_id, key), key=key)
    outbox.append({"op": OP_LOG, "metrics": [], "params": {"lr": "0.001"}})
    for epoch in range(1, EPOCHS + 1):
        outbox.append(_epoch_op(epoch))
    return outbox


def _send_all(tracker: Client, outbox: RunOutbox) -> list[str]:
    results = []
    while (result := send_next(tracker, outbox)) is not None:
        results.append(result)
    return results


# ---------------------------------------------------------------------------- the journal


def test_append_ack_and_read_back(tmp_path: Path) -> None:
    outbox = _journal(tmp_path)
    outbox.append({"op": OP_LOG, "metrics": [["loss", math.nan, 5, 4]]})
    assert [op["seq"] for op in outbox.ops] == list(range(6))
    assert outbox.next_op() == outbox.ops[0]
    assert not outbox.verify_next  # a new journal: nothing was ever sent
    outbox.ack(0, run_id="r1")
    outbox.ack(1)
    with pytest.raises(ValueError, match="expected 2"):
        outbox.ack(3)

    again = RunOutbox(outbox.journal)
    assert again.key == outbox.key
    assert [op["op"] for op in again.ops] == [OP_CREATE, OP_LOG, OP_LOG, OP_LOG, OP_LOG, OP_LOG]
    assert again.ops[1]["params"] == {"lr": "0.001"}
    assert math.isnan(again.ops[5]["metrics"][0][1])  # a diverged epoch stays NaN
    assert (again.run_id, again.state.acked) == ("r1", 2)
    assert [op["seq"] for op in again.pending()] == [2, 3, 4, 5]
    # Read from disk, the next operation may have been sent by a sender that died.
    assert again.verify_next
    assert not again.ended
    again.append({"op": OP_END, "status": "FINISHED", "end_time": 9})
    assert RunOutbox(outbox.journal).ended


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    outbox = _journal(tmp_path)
    with outbox.journal.open("a", encoding="utf-8") as handle:
        handle.write('{"seq":5,"op":"log_batch","metr')  # the process died mid-line
    again = RunOutbox(outbox.journal)
    assert len(again.ops) == 5
    seq = again.append(_epoch_op(4))
    assert seq == 5  # the lost operation's number is reused
    lines = outbox.journal.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7  # the cut line, on a line of its own, and the new one
    assert [op["seq"] for op in RunOutbox(outbox.journal).ops] == list(range(6))


def test_attach_is_acknowledged_at_once(tmp_path: Path) -> None:
    header = {"op": OP_ATTACH, "run_id": "abc", "run_name": "sweep"}
    outbox = RunOutbox.create(tmp_path / "p", header)
    assert (outbox.run_id, outbox.state.acked, outbox.has_pending()) == ("abc", 1, False)
    assert outbox.run_name == "sweep"
    assert RunOutbox(outbox.journal).run_id == "abc"


HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "rb") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    print("releasing", flush=True)
"""


def test_claim_excludes_another_process(tmp_path: Path) -> None:
    outbox = _journal(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(outbox.journal), "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with outbox.claim() as mine:
            assert mine is False
        with outbox.claim(wait=True) as mine:  # blocks until the other process lets go
            assert mine is True
            assert holder.stdout.readline().strip() == "releasing"
    finally:
        holder.wait(timeout=30)


# ---------------------------------------------------------------------------- sending


@pytest.fixture
def tracker(mlflow_server: ServerInfo) -> Client:
    return Client(mlflow_server.url)


@pytest.fixture
def client(mlflow_server: ServerInfo) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server.url)


@pytest.fixture
def experiment(tracker: Client) -> str:
    return tracker.ensure_experiment(f"outbox-{uuid.uuid4().hex[:8]}")


def _runs_with_key(client: MlflowClient, experiment: str, key: str) -> list[str]:
    runs = client.search_runs([experiment], f"tags.`{KEY_TAG}` = '{key}'")
    return [r.info.run_id for r in runs]


def test_sends_in_order_and_a_second_pass_sends_nothing(
    tracker: Client, client: MlflowClient, experiment: str, tmp_path: Path
) -> None:
    outbox = _journal(tmp_path, experiment)
    (outbox.folder / "config.yaml").write_text("lr: 0.001\n")
    outbox.append({"op": "artifact", "path": "config.yaml", "artifact_path": None})
    outbox.append(
        {"op": OP_END, "status": "FINISHED", "end_time": 1_700_000_000_100, "state": "COMPLETE"}
    )
    assert _send_all(tracker, outbox) == [SENT] * 7
    assert _send_all(tracker, RunOutbox(outbox.journal)) == []
    assert outbox.run_id is not None
    run = client.get_run(outbox.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "trial-0"
    assert run.data.params == {"lr": "0.001"}
    assert run.data.tags["optuna.state"] == "COMPLETE"
    history = client.get_metric_history(outbox.run_id, "val/abs_rel")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25), (3, 0.5 / 3)]
    assert [a.path for a in client.list_artifacts(outbox.run_id)] == ["config.yaml"]


def test_replay_after_a_crash_mid_send(
    tracker: Client, client: MlflowClient, experiment: str, tmp_path: Path
) -> None:
    """The server applied an operation, the sender died before writing its ack: the next
    sender finds it there and does not send it again (a run creation as well)."""
    outbox = _journal(tmp_path, experiment)
    header = outbox.ops[0]
    # Crash 1: the creation reached the server, the process died before its ack.
    created = tracker.create_run(experiment, "trial-0", header["tags"], header["start_time"])
    replay = RunOutbox(outbox.journal)
    assert send_next(tracker, replay) == ALREADY
    assert replay.run_id == created
    assert send_next(tracker, replay) == SENT  # params
    assert send_next(tracker, replay) == SENT  # epoch 1
    # Crash 2: epoch 2 reached the server, its ack did not reach the disk.
    stamp, step = replay.ops[3]["metrics"][0][2], replay.ops[3]["metrics"][0][3]
    tracker.send_batch(created, [("val/abs_rel", 0.25, stamp, step)], {}, {})
    replay = RunOutbox(outbox.journal)
    assert _send_all(tracker, replay) == [ALREADY, SENT]  # epoch 2 found, epoch 3 sent
    assert (replay.state.acked, replay.state.already) == (5, 2)

    assert _runs_with_key(client, experiment, outbox.key) == [created]
    history = client.get_metric_history(created, "val/abs_rel")
    assert [m.step for m in history] == [1, 2, 3]


class _DroppingProxy(ThreadingHTTPServer):
    """Forwards requests to ``upstream``; ``drop`` holds path suffixes whose requests are
    forwarded (the server applies them) but whose answer is never given: the connection
    is closed instead. ``down``: every connection is closed before anything is forwarded."""

    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop: set[str] = set()
        self.down = False
        self.forwarded: list[str] = []
        super().__init__(("127.0.0.1", free_port()), _DroppingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _DroppingHandler(BaseHTTPRequestHandler):
    server: _DroppingProxy

    def _forward(self) -> None:
        import http.client

        if self.server.down:
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        upstream.close()
        self.server.forwarded.append(path)
        dropped = next((s for s in self.server.drop if path.endswith(s)), None)
        if dropped is not None:
            self.server.drop.discard(dropped)  # once
            self.close_connection = True
            return
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def proxy(mlflow_server: ServerInfo) -> Iterator[_DroppingProxy]:
    server = _DroppingProxy(mlflow_server.port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_an_ambiguous_failure_is_not_sent_twice(
    proxy: _DroppingProxy, client: MlflowClient, experiment: str, tmp_path: Path
) -> None:
    """The server applied the request but its answer was lost: the operation is checked on
    the server before it is sent again, so the run is created once and each epoch is
    logged once."""
    tracker = Client(proxy.url)
    outbox = _journal(tmp_path, experiment)
    proxy.drop = {"/runs/create"}
    with pytest.raises(Unreachable):
        send_next(tracker, outbox)
    assert outbox.verify_next and outbox.state.acked == 0
    assert len(_runs_with_key(client, experiment, outbox.key)) == 1  # the server has it
    assert send_next(tracker, outbox) == ALREADY
    assert send_next(tracker, outbox) == SENT  # params
    proxy.drop = {"/runs/log-batch"}
    with pytest.raises(Unreachable):
        send_next(tracker, outbox)  # epoch 1: applied, answer lost
    assert _send_all(tracker, outbox) == [ALREADY, SENT, SENT]

    assert _runs_with_key(client, experiment, outbox.key) == [outbox.run_id]
    assert outbox.run_id is not None
    history = client.get_metric_history(outbox.run_id, "val/abs_rel")
    assert [m.step for m in history] == [1, 2, 3]
    assert proxy.forwarded.count("/api/2.0/mlflow/runs/create") == 1


def test_a_refused_operation_is_skipped_with_its_reason(
    tracker: Client, client: MlflowClient, experiment: str, tmp_path: Path
) -> None:
    outbox = _journal(tmp_path, experiment)
    assert _send_all(tracker, outbox)[:2] == [SENT, SENT]
    assert outbox.run_id is not None
    client.delete_run(outbox.run_id)  # somebody deleted it in the UI
    outbox.append(_epoch_op(4))
    assert send_next(tracker, outbox) == REJECTED
    assert outbox.state.rejected == 1 and not outbox.has_pending()
    assert "operation 5 (log_batch)" in outbox.state.reasons[0]
    assert "deleted" in outbox.state.reasons[0] or "active" in outbox.state.reasons[0]


def test_courier_keeps_the_run_while_the_server_is_away(
    proxy: _DroppingProxy, client: MlflowClient, experiment: str, tmp_path: Path
) -> None:
    """Through a RunLog: the server away from the start, a run is journalled without
    waiting; once the server answers, the courier creates it and sends every epoch once."""
    courier = Courier(Client(proxy.url))
    proxy.down = True
    key = uuid.uuid4().hex[:16]
    outbox = RunOutbox.create(tmp_path / "trial-0007", _create_op(experiment, key), key=key)
    log = RunLog(outbox, courier)
    courier.add(outbox)
    log.log_params({"lr": 0.001})
    assert not courier.flush([outbox], timeout=30.0, patience=0.0)  # gives up at once
    assert not courier.reachable and log.run_id is None
    for epoch in range(1, EPOCHS + 1):
        log.log_epoch(epoch, {"val/abs_rel": 0.5 / epoch, "train/loss": math.inf})
    log.log_text("lr: 0.001\n", "config.yaml")
    log.end("COMPLETE", 0.25)  # no wait: the server is known to be away
    assert len(outbox.pending()) == 1 + 1 + EPOCHS + 2

    proxy.down = False
    assert courier.flush([outbox], timeout=30.0, patience=0.0)
    assert courier.reachable
    assert log.run_id is not None
    run = client.get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["optuna.value"] == 0.25
    for key_ in ("val/abs_rel", "train/loss"):
        assert [m.step for m in client.get_metric_history(log.run_id, key_)] == [1, 2, 3]
    assert math.isnan(run.data.metrics["train/loss"])
    assert [a.path for a in client.list_artifacts(log.run_id)] == ["config.yaml"]
    assert (outbox.folder / "config.yaml").read_text() == "lr: 0.001\n"


def test_a_flush_that_waits_says_so_once(
    proxy: _DroppingProxy, experiment: str, tmp_path: Path
) -> None:
    """A sweep's end waits for the server: after WAIT_NOTICE_S it tells ``on_wait`` once,
    with the runs not sent and the seconds left; a flush the server answers at once says
    nothing."""
    courier = Courier(Client(proxy.url))
    proxy.down = True
    key = uuid.uuid4().hex[:16]
    outbox = RunOutbox.create(tmp_path / "trial-0008", _create_op(experiment, key), key=key)
    courier.add(outbox)
    heard: list[tuple[int, float, float]] = []
    start = time.monotonic()

    def on_wait(runs: int, seconds: float) -> None:
        heard.append((runs, seconds, time.monotonic() - start))

    assert not courier.flush([outbox], timeout=5.0, patience=math.inf, on_wait=on_wait)
    assert len(heard) == 1
    runs, seconds, after = heard[0]
    assert runs == 1
    assert WAIT_NOTICE_S <= after < 4.0  # said while waiting, not at the end
    assert 1.0 < seconds <= 5.0 - WAIT_NOTICE_S
    proxy.down = False
    heard.clear()
    assert courier.flush([outbox], timeout=30.0, patience=math.inf, on_wait=on_wait)
    assert heard == []


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell without optimize
def test_sync_closes_the_run_of_a_trial_that_died_and_records_its_id(
    mlflow_server: ServerInfo, client: MlflowClient, experiment: str, tmp_path: Path
) -> None:
    """A worker died mid-trial with the server away: its outbox has no end. Once Optuna has
    failed the trial, `studies sync` sends what the outbox holds, closes the run FAILED and
    records its id for the trial (`studies show` names it)."""
    import optuna

    from studies.home import default_storage_url
    from studies.run.sync import sync_study
    from studies.store.catalog import read_study
    from studies.store.records import as_record
    from studies.store.storage import open_storage

    home, name = tmp_path / "home", "died"
    study = optuna.create_study(study_name=name, storage=open_storage(default_storage_url(home)))
    trial = study.ask()  # the trial the worker was running ...
    key = uuid.uuid4().hex[:16]
    header = {**_create_op(experiment, key), "owner": [name, trial.number]}
    outbox = RunOutbox.create(home / "studies" / name / "trial-0000", header, key=key)
    for epoch in (1, 2):
        outbox.append(_epoch_op(epoch))
    running = sync_study(name, home, mlflow_server.url, default_storage_url(home))
    assert (running.synced, running.sent, running.closed) == (1, 3, 0)
    assert running.still_running == ["trial-0"]  # its trial has not ended: left open
    assert running.recorded == 0  # nor is its run id recorded: the trial may still set it

    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # ... failed by its heartbeat
    report = sync_study(name, home, mlflow_server.url, default_storage_url(home))
    assert (report.runs, report.synced, report.sent, report.closed) == (1, 1, 1, 1)
    assert (report.already, report.rejected, report.still_running) == (0, 0, [])
    run_id = RunOutbox(outbox.journal).run_id
    assert run_id is not None
    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["optuna.state"]) == ("FAILED", "FAIL")
    assert [m.step for m in client.get_metric_history(run_id, "val/abs_rel")] == [1, 2]
    # The trial ended without a run id (the run was made later): the sync recorded it, and
    # both ways of reading the study give it as the trial's.
    assert report.recorded == 1
    assert "mlflow_run_id" not in study.trials[0].user_attrs
    (record,) = read_study(name, default_storage_url(home)).trials
    assert record.user_attrs["mlflow_run_id"] == run_id
    assert as_record(study).trials[0].user_attrs["mlflow_run_id"] == run_id
    again = sync_study(name, home, mlflow_server.url, default_storage_url(home))
    assert (again.synced, again.sent, again.closed, again.recorded) == (0, 0, 0, 0)


def test_a_sweep_sends_the_ended_runs_an_earlier_one_left(
    mlflow_server: ServerInfo, client: MlflowClient, tmp_path: Path
) -> None:
    """An earlier sweep of the study ended with the server away: one run's whole journal
    (created, 3 epochs, ended) waits in its trial folder, and another's has no end (its
    process died). The next sweep of the study sends the ended one, each epoch once, and
    leaves the other to `studies sync` (which closes it once its trial has ended), and the
    earlier parent journal too (its end would close the parent run the sweep reopened)."""
    from studies import SweepTarget, run_sweep
    from studies.home import default_storage_url
    from tests.studies.sweep_helpers import tiny_spec

    name, home = f"earlier-{uuid.uuid4().hex[:6]}", tmp_path / "home"
    experiment = Client(mlflow_server.url).ensure_experiment(name)  # the earlier sweep's
    folder = home / "studies" / name
    done_key, open_key = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    done = RunOutbox.create(
        folder / "trial-0040", _create_op(experiment, done_key, "trial-40"), key=done_key
    )
    for epoch in range(1, EPOCHS + 1):
        done.append(_epoch_op(epoch))
    end = {"op": OP_END, "status": "FINISHED", "end_time": int(time.time() * 1000)}
    done.append({**end, "state": "COMPLETE", "value": 0.25})
    died = RunOutbox.create(
        folder / "trial-0041", _create_op(experiment, open_key, "trial-41"), key=open_key
    )
    died.append(_epoch_op(1))
    # The earlier sweep's journal of the parent run: its end is not this sweep's to send.
    earlier = client.create_run(experiment, run_name="sweep-earlier").info.run_id
    parent_key = uuid.uuid4().hex[:16]
    attach = {"op": OP_ATTACH, "run_id": earlier, "run_name": "sweep-earlier"}
    parent = RunOutbox.create(folder / "mlflow-parent" / parent_key, attach, key=parent_key)
    parent.append({**end, "status": "KILLED"})

    target = SweepTarget(default_storage_url(home), mlflow_server.url, home)
    outcome = run_sweep(tiny_spec(name, n_trials=1, baseline=False), name, target)
    assert outcome.earlier_sent == 1
    # Not ended, or a parent run's: left for `studies sync`.
    assert set(outcome.unsent) == {"trial-41", "sweep-earlier"}
    assert client.get_run(earlier).info.status == "RUNNING"
    (run_id,) = _runs_with_key(client, experiment, done_key)
    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["optuna.state"]) == ("FINISHED", "COMPLETE")
    assert [m.step for m in client.get_metric_history(run_id, "val/abs_rel")] == [1, 2, 3]
    assert not RunOutbox(done.journal).has_pending()
    assert _runs_with_key(client, experiment, open_key) == []
    assert RunOutbox(died.journal).has_pending()
