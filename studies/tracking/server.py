"""The local MLflow tracking server: SQLite and artifacts in the data dir.

Over 400 lines: one life cycle (start, find, stop) of one process tree, whose state file,
start lock and process checks must agree; the /proc work is in studies.procs.

``start_server`` runs ``mlflow server`` in the background, in its own process session,
so that one signal to its process group reaches every process it starts. It starts with
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` unless the environment says otherwise: MLflow's
job runner and its seven huey consumers (GenAI scorers, trace roll-ups, nothing a sweep
uses) each import MLflow again: on two cores a start used 24 CPU seconds in its first 20 s
instead of 5, and took 16 s instead of 8 while training kept both cores busy
(docs/BENCHMARKS.md, "Set-up and server start"). What is left is two processes:
``mlflow server`` and its uvicorn worker.

The server binds 127.0.0.1 unless told otherwise; it has no authentication, so
:func:`exposure_warning` gives the text to show when asked to bind anything else.

Files under ``home``:

- ``mlflow.db``          the tracking store (SQLite)
- ``mlartifacts/``       artifacts; clients upload them over HTTP (``--serve-artifacts``)
- ``mlflow-server.log``  the server's stdout and stderr
- ``mlflow-server.json`` pid, process group, address and start time of the running server
- ``mlflow-server.lock`` held while a start checks for a server and launches one, so that
  two starts at once (``make sweep`` starts the server beside ``sweep launch``) give one

The UI's table of training runs is at ``<url>/#/experiments/<id>/runs``
(:func:`studies.urls.runs_page_url`). The server runs salsweep's MLflow app plugin
(``--app-name salsweep``, studies.tracking.ui_app) when it is installed, so that every page
of its UI opens in the model-training layout, in any browser.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from studies.home import MLFLOW_ARTIFACTS, MLFLOW_DB, SERVER_LOCK, SERVER_LOG, SERVER_STATE
from studies.procs import cmdline, process_stat, signal_processes, tree_processes
from studies.urls import port_in_use
from trainer.errors import UserError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ResolvedTracking",
    "ServerError",
    "ServerInfo",
    "exposure_warning",
    "is_healthy",
    "is_loopback_host",
    "resolve_tracking",
    "server_command",
    "server_environment",
    "server_status",
    "start_server",
    "stop_server",
    "ui_app_installed",
    "wait_healthy",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
# Lines of the server log quoted when it fails to start.
LOG_TAIL_LINES = 15
# Seconds between two health checks while a server starts: a refused connection costs
# microseconds, so polling often only shortens the wait after the server is up.
POLL_INTERVAL = 0.1
# Environment defaults of the server process (a value already in the environment wins).
SERVER_ENV_DEFAULTS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# The ``mlflow.app`` entry point of salsweep's app plugin (studies.tracking.ui_app.APP_NAME;
# not imported from there: that module loads MLflow's server).
UI_APP_NAME = "salsweep"

# Loopback requests must not go through an HTTP proxy set in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(UserError, RuntimeError):
    """The MLflow server cannot be started, reached or stopped."""


@dataclass(frozen=True)
class ServerInfo:
    """A running server, as recorded in ``<home>/mlflow-server.json``."""

    pid: int
    pgid: int
    host: str
    port: int
    url: str
    started_at: str  # ISO 8601, UTC


# ---------------------------------------------------------------------------- health


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET <url>/health`` answers 200."""
    try:
        with _OPENER.open(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):  # URLError, HTTPError, timeouts, refused connections
        return False


