"""MLflow tracking of a sweep: the only owner of an ``MlflowClient`` in salsweep.

Layout (DESIGN.md, "Tracking layout"): experiment = study name; a parent run ``sweep``
holding the spec as params and ``sweep.yaml``; one child run ``trial-<n>`` per trial with
its parameters, per-epoch metrics (``step`` = epoch), tags ``optuna.study``,
``optuna.trial``, ``optuna.state`` and its artifacts.

Requests are few and batched: a single ``log_metric`` costs tens of milliseconds against
an SQLite-backed server, so :meth:`Tracker.log_epoch` sends one ``log-batch`` request per
epoch, and parameters go in batches of 100 (MLflow's limit per request).

Non-finite metric values (a diverged loss) are logged as NaN: a NaN in a run's history
tells a diverged epoch from a missing one, and the UI's charts skip it. (MLflow would store
+-inf as +-1.8e308, which flattens every chart of the sweep, so infinities become NaN too.)

Every failure to reach or use the server becomes a :class:`TrackingError` with one line
naming the server (credentials hidden). A server that does not answer at all is detected
up front by :meth:`Tracker.ensure_experiment`.

A sweep's runs are written to outboxes on disk (studies.tracking.outbox) and sent by a background
sender (studies.tracking.courier), which retries on its own: :class:`Tracker` turns the MLflow
client's retries off (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` 0, 30 s per request; see
``CLIENT_ENV_DEFAULTS``) unless the environment sets them. :meth:`Tracker.open_run`
opens a run through an outbox; with a ``journal_dir``, the sweep's parent run gets one
too (:meth:`find_or_create_parent`), and what is logged on it afterwards is journalled
as well.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from mlflow.entities import LifecycleStage, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from studies.urls import SHARED_VIEW_TAG_PREFIX, redact_url, runs_page_url, sweep_view_state
from trainer.errors import UserError

if TYPE_CHECKING:  # studies.tracking.courier imports this module
    from studies.tracking.courier import RunLog
    from studies.tracking.outbox import RunOutbox

__all__ = [
    "CHILD_STATUS",
    "PARENT_RUN_NAME",
    "ChildState",
    "ParamValue",
    "RunEnd",
    "Tracker",
    "TrackingError",
    "child_tags",
    "redact_text",
]

PARENT_RUN_NAME = "sweep"
SPEC_ARTIFACT = "sweep.yaml"
# MLflow's per-request limits (mlflow.utils.validation).
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
# Marks the parent run, so that it is found again without parsing run names.
ROLE_TAG = "salsweep.role"
PARENT_ROLE = "sweep-parent"
STUDY_TAG = "optuna.study"
TRIAL_TAG = "optuna.trial"
STATE_TAG = "optuna.state"
# The trial's objective value, as a metric so the runs table can sort by it.
VALUE_METRIC = "optuna.value"
# The experiment's shared view of the sweep: tag mlflow.sharedViewState.<key>.
SWEEP_VIEW_KEY = "salsweep-sweep"
# The MLflow client's retries and request timeout, unless the environment sets them. The
# courier retries on its own; the client's defaults (7 retries with back-off, 120 s a
# request) kept a trial waiting 8.6 minutes on a server that was gone, and a retry of a
# request whose answer was lost repeats it (a second run created): the courier checks
# the server before it sends such a request again (studies.tracking.courier).
CLIENT_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Under a sweep's folder: the parent run's outboxes, one folder per sweep process.
PARENT_OUTBOX_DIR = "mlflow-parent"

ParamValue = str | float | int | bool
ChildState = Literal["COMPLETE", "PRUNED", "FAIL"]
RunEnd = Literal["FINISHED", "KILLED", "FAILED"]
# Optuna's trial state -> MLflow's run status.
CHILD_STATUS: dict[ChildState, RunEnd] = {
    "COMPLETE": "FINISHED",
    "PRUNED": "KILLED",
    "FAIL": "FAILED",
}
T = TypeVar("T")

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def flatten_params(data: object, prefix: str = "") -> dict[str, ParamValue]:
    """A nested mapping as MLflow params: ``{"loss": {"lambda_sg": 0.5}}`` ->
    ``{"loss.lambda_sg": 0.5}``; lists as JSON, None as ``"null"``."""
    if isinstance(data, dict):
        flat: dict[str, ParamValue] = {}
        for key, value in data.items():
            flat.update(flatten_params(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(data, list):
        return {prefix: json.dumps(data)}
    if isinstance(data, str | int | float | bool):
        return {prefix: data}
    return {prefix: "null" if data is None else str(data)}


class TrackingError(UserError, RuntimeError):
    """The MLflow tracking server cannot be reached or refused a request."""


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden (see ``redact_url``)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _finite_or_nan(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _health_url(tracking_uri: str) -> str:
    """``<server>/health`` without the URL's credentials (urllib cannot use them)."""
    parts = urllib.parse.urlsplit(tracking_uri)
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path.rstrip("/") + "/health"
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


