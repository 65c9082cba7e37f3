"""The training side of a run's MLflow logs: a :class:`RunLog` journals every call in the
run's outbox (studies.tracking.outbox) and returns at once; this process's courier
(studies.tracking.courier) sends the operations. The only waits are bounded, and skipped
while the server is away: a new run's creation (``CREATE_WAIT_S``), a run's end
(``END_WAIT_S``), a sweep's end (``SWEEP_FLUSH_S``, see `flush_process`).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from studies.tracking.courier import (
    CREATE_WAIT_S,
    END_WAIT_S,
    Courier,
    Transport,
    courier_for,
    flush_process,
)
from studies.tracking.layout import (
    CHILD_STATUS,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    ChildState,
    ParamValue,
    RunEnd,
    now_ms,
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
from trainer.io import OutputError, write_output

__all__ = ["RunLog", "attach_run", "open_run"]


class RunLog:
    """One run as the training side sees it: every call journals and returns at once;
    the only waits are bounded, and skipped while the server is away."""

    def __init__(self, outbox: RunOutbox, courier: Courier) -> None:
        self.outbox = outbox
        self.courier = courier

    @property
    def run_id(self) -> str | None:
        """The MLflow run's id; None until the server has created it."""
        return self.outbox.run_id

    def _append(self, op: dict[str, Any]) -> int:
        seq = self.outbox.append(op)
        self.courier.notify()
        return seq

    def log_params(self, params: Mapping[str, ParamValue]) -> None:
        items = [(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            chunk = dict(items[start : start + MAX_PARAMS_PER_BATCH])
            self._append({"op": OP_LOG, "metrics": [], "params": chunk})

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """One epoch's metrics at ``step=epoch``, stamped now (one request per 1000)."""
        stamp = now_ms()
        items = [[key, float(value), stamp, epoch] for key, value in metrics.items()]
        for start in range(0, len(items), MAX_METRICS_PER_BATCH):
            self._append({"op": OP_LOG, "metrics": items[start : start + MAX_METRICS_PER_BATCH]})

    def log_tags(self, tags: Mapping[str, str]) -> None:
        """Set the run's tags (one request; setting a tag again replaces its value)."""
        if tags:
            self._append(
                {"op": OP_LOG, "metrics": [], "tags": {k: str(v) for k, v in tags.items()}}
            )

    def log_text(self, text: str, artifact_file: str) -> None:
        """``text`` as artifact ``artifact_file``; the file stays in the run's folder."""
        write_output(self.outbox.folder / artifact_file, text.encode("utf-8"))
        folder = str(Path(artifact_file).parent)
        self._append(
            {
                "op": OP_ARTIFACT,
                "path": artifact_file,
                "artifact_path": None if folder == "." else folder,
            }
        )

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        """A file of the run's folder as an artifact, sent as it is when the courier sends
        it (e.g. a finished program's ``stdout.log``). Raises ``ValueError`` for a file
        outside the run's folder."""
        folder = self.outbox.folder.resolve()
        source = path.resolve()
        if not source.is_relative_to(folder):
            raise ValueError(f"{path} is not in the run's folder {folder}")
        relative = str(source.relative_to(folder))
        self._append({"op": OP_ARTIFACT, "path": relative, "artifact_path": artifact_path})

    def log_artifacts(self, directory: Path, artifact_path: str | None) -> None:
        """A folder's files as artifacts; a folder outside the run's folder (a temporary
        one) is copied in first, so that it can still be sent later."""
        folder = self.outbox.folder.resolve()
        source = directory.resolve()
        if source.is_relative_to(folder):
            path = str(source.relative_to(folder))
        else:
            path = f"files/{len(self.outbox.ops)}"
            try:
                shutil.copytree(source, folder / path)
            except OSError as exc:
                raise OutputError(folder, path, exc) from exc
        self._append({"op": OP_ARTIFACT, "path": path, "artifact_path": artifact_path})

    def end(self, state: ChildState, value: float | None) -> None:
        """Close a trial's (or replicate's) run: status FINISHED for COMPLETE and PRUNED
        (pruned on purpose: no failure; see `studies.tracking.layout.CHILD_STATUS`), FAILED
        for FAIL; tag ``optuna.state`` (and a pruned trial's description), metric
        ``optuna.value`` when ``value`` is given; waits ``END_WAIT_S`` at most for it to be
        sent."""
        self._append(
            {
                "op": OP_END,
                "status": CHILD_STATUS[state],
                "end_time": now_ms(),
                "state": state,
                "value": value,
            }
        )
        if self.courier.reachable:
            self.courier.flush([self.outbox], timeout=END_WAIT_S, patience=0.0)

    def end_sweep(
        self, status: RunEnd, *, on_wait: Callable[[int, float], None] | None = None
    ) -> None:
        """Close the sweep's parent run with ``status``, then wait for every outbox of
        this process (see `flush_process`)."""
        self._append({"op": OP_END, "status": status, "end_time": now_ms()})
        flush_process(
            self.courier.transport.tracking_uri,
            interrupted=status != "FINISHED",
            on_wait=on_wait,
        )


def open_run(
    transport: Transport,
    folder: Path,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, ParamValue],
    *,
    owner: tuple[str, int] | None = None,
) -> RunLog:
    """A new run through an outbox in ``folder`` (see `studies.tracking.runs.Tracker.open_run`)."""
    courier = courier_for(transport)
    key = uuid.uuid4().hex[:16]
    header: dict[str, Any] = {
        "op": OP_CREATE,
        "experiment_id": experiment_id,
        "run_name": run_name,
        "tags": {**tags, KEY_TAG: key},
        "start_time": now_ms(),
    }
    if owner is not None:
        header["owner"] = list(owner)
    outbox = RunOutbox.create(folder, header, key=key)
    log = RunLog(outbox, courier)
    log.log_params(params)
    courier.add(outbox)
    if courier.reachable:
        courier.flush([outbox], timeout=CREATE_WAIT_S, patience=0.0)
    return log


def attach_run(transport: Transport, folder: Path, run_id: str, run_name: str) -> RunLog:
    """An outbox for run ``run_id``, which exists already (a sweep's parent run), in a
    folder of its own under ``folder``: each sweep process journals its own summary."""
    courier = courier_for(transport)
    key = uuid.uuid4().hex[:16]
    header = {"op": OP_ATTACH, "run_id": run_id, "run_name": run_name}
    outbox = RunOutbox.create(folder / key, header, key=key)
    courier.add(outbox)
    return RunLog(outbox, courier)