def wait_healthy(
    url: str,
    timeout: float,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``<url>/health`` until it answers 200.

    Raises ServerError when ``timeout`` seconds pass first, or at once when ``proc``
    (the server process, if we started it) exits; the message quotes ``log``'s tail.
    """
    deadline = time.monotonic() + timeout
    while True:
        if is_healthy(url):
            return
        if proc is not None and proc.poll() is not None:
            raise ServerError(
                f"the MLflow server exited during start-up (exit code {proc.returncode})"
                + _tail(log)
            )
        if time.monotonic() >= deadline:
            raise ServerError(
                f"the MLflow server at {url} was not healthy after {timeout:.0f} s" + _tail(log)
            )
        time.sleep(POLL_INTERVAL)


def _wait_existing(info: ServerInfo, timeout: float, log: Path) -> None:
    """``wait_healthy`` for a server that another command launched: raises as soon as its
    process is gone instead of waiting out ``timeout``."""
    deadline = time.monotonic() + timeout
    while not is_healthy(info.url):
        if not _is_our_server(info):
            raise ServerError(
                f"the MLflow server at {info.url} (pid {info.pid}) exited during start-up"
                + _tail(log)
            )
        if time.monotonic() >= deadline:
            raise ServerError(
                f"the MLflow server at {info.url} was not healthy after {timeout:.0f} s"
                + _tail(log)
            )
        time.sleep(POLL_INTERVAL)


def _tail(log: Path | None) -> str:
    if log is None or not log.is_file():
        return ""
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    quoted = "\n".join(f"  {line}" for line in lines)
    return f"; last lines of {log}:\n{quoted}" if lines else f"; {log} is empty"


# ---------------------------------------------------------------------------- processes


def _server_processes(info: ServerInfo) -> set[int]:
    """Live processes of the server: its process group plus every descendant of its pid
    (a child may start its own session, as MLflow's local job executor does)."""
    return tree_processes(info.pgid, leader=info.pid)


# Servers this process started, kept so their exit status is collected (no zombie, and no
# "subprocess still running" warning when a Popen object is dropped).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not stay a zombie."""
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        del _CHILDREN[pid]


def _is_our_server(info: ServerInfo) -> bool:
    """The recorded pid is alive and still an mlflow server (pids get reused)."""
    _reap(info.pid)
    stat = process_stat(info.pid)
    return (
        stat is not None
        and stat[0] != "Z"
        and stat[2] == info.pgid
        and "mlflow" in cmdline(info.pid)
    )


def _wait_gone(info: ServerInfo, timeout: float) -> set[int]:
    """Wait until no process of the server is left; return the ones still alive."""
    deadline = time.monotonic() + timeout
    while True:
        _reap(info.pid)
        left = _server_processes(info)
        if not left:
            # The leader may have exited after the _reap above: collect it now, or it
            # stays a zombie that keeps the process group alive.
            proc = _CHILDREN.pop(info.pid, None)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5.0)
            return left
        if time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _terminate(info: ServerInfo, timeout: float) -> None:
    """SIGTERM the server's group and descendants, then SIGKILL whatever outlives ``timeout``."""
    pids = _server_processes(info)
    signal_processes(info.pgid, pids, signal.SIGTERM)
    left = _wait_gone(info, timeout)
    if left:
        signal_processes(info.pgid, left, signal.SIGKILL)
        left = _wait_gone(info, 5.0)
    if left:
        raise ServerError(f"processes of the MLflow server survived SIGKILL: {sorted(left)}")
    # Children whose parent exited first are zombies until init collects them; they hold
    # nothing, but wait briefly so that the process group is gone when we return.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            os.killpg(info.pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return  # the group id now belongs to someone else's processes
        time.sleep(0.1)


# ---------------------------------------------------------------------------- state file


def _read_state(home: Path) -> ServerInfo | None:
    path = home / SERVER_STATE
    try:
        data = json.loads(path.read_text())
        return ServerInfo(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        # Unreadable or from another version: treat as stale.
        path.unlink(missing_ok=True)
        return None


def _write_state(home: Path, info: ServerInfo) -> None:
    path = home / SERVER_STATE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _clear_stale(home: Path, info: ServerInfo) -> None:
    """Remove a state file whose server is gone, and stop leftovers of its group."""
    stat = process_stat(info.pid)
    if stat is None or stat[0] == "Z" or "mlflow" in cmdline(info.pid):
        leftovers = {
            p for p in _server_processes(info) if "mlflow" in cmdline(p) or "uvicorn" in cmdline(p)
        }
        if leftovers:
            _terminate(info, timeout=10.0)
    (home / SERVER_STATE).unlink(missing_ok=True)


@contextlib.contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    """Hold ``<home>/mlflow-server.lock`` (an exclusive ``flock``; released on exit, also
    when the process dies) while a start looks for a server and launches one."""
    with (home / SERVER_LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- public API


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine: ``localhost`` or an
    address in 127.0.0.0/8 or ``::1``. A wildcard (``0.0.0.0``, ``::``, empty) or any
    other name or address is reachable from elsewhere."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name other than localhost: not resolved, not trusted
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to show before a server binds ``host``, or None for a loopback address.

    The MLflow server has no authentication: whoever reaches the address can read, change
    and delete every run and artifact of the data dir.
    """
    if is_loopback_host(host):
        return None
    shown = host or "every address"
    return (
        f"the MLflow server will listen on {shown}, reachable from other machines, and it "
        "has no authentication: anyone who reaches it can read, change and delete every "
        "run and artifact; bind 127.0.0.1 (the default) unless the network is trusted"
    )


def server_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The server process's environment: ``base`` plus :data:`SERVER_ENV_DEFAULTS` where
    ``base`` does not set them."""
    return {**SERVER_ENV_DEFAULTS, **base}


def ui_app_installed() -> bool:
    """Whether salsweep's MLflow app plugin (studies.tracking.ui_app) is installed: the
    ``mlflow.app`` entry point ``salsweep`` of this environment (``pip install -e .``)."""
    from importlib.metadata import entry_points

    return any(e.name == UI_APP_NAME for e in entry_points(group="mlflow.app"))


def server_command(home: Path, host: str, port: int) -> list[str]:
    """The ``mlflow server`` command line for the data dir ``home``: with salsweep's app
    plugin where it is installed (``--app-name salsweep``: the UI opens in the
    model-training layout in any browser; studies.tracking.ui_app), else MLflow's own."""
    home = home.resolve()
    app = ["--app-name", UI_APP_NAME] if ui_app_installed() else []
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / MLFLOW_DB}",
        "--serve-artifacts",
        "--artifacts-destination", str(home / MLFLOW_ARTIFACTS),
        "--host", host,
        "--port", str(port),
        # One uvicorn worker: a sweep sends one request at a time, and the machine's
        # cores belong to training.
        "--workers", "1",
        *app,
    ]  # fmt: skip


def server_status(home: Path) -> ServerInfo | None:
    """The server recorded in ``home`` when it is running and healthy, else None."""
    info = _read_state(home)
    if info is None or not _is_our_server(info) or not is_healthy(info.url):
        return None
    return info


def start_server(
    home: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout: float = 120.0
) -> ServerInfo:
    """Start the data dir's MLflow server in the background and wait until it is healthy.

    Returns the running one when ``home`` already has a server (whatever its port), once
    it is healthy: it may still be starting, launched a moment ago by another command.
    Two starts at once launch one server (``<home>/mlflow-server.lock``). A state file
    left by a server that died is cleaned up. The server's environment is
    :func:`server_environment`. Raises ServerError when the port is taken, when the server
    exits during start-up (quoting its log) or when it is not healthy within ``timeout``
    seconds (it is stopped then, if this call launched it).
    """
    home.mkdir(parents=True, exist_ok=True)
    with _start_lock(home):
        existing = _read_state(home)
        if existing is not None and not _is_our_server(existing):
            _clear_stale(home, existing)
            existing = None
        if existing is None:
            proc, info = _launch(home, host, port)
    if existing is not None:
        _wait_existing(existing, timeout, home / SERVER_LOG)
        return existing
    try:
        wait_healthy(info.url, timeout, proc=proc, log=home / SERVER_LOG)
    except BaseException:
        with contextlib.suppress(ServerError):
            _terminate(info, timeout=10.0)
        (home / SERVER_STATE).unlink(missing_ok=True)
        raise
    return info


def _launch(home: Path, host: str, port: int) -> tuple[subprocess.Popen[bytes], ServerInfo]:
    """Run ``mlflow server`` in its own session and record it in the state file."""
    if port_in_use(host, port):
        raise ServerError(
            f"port {port} on {host} is in use by another program; choose another with --port"
        )
    url = f"http://{_url_host(host)}:{port}"
    with (home / SERVER_LOG).open("ab") as log:
        log.write(f"\n--- salsweep: starting mlflow server at {url} ---\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                server_command(home, host, port),
                cwd=home,
                env=server_environment(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and process group: killpg reaches all
            )
        except OSError as exc:
            raise ServerError(f"cannot run mlflow server: {exc}") from None
    _CHILDREN[proc.pid] = proc
    info = ServerInfo(
        pid=proc.pid,
        pgid=proc.pid,  # a session leader leads its process group
        host=host,
        port=port,
        url=url,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write_state(home, info)
    return proc, info


def stop_server(home: Path, *, timeout: float = 20.0) -> bool:
    """Stop the data dir's server and every process it started; False if none ran.

    SIGTERM goes to the server's process group (and any descendant that left it); what
    is still alive after ``timeout`` seconds gets SIGKILL. Returns once no process of
    the server is left, and removes the state file.
    """
    info = _read_state(home)
    if info is None:
        return False
    if not _is_our_server(info):
        _clear_stale(home, info)
        return False
    _terminate(info, timeout)
    (home / SERVER_STATE).unlink(missing_ok=True)
    return True


def _url_host(host: str) -> str:
    """The address clients use: a wildcard bind is reached through loopback."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ResolvedTracking:
    uri: str
    started_here: bool


def resolve_tracking(
    tracking_uri: str | None, home: Path, *, port: int | None = None
) -> ResolvedTracking:
    """The given URI; else the data dir's running server; else start that server (on
    ``port``, default `DEFAULT_PORT`)."""
    if tracking_uri:
        return ResolvedTracking(tracking_uri, started_here=False)
    running = server_status(home)
    if running is not None:
        return ResolvedTracking(running.url, started_here=False)
    started = start_server(home, port=DEFAULT_PORT if port is None else port)
    return ResolvedTracking(started.url, started_here=True)
