"""Decide where a sweep keeps its state: storage URL, tracking server, data dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studies.server import DEFAULT_PORT, server_status, start_server
from studies.storage import default_storage_url

__all__ = ["ResolvedTracking", "resolve_storage", "resolve_tracking"]


@dataclass(frozen=True)
class ResolvedTracking:
    uri: str
    started_here: bool


def resolve_storage(storage: str | None, home: Path) -> str:
    """The given SQLAlchemy URL, or the SQLite file in the data dir."""
    return storage or default_storage_url(home)


def resolve_tracking(
    tracking_uri: str | None, home: Path, *, port: int = DEFAULT_PORT
) -> ResolvedTracking:
    """The given URI; else the data dir's running server; else start that server."""
    if tracking_uri:
        return ResolvedTracking(tracking_uri, started_here=False)
    running = server_status(home)
    if running is not None:
        return ResolvedTracking(running.url, started_here=False)
    return ResolvedTracking(start_server(home, port=port).url, started_here=True)
