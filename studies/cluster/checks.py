"""What a sweep on a cluster needs before any job is submitted, checked from the launcher:
a storage every node can share (not SQLite, unless the user says so), and addresses of the
storage and the MLflow server that the jobs' nodes reach (not this machine's loopback,
unless every node of the cluster is this machine).

Pure: the node names and this machine's names are arguments (studies.cluster.queue reads
them from Slurm), so the rules are tested without a cluster.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Collection, Sequence

from studies.urls import redact_url
from trainer.errors import UserError

__all__ = [
    "LOOPBACK_NAMES",
    "ClusterError",
    "address_problems",
    "host_of",
    "is_loopback",
    "nodes_are_here",
    "sqlite_problem",
]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class ClusterError(UserError, RuntimeError):
    """A sweep on a cluster was refused before it started, or its jobs failed: the message
    says why and what to do."""


def sqlite_problem(storage_url: str, *, allow_sqlite: bool) -> str | None:
    """Why ``storage_url`` cannot serve worker jobs (None: it can). SQLite's file locks do
    not hold over a network file system (NFS, Lustre, GPFS as clusters mount home
    folders): several nodes writing one file lose writes or corrupt it."""
    if not storage_url.startswith("sqlite") or allow_sqlite:
        return None
    return (
        f"the Optuna storage {redact_url(storage_url)} is an SQLite file: worker jobs on "
        "several nodes would share it over a network file system, where SQLite loses "
        "writes; give a PostgreSQL storage every node reaches (--storage or "
        "SALSWEEP_STORAGE, e.g. postgresql+psycopg2://USER:PASSWORD@DBHOST:5432/salsweep), "
        "or --allow-sqlite when every job runs on this machine"
    )


def host_of(url: str) -> str | None:
    """The host named by ``url`` (a database or HTTP URL), or None (a file, no host)."""
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname
    except ValueError:
        return None
    if parsed.scheme.startswith("sqlite") or parsed.scheme == "file":
        return None
    return host or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (127.0.0.0/8, ::1,
    localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def nodes_are_here(nodes: Sequence[str], here: Collection[str]) -> bool:
    """Whether every node of the cluster (``nodes``: Slurm's node names) is this machine,
    whose names (host name, fully qualified name, ``localhost``) are ``here``: then the
    loopback address reaches the same servers from the jobs."""
    names = {h.lower() for h in here} | LOOPBACK_NAMES
    return bool(nodes) and all(n.lower() in names or is_loopback(n) for n in nodes)


def address_problems(storage_url: str, tracking_uri: str, *, nodes_here: bool) -> list[str]:
    """What keeps the jobs from reaching the storage and the MLflow server at the
    addresses the launcher gives them: a tracking URI that is not an HTTP server, and, on a
    cluster whose nodes are not all this machine (``nodes_here``), a loopback address."""
    problems = []
    scheme = urllib.parse.urlsplit(tracking_uri).scheme
    if scheme not in ("http", "https"):
        problems.append(
            f"the MLflow tracking URI {redact_url(tracking_uri)} is not a server: worker jobs "
            "log through an MLflow server every node reaches (salsweep server start --host "
            "0.0.0.0, then --tracking-uri http://HOST:PORT)"
        )
    if nodes_here:
        return problems
    for what, url, fix in (
        (
            "the MLflow server",
            tracking_uri,
            "start it with `salsweep server start --host 0.0.0.0` and pass --tracking-uri "
            "http://THIS-HOST:PORT",
        ),
        ("the Optuna storage", storage_url, "name the database host as the nodes know it"),
    ):
        host = host_of(url)
        if host is not None and is_loopback(host):
            problems.append(
                f"{what} {redact_url(url)} is on this machine's loopback address {host}: a "
                f"job on another node would look for it on itself; {fix}"
            )
    return problems
