"""A trial's run made with plain client requests, for tests that need runs in MLflow's
layout without a sweep."""

from __future__ import annotations

from studies.tracking.client import Client
from studies.tracking.layout import ParamValue, child_tags, now_ms


def start_child(
    client: Client,
    experiment_id: str,
    parent: str,
    trial: int,
    params: dict[str, ParamValue],
    study: str,
) -> str:
    """Trial ``trial``'s run as the courier creates it: one create-run request with the
    trial's tags, then one log-batch request with its params."""
    run_id = client.create_run(
        experiment_id, f"trial-{trial}", child_tags(parent, study, trial), now_ms()
    )
    client.send_batch(run_id, [], {k: str(v) for k, v in params.items()}, {})
    return run_id
