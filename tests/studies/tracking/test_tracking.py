"""studies.tracking.client against the session's real MLflow server, read back with
MlflowClient.

Request counts are measured, not mocked: a small counting HTTP proxy on loopback sits
between the client and the server and records every request it forwards.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from studies.tracking.client import Client
from studies.tracking.layout import (
    PARENT_RUN_NAME,
    ChildState,
    TrackingError,
    flatten_params,
    now_ms,
)
from studies.tracking.runs import Tracker
from studies.tracking.server import ServerInfo
from studies.urls import SHARED_VIEW_TAG_PREFIX as SHARED
from studies.urls import runs_page_url
from tests.port_helpers import free_port
from tests.studies.tracking_helpers import open_child

EPOCHS = 3


@pytest.fixture
def tracker(mlflow_server: ServerInfo) -> Client:
    return Client(mlflow_server.url)


@pytest.fixture
def runs(mlflow_server: ServerInfo) -> Tracker:
    """Run logging over outboxes, as a sweep logs its trials' runs."""
    return Tracker(mlflow_server.url)


@pytest.fixture
def client(mlflow_server: ServerInfo) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server.url)


@pytest.fixture
def study() -> str:
    return f"study-{uuid.uuid4().hex[:8]}"


class _CountingProxy(ThreadingHTTPServer):
    """Forwards every request to ``upstream`` and records ``(method, path)``."""

    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _CountingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append((self.command, self.path.split("?")[0]))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        headers["Host"] = f"127.0.0.1:{self.server.upstream_port}"
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def proxy(mlflow_server: ServerInfo) -> Iterator[_CountingProxy]:
    server = _CountingProxy(mlflow_server.port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _epoch_metrics(trial: int, epoch: int) -> dict[str, float]:
    return {
        "train/total_loss": 1.0 / epoch + trial,
        "val/abs_rel": 0.5 - 0.1 * epoch + 0.01 * trial,
        "epoch_time_s": 2.0,
        "samples_per_s": 100.0 * epoch,
    }


def test_sweep_layout_reads_back(
    tracker: Client, runs: Tracker, client: MlflowClient, study: str, tmp_path: Path
) -> None:
    experiment_id = tracker.ensure_experiment(study)
    assert tracker.ensure_experiment(study) == experiment_id
    # 150 params: more than one request's worth (MLflow takes 100 per batch).
    spec_params: dict[str, str | float | int | bool] = {f"spec.p{i:03d}": i for i in range(147)}
    spec_params |= {"spec.name": study, "spec.lr": 0.001, "spec.dense": True}
    parent = tracker.find_or_create_parent(experiment_id, study, spec_params, "name: x\n")

    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / "epoch-1.png").write_bytes(b"\x89PNG fake")
    (previews / "epoch-2.png").write_bytes(b"\x89PNG fake")

    states: dict[int, ChildState] = {0: "COMPLETE", 1: "PRUNED", 2: "FAIL"}
    children = {}
    for trial, state in states.items():
        params = {"loss.lambda_sg": 0.25 * trial, "loss.num_scales": 4, "loss.inv": trial == 1}
        run = open_child(runs, tmp_path / "trials", experiment_id, parent, trial, params, study)
        assert run.run_id is not None
        children[trial] = run.run_id
        assert client.get_run(run.run_id).data.tags["optuna.state"] == "RUNNING"
        for epoch in range(1, EPOCHS + 1):
            run.log_epoch(epoch, _epoch_metrics(trial, epoch))
        run.log_text(f"trial: {trial}\n", "config.yaml")
        run.log_artifacts(previews, "previews")
        run.end(state, 0.2 if state == "COMPLETE" else None)
    assert runs.flush_runs()
    tracker.finish_run(parent, "FINISHED", now_ms())

    parent_run = client.get_run(parent)
    assert parent_run.info.run_name == PARENT_RUN_NAME
    assert parent_run.info.status == "FINISHED"
    assert parent_run.data.tags["optuna.study"] == study
    assert parent_run.data.params == {k: str(v) for k, v in spec_params.items()}
    assert parent_run.data.params["spec.dense"] == "True"
    assert [a.path for a in client.list_artifacts(parent)] == ["sweep.yaml"]
    assert Path(client.download_artifacts(parent, "sweep.yaml", str(tmp_path))).read_text() == (
        "name: x\n"
    )

    # Pruned on purpose: FINISHED, not KILLED (drawn like FAILED in MLflow's UI).
    status = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
    for trial, run_id in children.items():
        run = client.get_run(run_id)
        assert run.info.run_name == f"trial-{trial}"
        assert run.info.status == status[states[trial]]
        assert run.info.end_time is not None
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent
        assert tags["optuna.study"] == study
        assert tags["optuna.trial"] == str(trial)
        assert tags["optuna.state"] == states[trial]
        assert ("mlflow.note.content" in tags) == (states[trial] == "PRUNED")
        assert run.data.params == {
            "loss.lambda_sg": str(0.25 * trial),
            "loss.num_scales": "4",
            "loss.inv": str(trial == 1),
        }
        for key in _epoch_metrics(trial, 1):
            history = client.get_metric_history(run_id, key)
            assert [m.step for m in history] == list(range(1, EPOCHS + 1))
            expected = [_epoch_metrics(trial, e)[key] for e in range(1, EPOCHS + 1)]
            assert [m.value for m in history] == pytest.approx(expected)
        assert ("optuna.value" in run.data.metrics) == (states[trial] == "COMPLETE")
        top = sorted(a.path for a in client.list_artifacts(run_id))
        assert top == ["config.yaml", "previews"]
        assert sorted(a.path for a in client.list_artifacts(run_id, "previews")) == [
            "previews/epoch-1.png",
            "previews/epoch-2.png",
        ]
    assert client.get_run(children[0]).data.metrics["optuna.value"] == pytest.approx(0.2)

    found = client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10
    )
    assert sorted(r.info.run_name for r in found) == ["trial-0", "trial-1", "trial-2"]


