"""A trial's run made as a sweep makes it (through an outbox, sent by the courier), for
tests that need runs in MLflow's layout without training."""

from __future__ import annotations

from pathlib import Path

from studies.tracking.layout import ParamValue, child_tags
from studies.tracking.runlog import RunLog
from studies.tracking.runs import Tracker


def open_child(
    runs: Tracker,
    folder: Path,
    experiment_id: str,
    parent: str,
    trial: int,
    params: dict[str, ParamValue],
    study: str,
) -> RunLog:
    """Trial ``trial``'s run ``trial-<n>`` under ``parent``, its outbox in
    ``folder/trial-<n>``; its id is known once this returns (the server answers)."""
    run = runs.open_run(
        folder / f"trial-{trial}",
        experiment_id,
        f"trial-{trial}",
        child_tags(parent, study, trial),
        params,
        owner=(study, trial),
    )
    assert run.run_id is not None, "the server did not create the run in time"
    return run
