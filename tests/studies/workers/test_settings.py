"""studies.workers.settings: what a worker process is told, as one line of JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studies.workers.settings import WorkerSettings

BASE = WorkerSettings(
    study="s",
    storage="sqlite:///x.db",
    tracking="http://127.0.0.1:5000",
    home=Path("/tmp/home"),
    heartbeat=20,
    experiment_id="3",
    parent_run_id="abc",
    parent_pid=1234,
)


def test_round_trip_per_worker() -> None:
    second = BASE.for_worker(1, 4)
    assert (second.index, second.threads) == (1, 4)
    assert (BASE.index, BASE.threads) == (0, 1)  # frozen: the launcher's copy is unchanged
    line = second.to_json()
    assert "\n" not in line
    assert json.loads(line)["home"] == "/tmp/home"
    assert WorkerSettings.from_json(line) == second


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"index": "1"}, "index is not a int"),
        ({"debug": 1}, "debug is not a bool"),
        ({"threads": True}, "threads is not a int"),
        ({"surprise": 1}, "unknown keys surprise"),
    ],
)
def test_a_bad_line_is_refused(change: dict[str, object], message: str) -> None:
    data = {**json.loads(BASE.to_json()), **change}
    with pytest.raises(ValueError, match=message):
        WorkerSettings.from_json(json.dumps(data))


def test_a_missing_key_is_refused() -> None:
    data = json.loads(BASE.to_json())
    del data["storage"]
    with pytest.raises(ValueError, match="storage"):
        WorkerSettings.from_json(json.dumps(data))
    with pytest.raises(ValueError, match="not a JSON object"):
        WorkerSettings.from_json("[1, 2]")