def test_parent_is_reused_per_study(tracker: Client, client: MlflowClient, study: str) -> None:
    experiment_id = tracker.ensure_experiment(study)
    first = tracker.find_or_create_parent(experiment_id, study, {"spec.a": 1}, "a: 1\n")
    tracker.finish_run(first, "KILLED", now_ms())
    again = tracker.find_or_create_parent(experiment_id, study, {"spec.a": 1}, "a: 1\n")
    assert again == first
    assert client.get_run(first).info.status == "RUNNING"  # the resumed sweep runs again
    other = tracker.find_or_create_parent(experiment_id, f"{study}-b", {"spec.a": 2}, "a: 2\n")
    assert other != first
    parents = client.search_runs([experiment_id], "attributes.run_name = 'sweep'")
    assert sorted(r.info.run_id for r in parents) == sorted([first, other])


def test_deleted_experiment_is_restored(tracker: Client, client: MlflowClient, study: str) -> None:
    experiment_id = tracker.ensure_experiment(study)
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert tracker.ensure_experiment(study) == experiment_id
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_log_epoch_sends_one_request(
    mlflow_server: ServerInfo,
    proxy: _CountingProxy,
    client: MlflowClient,
    study: str,
    tmp_path: Path,
) -> None:
    runs = Tracker(f"http://127.0.0.1:{proxy.server_address[1]}")
    tracker = runs.client
    experiment_id = tracker.ensure_experiment(study)
    parent = tracker.find_or_create_parent(experiment_id, study, {"spec.a": 1}, "a: 1\n")
    run = open_child(runs, tmp_path, experiment_id, parent, 0, {"p": 1}, study)
    assert runs.flush_runs()
    metrics = {f"val/m{i}": float(i) for i in range(40)}  # a realistic epoch and then some

    proxy.requests.clear()
    for epoch in (1, 2, 3):
        run.log_epoch(epoch, metrics)
    assert runs.flush_runs()
    assert proxy.requests == [("POST", "/api/2.0/mlflow/runs/log-batch")] * 3

    assert run.run_id is not None
    assert [m.step for m in client.get_metric_history(run.run_id, "val/m39")] == [1, 2, 3]


def test_non_finite_metrics_are_logged_as_nan(
    tracker: Client, runs: Tracker, client: MlflowClient, study: str, tmp_path: Path
) -> None:
    experiment_id = tracker.ensure_experiment(study)
    parent = tracker.find_or_create_parent(experiment_id, study, {}, "")
    log = open_child(runs, tmp_path, experiment_id, parent, 0, {}, study)
    log.log_epoch(1, {"loss": math.nan, "grad": math.inf, "ok": 1.5})
    assert runs.flush_runs() and log.run_id is not None
    run = client.get_run(log.run_id)
    assert math.isnan(run.data.metrics["loss"])
    assert math.isnan(run.data.metrics["grad"])
    assert run.data.metrics["ok"] == 1.5


