"""The MLflow tracking server's requests, and nothing else: the only owner of an
``MlflowClient`` in salsweep. It knows the tracking layout (studies.tracking.layout) but
no outbox: run logging over outboxes (studies.tracking.runs) and the courier
(studies.tracking.courier, handed this client as its transport) sit on top of it.

Requests are few and batched: a single ``log_metric`` costs tens of milliseconds against
an SQLite-backed server, so :meth:`Client.log_epoch` sends one ``log-batch`` request per
epoch, and parameters go in batches of 100 (MLflow's limit per request).

Non-finite metric values (a diverged loss) are logged as NaN: a NaN in a run's history
tells a diverged epoch from a missing one, and the UI's charts skip it. (MLflow would store
+-inf as +-1.8e308, which flattens every chart of the sweep, so infinities become NaN too.)

The methods named for what they do turn every failure to reach or use the server into a
:class:`TrackingError` with one line naming the server (credentials hidden); the courier's
requests (one journalled operation each) raise the client's own exceptions, from which
the courier tells a refusal from an outage. The client's own retries are off
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` 0, 30 s per request; see ``CLIENT_ENV_DEFAULTS``)
unless the environment sets them: the courier retries on its own.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from mlflow.entities import LifecycleStage, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from studies.tracking.layout import (
    CHILD_STATUS,
    CLIENT_ENV_DEFAULTS,
    MAX_PARAMS_PER_BATCH,
    PARENT_ROLE,
    PARENT_RUN_NAME,
    ROLE_TAG,
    SPEC_ARTIFACT,
    STUDY_TAG,
    SWEEP_VIEW_KEY,
    VALUE_METRIC,
    ParamValue,
    RunEnd,
    TrackingError,
    end_tags,
    now_ms,
)
from studies.tracking.view import sweep_view_state_of
from studies.urls import (
    SHARED_VIEW_TAG_PREFIX,
    error_line,
    redact_url,
    runs_page_url,
)

__all__ = ["Client"]

T = TypeVar("T")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _finite_or_nan(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _health_url(tracking_uri: str) -> str:
    """``<server>/health`` without the URL's credentials (urllib cannot use them)."""
    parts = urllib.parse.urlsplit(tracking_uri)
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path.rstrip("/") + "/health"
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


class Client:
    """Requests to one MLflow tracking server (``http(s)://`` or any URI MLflow accepts).
    Every method takes the ids it works on."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.shown_uri = redact_url(tracking_uri)
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
        return f"MLflow server {self.shown_uri}: cannot {what}: {error_line(detail)}"

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

    # ------------------------------------------------------------------ runs

    def close_orphan(self, run_id: str) -> bool:
        """Mark a trial's run FAILED if it is still RUNNING (its worker died); True if so."""
        with self._calling(f"read run {run_id}"):
            status = self._client.get_run(run_id).info.status
        if status != "RUNNING":
            return False
        with self._calling(f"close run {run_id}"):
            self.finish_run(run_id, CHILD_STATUS["FAIL"], now_ms(), "FAIL")
        return True

    def metric_points(self, run_id: str) -> list[tuple[str, int, float]]:
        """Every metric point of the run so far: (key, step, value)."""
        with self._calling(f"read the metrics of run {run_id}"):
            keys = list(self._client.get_run(run_id).data.metrics)
            return [
                (key, int(m.step), float(m.value))
                for key in keys
                for m in self._client.get_metric_history(run_id, key)
            ]

    # ------------------------------------------------------------------ the runs view

    def share_sweep_view(
        self,
        experiment_id: str,
        searched: Sequence[str],
        metric: str,
        ascending: bool,
        *,
        confirming: bool = False,
        loss_metrics: Sequence[str] = (),
    ) -> str:
        """Store the sweep's view of its runs table on the experiment and return its URL.

        The view shows as columns each run's configuration (``salsweep.label``), how its
        trial ended (``optuna.state``: COMPLETE, PRUNED, FAIL; a pruned trial's run ends
        FINISHED, see `studies.tracking.layout.CHILD_STATUS`) and loss method
        (``loss.method``), the ``searched`` params (dotted TrainConfig paths, as
        logged), the objective value ``optuna.value`` and the objective ``metric`` (its
        last epoch); every trial listed flat, best first: ordered by ``optuna.value``,
        ``ascending`` for a minimised objective. ``confirming`` (the sweep has or will
        have a confirmation) adds each replicate's score ``confirm.value`` and the
        verdict's figures on the parent run (``confirm.winner``, ``confirm.runner_up``,
        ``confirm.baseline``). Storing it again replaces it.

        The view's Chart tab opens on the answer too (`studies.urls.charts_view_state`):
        first the section "Objective" (``optuna.value`` per trial as bars, the objective
        ``metric`` per epoch, and with ``confirming`` each replicate's ``confirm.value``),
        then "Loss: train and validation", the ``loss_metrics`` on one chart (the built-in
        trainer's ``train/total_loss`` and ``val/total_loss``), then the UI's own cards
        for every other metric.
        """
        state = sweep_view_state_of(
            searched, metric, ascending, confirming=confirming, loss_metrics=loss_metrics
        )
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
        """The end's tags (``optuna.state``; a pruned trial's description, see
        `studies.tracking.layout.end_tags`) and metric ``optuna.value`` (when given), then
        the run's end."""
        metrics = [] if value is None else [Metric(VALUE_METRIC, float(value), end_time, 0)]
        tags = [RunTag(key, value) for key, value in end_tags(state).items()]
        if metrics or tags:
            self._client.log_batch(run_id, metrics=metrics, tags=tags, synchronous=True)
        self._client.set_terminated(run_id, status=status, end_time=end_time)
