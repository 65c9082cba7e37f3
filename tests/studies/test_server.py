"""studies.server against a real ``mlflow server``.

The session's server (tests/conftest.py) serves most tests; one test starts and stops a
second server, on a copy of the session's already migrated SQLite file so that it starts
in seconds instead of migrating the schema again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from studies.server import (
    DB_FILE,
    LOG_FILE,
    STATE_FILE,
    ServerError,
    ServerInfo,
    is_healthy,
    server_status,
    start_server,
    stop_server,
    wait_healthy,
)
from studies.urls import free_port


def _group_commands(pgid: int) -> list[str]:
    """Command lines of the live processes of group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(cmd)
    return out


def _copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the backup API, not a file copy)."""
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)


def test_session_server_is_running_in_its_own_group(
    mlflow_server: ServerInfo, mlflow_home: Path
) -> None:
    info = mlflow_server
    assert info.host == "127.0.0.1"
    assert info.url == f"http://127.0.0.1:{info.port}"
    assert info.pgid == info.pid == os.getpgid(info.pid) == os.getsid(info.pid)
    assert os.getpgid(info.pid) != os.getpgid(0)  # not in pytest's group
    assert is_healthy(info.url)
    assert server_status(mlflow_home) == info
    state = json.loads((mlflow_home / STATE_FILE).read_text())
    assert state == {
        "pid": info.pid,
        "pgid": info.pgid,
        "host": "127.0.0.1",
        "port": info.port,
        "url": info.url,
        "started_at": info.started_at,
    }
    assert (mlflow_home / DB_FILE).is_file()
    assert "Uvicorn running on" in (mlflow_home / LOG_FILE).read_text()
    commands = _group_commands(info.pgid)
    assert any("mlflow server" in c and "--workers 1" in c for c in commands)
    assert any("uvicorn" in c for c in commands)


def test_start_is_idempotent(mlflow_server: ServerInfo, mlflow_home: Path) -> None:
    started = time.monotonic()
    again = start_server(mlflow_home, port=free_port())  # another port: still the same server
    assert again == mlflow_server
    assert time.monotonic() - started < 5.0


def test_busy_port_is_a_clear_error(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    with pytest.raises(ServerError, match=rf"^port {mlflow_server.port} on 127.0.0.1 is in use"):
        start_server(tmp_path, port=mlflow_server.port)
    assert not (tmp_path / STATE_FILE).exists()


def test_stale_state_file_is_cleaned_up(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    port = free_port()
    stale = ServerInfo(dead.pid, dead.pid, "127.0.0.1", port, f"http://127.0.0.1:{port}", "x")
    (tmp_path / STATE_FILE).write_text(json.dumps(stale.__dict__))
    assert server_status(tmp_path) is None
    assert stop_server(tmp_path) is False
    assert not (tmp_path / STATE_FILE).exists()


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    # The recorded pid now belongs to an unrelated program: stop must leave it alone.
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        info = ServerInfo(other.pid, other.pid, "127.0.0.1", 1, "http://127.0.0.1:1", "x")
        (tmp_path / STATE_FILE).write_text(json.dumps(info.__dict__))
        assert server_status(tmp_path) is None
        assert stop_server(tmp_path) is False
        assert other.poll() is None
        assert not (tmp_path / STATE_FILE).exists()
    finally:
        other.kill()
        other.wait()


def test_server_dying_at_start_up_quotes_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mlflow server` refuses to start with this client-only variable set, and does so
    # before touching its database: a quick, real start-up failure. (A broken database
    # fails too, but only after two minutes of MLflow's connection retries.)
    monkeypatch.setenv("MLFLOW_WORKSPACE", "salsweep-test")
    with pytest.raises(ServerError, match="exited during start-up") as caught:
        start_server(tmp_path, port=free_port(), timeout=120.0)
    message = str(caught.value)
    assert message.splitlines()[0].startswith("the MLflow server exited during start-up")
    assert str(tmp_path / LOG_FILE) in message
    assert "MLFLOW_WORKSPACE=salsweep-test is client-only" in message  # from the log's tail
    assert not (tmp_path / STATE_FILE).exists()


def test_wait_healthy_times_out() -> None:
    with pytest.raises(ServerError, match="not healthy after"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", timeout=0.5)


@pytest.mark.slow
def test_start_and_stop_leave_no_process(
    mlflow_server: ServerInfo,
    mlflow_home: Path,
    tmp_path: Path,
    assert_group_gone: Callable[[int], None],
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _copy_sqlite(mlflow_home / DB_FILE, home / DB_FILE)  # migrated already: a fast start
    started = time.monotonic()
    info = start_server(home, port=free_port(), timeout=120.0)
    print(f"start with a migrated database: {time.monotonic() - started:.1f} s")
    try:
        assert server_status(home) == info
        assert len(_group_commands(info.pgid)) >= 2  # the server and its uvicorn at least
    finally:
        assert stop_server(home) is True
    assert_group_gone(info.pgid)
    assert not is_healthy(info.url)
    assert server_status(home) is None
    assert not (home / STATE_FILE).exists()
    assert stop_server(home) is False