def test_unreachable_server_is_one_line_without_password() -> None:
    port = free_port()
    tracker = Client(f"http://bob:hunter2@127.0.0.1:{port}")
    with pytest.raises(TrackingError) as caught:
        tracker.ensure_experiment("x")
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message and "bob:***@" in message
    assert "hunter2" not in message


def test_refused_request_names_the_server(tracker: Client, mlflow_server: ServerInfo) -> None:
    with pytest.raises(TrackingError, match=rf"^MLflow server {mlflow_server.url}: cannot read"):
        tracker.close_orphan("0" * 32)


def test_experiment_ui_url(tracker: Client, mlflow_server: ServerInfo, study: str) -> None:
    experiment_id = tracker.ensure_experiment(study)
    assert runs_page_url(tracker.tracking_uri, experiment_id) == (
        f"{mlflow_server.url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    )


def test_share_sweep_view_stores_the_view_on_the_experiment(
    tracker: Client, client: MlflowClient, mlflow_server: ServerInfo, study: str
) -> None:
    experiment_id = tracker.ensure_experiment(study)
    url = tracker.share_sweep_view(experiment_id, ["loss.lambda_sg"], "val/a1", ascending=False)
    assert url == (
        f"{mlflow_server.url}/#/experiments/{experiment_id}/runs"
        "?workflowType=machine_learning&viewStateShareKey=salsweep-sweep"
    )
    tags = client.get_experiment(experiment_id).tags
    state = json.loads(tags["mlflow.sharedViewState.salsweep-sweep"])
    assert state["selectedColumns"] == [
        "tags.`salsweep.label`",
        "tags.`optuna.state`",
        "params.`loss.method`",
        "params.`loss.lambda_sg`",
        "metrics.`optuna.value`",
        "metrics.`val/a1`",
    ]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`optuna.value`", False)
    # Sharing again (a resumed sweep, a confirmation) replaces the view.
    tracker.share_sweep_view(experiment_id, ["lr"], "val/abs_rel", ascending=True, confirming=True)
    state = json.loads(client.get_experiment(experiment_id).tags[f"{SHARED}salsweep-sweep"])
    assert state["selectedColumns"][3:] == [
        "params.`lr`",
        "metrics.`optuna.value`",
        "metrics.`val/abs_rel`",
        "metrics.`confirm.value`",
        "tags.`confirm.winner`",
        "tags.`confirm.runner_up`",
        "tags.`confirm.baseline`",
    ]
    assert state["orderByAsc"] is True
    # The Chart tab's layout rides along: the objective's section first.
    assert [s["name"] for s in state["compareRunSections"]] == ["Objective"]
    assert [c["metricKey"] for c in state["compareRunCharts"]] == [
        "optuna.value",
        "val/abs_rel",
        "confirm.value",
    ]


def test_share_sweep_view_of_a_missing_experiment_is_a_tracking_error(tracker: Client) -> None:
    with pytest.raises(TrackingError, match="cannot store the runs view of experiment 987654"):
        tracker.share_sweep_view("987654", ["lr"], "val/abs_rel", ascending=True)


def test_flatten_params_lists_none_and_nesting() -> None:
    data = {
        "loss": {"lambda_sg": 0.5, "use_inv_depth": False, "method": "ssi"},
        "search": {"loss.use_inv_depth": {"choices": [True, False]}, "seed": [0, None, 1.5]},
        "confirm": None,
        "tags": [],
        "nested": [{"a": 1}, ["x"]],
        "path": Path("runs/out"),
        "empty": {},
    }
    assert flatten_params(data, "spec") == {
        "spec.loss.lambda_sg": 0.5,
        "spec.loss.use_inv_depth": False,
        "spec.loss.method": "ssi",
        # Lists as JSON (MLflow params are strings): true/false/null, not Python's spelling.
        "spec.search.loss.use_inv_depth.choices": "[true, false]",
        "spec.search.seed": "[0, null, 1.5]",
        "spec.confirm": "null",
        "spec.tags": "[]",
        "spec.nested": '[{"a": 1}, ["x"]]',
        "spec.path": "runs/out",
        # an empty section has no leaf: no param
    }
    assert flatten_params(None, "x") == {"x": "null"}
    assert flatten_params({"a": {"b": None}}) == {"a.b": "null"}