class Tracker:
    """Sweep-shaped access to one MLflow tracking server (``http(s)://`` or any URI
    MLflow accepts). Every method takes the ids it works on.

    ``journal_dir`` (a sweep's folder): the parent run found or created by
    :meth:`find_or_create_parent` gets an outbox there, and what is logged on it
    afterwards (plots, the confirmation, the best config, its end) is journalled and sent
    by the courier instead of waiting on the server.
    """

    def __init__(self, tracking_uri: str, journal_dir: Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.shown_uri = redact_url(tracking_uri)
        self.journal_dir = journal_dir
        self._parent_log: RunLog | None = None
        # MlflowClient.set_terminated prints "View run ... at" lines to stdout (and fetches
        # the run for them); salsweep prints the runs page itself.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        for name, value in CLIENT_ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        self._client = MlflowClient(tracking_uri=tracking_uri)

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Turn the client's exceptions into one-line TrackingErrors."""
        try:
            yield
        except MlflowException as exc:
            raise TrackingError(self._message(what, exc.message)) from exc
        except OSError as exc:  # requests' errors derive from OSError; so do file errors
            raise TrackingError(self._message(what, str(exc) or type(exc).__name__)) from exc

    def _message(self, what: str, detail: str) -> str:
        line = next((ln.strip() for ln in str(detail).splitlines() if ln.strip()), "")
        line = redact_text(line)
        if len(line) > 300:
            line = line[:297] + "..."
        return f"MLflow server {self.shown_uri}: cannot {what}: {line}"

    def answers(self, timeout: float) -> bool:
        """Whether the server's ``/health`` answers (any HTTP status) within ``timeout``."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return True
        try:
            with _OPENER.open(_health_url(self.tracking_uri), timeout=timeout):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            return False

    def check_reachable(self) -> None:
        """Fail fast (instead of minutes of client retries) when no server answers."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        try:
            with _OPENER.open(_health_url(self.tracking_uri), timeout=10):
                return
        except urllib.error.HTTPError:
            return  # something answers (a proxy, an auth layer): let the client go on
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(
                f"no MLflow server answers at {self.shown_uri} ({reason}); start one with "
                "`salsweep server start` or point MLFLOW_TRACKING_URI at a running one"
            ) from None

    def _log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        items = [Param(key, str(value)) for key, value in params.items()]
        for batch in _chunks(items, MAX_PARAMS_PER_BATCH):
            self._client.log_batch(run_id, params=batch, synchronous=True)

    # ------------------------------------------------------------------ experiment, parent

    def ensure_experiment(self, name: str) -> str:
        """The id of experiment ``name``, created when missing, restored when deleted."""
        self.check_reachable()
        with self._calling(f"open experiment {name!r}"):
            experiment = self._client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    return str(self._client.create_experiment(name))
                except MlflowException as exc:
                    # Another worker created it between our look-up and our create.
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    experiment = self._client.get_experiment_by_name(name)
                    if experiment is None:
                        raise
            if experiment.lifecycle_stage == LifecycleStage.DELETED:
                self._client.restore_experiment(experiment.experiment_id)
            return str(experiment.experiment_id)

    def find_or_create_parent(
        self,
        experiment_id: str,
        study_name: str,
        params: Mapping[str, ParamValue],
        spec_yaml: str,
    ) -> str:
        """The run id of the study's parent run ``sweep``, created (with ``params`` and
        ``sweep.yaml``) when the experiment has none. A reused parent is set RUNNING again.

        Two workers launching at once may both create one; the older wins and the other
        deletes its own, so the study keeps a single parent.
        """
        run_id = self._find_or_create_parent(experiment_id, study_name, params, spec_yaml)
        if self.journal_dir is not None:
            from studies.tracking.courier import attach_run

            folder = self.journal_dir / PARENT_OUTBOX_DIR
            self._parent_log = attach_run(self.tracking_uri, folder, run_id, PARENT_RUN_NAME)
        return run_id

    def _find_or_create_parent(
        self,
        experiment_id: str,
        study_name: str,
        params: Mapping[str, ParamValue],
        spec_yaml: str,
    ) -> str:
        with self._calling(f"open the parent run of study {study_name!r}"):
            existing = self._parents(experiment_id, study_name)
            if existing:
                run_id = existing[0]
                self._client.update_run(run_id, status="RUNNING")
                return run_id
            run = self._client.create_run(
                experiment_id,
                run_name=PARENT_RUN_NAME,
                tags={ROLE_TAG: PARENT_ROLE, STUDY_TAG: study_name},
            )
            run_id = run.info.run_id
            winner = self._parents(experiment_id, study_name)[0]
            if winner != run_id:
                self._client.delete_run(run_id)
                self._client.update_run(winner, status="RUNNING")
                return winner
            self._log_params(run_id, params)
            self._client.log_text(run_id, spec_yaml, SPEC_ARTIFACT)
            return run_id

    def _parents(self, experiment_id: str, study_name: str) -> list[str]:
        """Parent runs of the study, oldest first."""
        runs = self._client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{ROLE_TAG}` = '{PARENT_ROLE}'",
            max_results=100,
        )
        mine = [r for r in runs if r.data.tags.get(STUDY_TAG) == study_name]
        mine.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
        return [r.info.run_id for r in mine]

    def end_parent(
        self,
        run_id: str,
        status: RunEnd,
        *,
        on_wait: Callable[[int, float], None] | None = None,
    ) -> None:
        """Close the parent run with ``status``. A journalled parent (see ``journal_dir``)
        is closed through its outbox, then this process's outboxes are sent for a bounded
        time (see `studies.tracking.courier.flush_process`; ``on_wait`` hears of a wait): a sweep's
        end never waits long on the server; what is left is named by :meth:`unsent_runs`."""
        if (journal := self._journal(run_id)) is not None:
            journal.end_sweep(status, on_wait=on_wait)
            return
        with self._calling(f"close parent run {run_id}"):
            self._client.set_terminated(run_id, status=status, end_time=_now_ms())

    # ------------------------------------------------------------------ child runs

    def start_child(
        self,
        experiment_id: str,
        parent_run_id: str,
        trial_number: int,
        params: Mapping[str, ParamValue],
        study_name: str,
    ) -> str:
        """Open run ``trial-<n>`` under the parent and log the trial's ``params``."""
        with self._calling(f"open the run of trial {trial_number}"):
            run = self._client.create_run(
                experiment_id,
                run_name=f"trial-{trial_number}",
                tags=child_tags(parent_run_id, study_name, trial_number),
            )
            self._log_params(run.info.run_id, params)
            return str(run.info.run_id)

    def log_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Log one epoch's metrics at ``step=epoch``: one request (up to 1000 metrics).

        NaN and +-inf are logged as NaN.
        """
        if (journal := self._journal(run_id)) is not None:
            journal.log_epoch(epoch, metrics)
            return
        stamp = _now_ms()
        items = [Metric(key, _finite_or_nan(value), stamp, epoch) for key, value in metrics.items()]
        with self._calling(f"log epoch {epoch} of run {run_id}"):
            for batch in _chunks(items, MAX_METRICS_PER_BATCH):
                self._client.log_batch(run_id, metrics=batch, synchronous=True)

    def end_child(self, run_id: str, state: ChildState, value: float | None) -> None:
        """Close a trial's run: status FINISHED / KILLED / FAILED for COMPLETE / PRUNED /
        FAIL, tag ``optuna.state``, and the objective ``value`` as metric ``optuna.value``."""
        metrics = [] if value is None else [Metric(VALUE_METRIC, float(value), _now_ms(), 0)]
        with self._calling(f"close run {run_id}"):
            self._client.log_batch(
                run_id, metrics=metrics, tags=[RunTag(STATE_TAG, state)], synchronous=True
            )
            self._client.set_terminated(run_id, status=CHILD_STATUS[state], end_time=_now_ms())

    def close_orphan(self, run_id: str) -> bool:
        """Mark a trial's run FAILED if it is still RUNNING (its worker died); True if so."""
        with self._calling(f"read run {run_id}"):
            status = self._client.get_run(run_id).info.status
        if status != "RUNNING":
            return False
        self.end_child(run_id, "FAIL", None)
        return True

    # ------------------------------------------------------------------ artifacts

    def log_artifacts(self, run_id: str, directory: Path, artifact_path: str | None) -> None:
        """Upload a folder's files to the run's artifacts."""
        if (journal := self._journal(run_id)) is not None:
            journal.log_artifacts(directory, artifact_path)
            return
        with self._calling(f"upload {directory} to run {run_id}"):
            self._client.log_artifacts(run_id, str(directory), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file`` (e.g. ``config.yaml``)."""
        if (journal := self._journal(run_id)) is not None:
            journal.log_text(text, artifact_file)
            return
        with self._calling(f"upload {artifact_file} to run {run_id}"):
            self._client.log_text(run_id, text, artifact_file)

    # ------------------------------------------------------------------ addresses

    def experiment_ui_url(self, experiment_id: str) -> str:
        """The UI's runs table in the model-training layout:
        ``<server>/#/experiments/<id>/runs?workflowType=machine_learning``."""
        return runs_page_url(self.tracking_uri, experiment_id)

    def share_sweep_view(
        self, experiment_id: str, searched: Sequence[str], metric: str, ascending: bool
    ) -> str:
        """Store the sweep's view of its runs table on the experiment and return its URL.

        The view shows the ``searched`` params (dotted TrainConfig paths, as logged), the
        objective value ``optuna.value`` and the objective ``metric`` (its last epoch) as
        columns, every trial listed flat, best first: ordered by ``optuna.value``,
        ``ascending`` for a minimised objective. Storing it again replaces it.
        """
        state = sweep_view_state(searched, [VALUE_METRIC, metric], VALUE_METRIC, ascending)
        key, value = SHARED_VIEW_TAG_PREFIX + SWEEP_VIEW_KEY, json.dumps(state)
        with self._calling(f"store the runs view of experiment {experiment_id}"):
            try:
                self._client.set_experiment_tag(experiment_id, key, value)
            except MlflowException:
                # Two workers launching at once both insert the tag; an SQLite-backed
                # server refuses the second insert (UNIQUE constraint). The view is the
                # same for every worker of the study: stored is stored; else try again.
                experiment = self._client.get_experiment(experiment_id)
                if experiment.tags.get(key) != value:
                    self._client.set_experiment_tag(experiment_id, key, value)
        return runs_page_url(self.tracking_uri, experiment_id, SWEEP_VIEW_KEY)

    # ------------------------------------------------------------------ runs outside the search

    def start_replicate(
        self,
        experiment_id: str,
        parent_run_id: str,
        run_name: str,
        params: Mapping[str, ParamValue],
        tags: Mapping[str, str],
    ) -> str:
        """Open run ``run_name`` under the parent (the SSI baseline's search run or a
        confirmation replicate) with ``tags`` (``salsweep.role`` ...) and its ``params``."""
        with self._calling(f"open run {run_name}"):
            run = self._client.create_run(
                experiment_id,
                run_name=run_name,
                tags={"mlflow.parentRunId": parent_run_id, STATE_TAG: "RUNNING", **tags},
            )
            self._log_params(run.info.run_id, params)
            return str(run.info.run_id)

    # ------------------------------------------------------------------ runs through an outbox

    def _journal(self, run_id: str) -> RunLog | None:
        log = self._parent_log
        return log if log is not None and log.run_id == run_id else None

    def open_run(
        self,
        folder: Path,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, str],
        params: Mapping[str, ParamValue],
        *,
        owner: tuple[str, int] | None = None,
    ) -> RunLog:
        """Open run ``run_name`` through an outbox in ``folder`` (see studies.tracking.courier):
        never raises for the server. While the server answers, the run is created before
        this returns (``RunLog.run_id``); otherwise later, by the courier or
        ``salsweep studies sync``. ``owner``: the Optuna (study, trial number) it belongs to."""
        from studies.tracking.courier import open_run

        return open_run(
            self.tracking_uri, folder, experiment_id, run_name, tags, params, owner=owner
        )

    def flush_runs(
        self,
        *,
        interrupted: bool = False,
        on_wait: Callable[[int, float], None] | None = None,
    ) -> bool:
        """Send what this process's runs journalled, for a bounded time (a worker process
        calls it as it ends; see `studies.tracking.courier.flush_process`). True when all
        is sent."""
        from studies.tracking.courier import flush_process

        return flush_process(self.tracking_uri, interrupted=interrupted, on_wait=on_wait)

    def adopt_unsent(self) -> list[RunOutbox]:
        """The trials' and replicates' runs of the sweep (``journal_dir``) that ended in
        an earlier process with logs still on disk, handed to this process's courier: they
        are sent in the background and the sweep's end waits for them as for its own.
        Left alone: runs not ended (another process runs them, or it died: `studies sync`
        closes those) and the parent run's journals (no owner trial): their end would
        close the parent run that this sweep has just set RUNNING again."""
        if self.journal_dir is None:
            return []
        from studies.tracking.courier import adopt
        from studies.tracking.outbox import find_outboxes

        waiting = [
            o
            for o in find_outboxes(self.journal_dir)
            if o.ended and o.has_pending() and "owner" in o.header
        ]
        adopt(self.tracking_uri, waiting)
        return waiting

    def unsent_runs(self) -> list[str]:
        """The runs of the sweep (``journal_dir``, any process) whose outbox on disk holds
        operations the server does not have: ``salsweep studies sync`` sends them."""
        if self.journal_dir is None:
            return []
        from studies.tracking.outbox import find_outboxes

        names = [o.run_name for o in find_outboxes(self.journal_dir) if o.has_pending()]
        return list(dict.fromkeys(names))

    # ------------------------------------------------------------------ the courier's requests
    # One request each (the courier sends one journalled operation at a time); they raise
    # the client's own exceptions, from which the courier tells a refusal from an outage.

    def create_run(
        self, experiment_id: str, run_name: str, tags: Mapping[str, str], start_time: int
    ) -> str:
        run = self._client.create_run(
            experiment_id, start_time=start_time, tags=dict(tags), run_name=run_name
        )
        return str(run.info.run_id)

    def find_run(self, experiment_id: str, tag: str, value: str) -> str | None:
        """The run of the experiment whose tag ``tag`` is ``value`` (the oldest), if any."""
        runs = self._client.search_runs(
            [experiment_id], filter_string=f"tags.`{tag}` = '{value}'", max_results=10
        )
        oldest = sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))
        return str(oldest[0].info.run_id) if oldest else None

    def send_batch(
        self,
        run_id: str,
        metrics: Sequence[tuple[str, float, int, int]],
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> None:
        """One ``log-batch`` request: ``metrics`` as (key, value, timestamp ms, step)."""
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, _finite_or_nan(v), ts, step) for k, v, ts, step in metrics],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
            synchronous=True,
        )

    def has_metric(self, run_id: str, key: str, step: int, timestamp: int) -> bool:
        """Whether the run has a value of ``key`` at ``step`` logged at ``timestamp``."""
        history = self._client.get_metric_history(run_id, key)
        return any(m.step == step and m.timestamp == timestamp for m in history)

    def upload(self, run_id: str, path: Path, artifact_path: str | None) -> None:
        """Upload a file or a folder's files to the run's artifacts."""
        if path.is_dir():
            self._client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self._client.log_artifact(run_id, str(path), artifact_path)

    def finish_run(
        self,
        run_id: str,
        status: RunEnd,
        end_time: int,
        state: str | None = None,
        value: float | None = None,
    ) -> None:
        """Tag ``optuna.state`` and metric ``optuna.value`` (when given), then the run's end."""
        metrics = [] if value is None else [Metric(VALUE_METRIC, float(value), end_time, 0)]
        tags = [] if state is None else [RunTag(STATE_TAG, state)]
        if metrics or tags:
            self._client.log_batch(run_id, metrics=metrics, tags=tags, synchronous=True)
        self._client.set_terminated(run_id, status=status, end_time=end_time)


def child_tags(parent_run_id: str, study_name: str, trial_number: int) -> dict[str, str]:
    """The tags of search trial ``trial_number``'s run."""
    return {
        "mlflow.parentRunId": parent_run_id,
        STUDY_TAG: study_name,
        TRIAL_TAG: str(trial_number),
        STATE_TAG: "RUNNING",
    }
