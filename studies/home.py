"""Decide where a sweep keeps its state: storage URL, tracking server, data dir.

Naming the storage imports nothing (the read-only commands use `resolve_storage`); the
server module loads only when a tracking server is looked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ResolvedTracking", "default_storage_url", "resolve_storage", "resolve_tracking"]


@dataclass(frozen=True)
class ResolvedTracking:
    uri: str
    started_here: bool


def default_storage_url(home: Path) -> str:
    """SQLite file ``<home>/optuna.db``."""
    return f"sqlite:///{(home / 'optuna.db').resolve()}"


def resolve_storage(storage: str | None, home: Path) -> str:
    """The given SQLAlchemy URL, or the SQLite file in the data dir."""
    return storage or default_storage_url(home)


def resolve_tracking(
    tracking_uri: str | None, home: Path, *, port: int | None = None
) -> ResolvedTracking:
    """The given URI; else the data dir's running server; else start that server (on
    ``port``, default `studies.tracking.server.DEFAULT_PORT`)."""
    if tracking_uri:
        return ResolvedTracking(tracking_uri, started_here=False)
    from studies.tracking.server import DEFAULT_PORT, server_status, start_server

    running = server_status(home)
    if running is not None:
        return ResolvedTracking(running.url, started_here=False)
    started = start_server(home, port=DEFAULT_PORT if port is None else port)
    return ResolvedTracking(started.url, started_here=True)
