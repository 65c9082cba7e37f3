"""What a worker process is told as it starts: one JSON line on its standard input, read
into a typed, frozen `WorkerSettings` (the launcher writes it, the worker reads it)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WorkerSettings"]


@dataclass(frozen=True)
class WorkerSettings:
    """A local worker's settings: the study it works on, where the study and the runs are
    kept, and its place among the workers."""

    study: str
    storage: str  # the Optuna storage URL
    tracking: str  # the MLflow tracking URI
    home: Path  # the data dir (the study's folder is under it)
    heartbeat: int  # seconds between a running trial's heartbeats
    experiment_id: str
    parent_run_id: str
    parent_pid: int  # the launcher: the worker ends when it does
    debug: bool = False  # an unexpected error shows its traceback
    index: int = 0  # 0, 1, ...: worker 0 runs the baseline; the sampler seed's index
    threads: int = 1  # torch's CPU threads

    def for_worker(self, index: int, threads: int) -> WorkerSettings:
        """These settings for worker ``index`` with ``threads`` CPU threads."""
        return dataclasses.replace(self, index=index, threads=threads)

    def to_json(self) -> str:
        """One line of JSON (the worker reads it with `from_json`)."""
        data: dict[str, Any] = dataclasses.asdict(self)
        data["home"] = str(self.home)
        return json.dumps(data)

    @classmethod
    def from_json(cls, line: str) -> WorkerSettings:
        """The settings a launcher wrote with `to_json`; a missing or unknown key, or a
        value of the wrong type, raises ValueError."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("worker settings: not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"worker settings: unknown keys {', '.join(unknown)}")
        try:
            settings = cls(**{**data, "home": Path(data["home"])})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"worker settings: {exc}") from None
        for f in dataclasses.fields(cls):
            expected = {"str": str, "int": int, "bool": bool, "Path": Path}[str(f.type)]
            value = getattr(settings, f.name)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"worker settings: {f.name} is not a {f.type}")
        return settings
