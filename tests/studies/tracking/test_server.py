"""studies.tracking.server against a real ``mlflow server``.

The session's server (tests/conftest.py) serves most tests; one test starts and stops a
second server, in a fresh home holding a copy of the migrated database template (fixture
``new_mlflow_home``) so that it starts in seconds instead of migrating the schema again.
How long a start takes is measured in benchmarks/server_bench.py, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from studies.home import MLFLOW_DB, SERVER_LOG, SERVER_STATE
from studies.tracking.server import (
    ServerError,
    ServerInfo,
    exposure_warning,
    is_healthy,
    is_loopback_host,
    server_environment,
    server_status,
    start_server,
    stop_server,
    wait_healthy,
)
from studies.urls import port_in_use
from tests.port_helpers import free_port

# Bound on every wait for a child process of a test.
WAIT_S = 30.0


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


def _servers_of(home: Path) -> list[str]:
    """Command lines of every live ``mlflow server`` process whose store is in ``home``."""
    db = f"sqlite:///{home.resolve() / MLFLOW_DB}"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [a.decode(errors="replace") for a in argv]
            if "mlflow" in words and "server" in words and db in words:
                found.append(" ".join(words))
    return found


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
    state = json.loads((mlflow_home / SERVER_STATE).read_text())
    assert state == {
        "pid": info.pid,
        "pgid": info.pgid,
        "host": "127.0.0.1",
        "port": info.port,
        "url": info.url,
        "started_at": info.started_at,
    }
    assert (mlflow_home / MLFLOW_DB).is_file()
    assert "Uvicorn running on" in (mlflow_home / SERVER_LOG).read_text()
    # Two processes: `mlflow server` and one uvicorn worker. MLflow's job runner and its
    # huey consumers are off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false).
    commands = sorted(_group_commands(info.pgid))
    assert len(commands) == 2, commands
    assert "-m mlflow server" in commands[0] and "--workers 1" in commands[0]
    # salsweep's app plugin (studies.tracking.ui_app): MLflow's ASGI app, its index page
    # opening the UI in the model-training layout.
    assert "--app-name salsweep" in commands[0]
    assert (
        "-m uvicorn" in commands[1]
        and "--factory studies.tracking.ui_app:create_app" in (commands[1])
    )
    assert not any("huey" in c or "_job_runner" in c for c in commands)
    assert _servers_of(mlflow_home) == [commands[0]]


def test_start_is_idempotent(mlflow_server: ServerInfo, mlflow_home: Path) -> None:
    port = free_port()
    again = start_server(mlflow_home, port=port)  # another port: still the same server
    assert again == mlflow_server
    assert again.pid == mlflow_server.pid
    assert len(_servers_of(mlflow_home)) == 1  # no second server for the data dir
    assert not port_in_use("127.0.0.1", port)  # nothing was started on the other port
    assert json.loads((mlflow_home / SERVER_STATE).read_text())["pid"] == mlflow_server.pid


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("10.0.0.5", False),
        ("example.org", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_hosts_and_the_exposure_warning(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
    warning = exposure_warning(host)
    if loopback:
        assert warning is None
    else:
        assert warning is not None
        assert "no authentication" in warning
        assert f"listen on {host or 'every address'}," in warning
        assert "127.0.0.1" in warning


def test_server_environment_turns_job_execution_off_unless_told() -> None:
    env = server_environment({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    told = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
    assert server_environment(told) == told


def test_busy_port_is_a_clear_error(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    with pytest.raises(ServerError, match=rf"^port {mlflow_server.port} on 127.0.0.1 is in use"):
        start_server(tmp_path, port=mlflow_server.port)
    assert not (tmp_path / SERVER_STATE).exists()


def test_stale_state_file_is_cleaned_up(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=WAIT_S)
    port = free_port()
    stale = ServerInfo(dead.pid, dead.pid, "127.0.0.1", port, f"http://127.0.0.1:{port}", "x")
    (tmp_path / SERVER_STATE).write_text(json.dumps(stale.__dict__))
    assert server_status(tmp_path) is None
    assert stop_server(tmp_path) is False
    assert not (tmp_path / SERVER_STATE).exists()


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    # The recorded pid now belongs to an unrelated program: stop must leave it alone.
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        info = ServerInfo(other.pid, other.pid, "127.0.0.1", 1, "http://127.0.0.1:1", "x")
        (tmp_path / SERVER_STATE).write_text(json.dumps(info.__dict__))
        assert server_status(tmp_path) is None
        assert stop_server(tmp_path) is False
        assert other.poll() is None
        assert not (tmp_path / SERVER_STATE).exists()
    finally:
        other.kill()
        other.wait(timeout=WAIT_S)


def test_server_dying_at_start_up_quotes_its_log(
    new_mlflow_home: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mlflow server` refuses to start with this client-only variable set, and does so
    # before touching its database: a quick, real start-up failure. (A broken database
    # fails too, but only after two minutes of MLflow's connection retries.)
    home = new_mlflow_home("dying")
    monkeypatch.setenv("MLFLOW_WORKSPACE", "salsweep-test")
    with pytest.raises(ServerError, match="exited during start-up") as caught:
        start_server(home, port=free_port(), timeout=120.0)
    message = str(caught.value)
    assert message.splitlines()[0].startswith("the MLflow server exited during start-up")
    assert str(home / SERVER_LOG) in message
    assert "MLFLOW_WORKSPACE=salsweep-test is client-only" in message  # from the log's tail
    assert not (home / SERVER_STATE).exists()


# A stand-in for a server that another command launched: it listens on the port, and at
# the first health check it exits without answering, as a server dying at start-up would.
_DIES_WHEN_POLLED = """
import socket, sys
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
listener.accept()
"""


def test_waiting_on_a_server_that_dies_fails_at_once(tmp_path: Path) -> None:
    # Its state file is there and the process alive when start_server looks, so it waits
    # for that server; the process then dies: start_server says so instead of waiting
    # out its timeout.
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-c", _DIES_WHEN_POLLED, str(port), "mlflow"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert fake.stdout is not None
        assert fake.stdout.readline() == b"listening\n"
        info = ServerInfo(fake.pid, fake.pid, "127.0.0.1", port, f"http://127.0.0.1:{port}", "x")
        (tmp_path / SERVER_STATE).write_text(json.dumps(info.__dict__))
        (tmp_path / SERVER_LOG).write_text("the fake server's last words\n")
        with pytest.raises(ServerError) as caught:
            start_server(tmp_path, port=free_port(), timeout=300.0)
        message = str(caught.value)
        assert message.startswith(
            f"the MLflow server at http://127.0.0.1:{port} (pid {fake.pid}) exited during start-up"
        )
        assert "the fake server's last words" in message  # the log's tail
        assert fake.wait(timeout=WAIT_S) == 0
    finally:
        fake.kill()
        fake.wait(timeout=WAIT_S)


def test_wait_healthy_times_out() -> None:
    with pytest.raises(ServerError, match="not healthy after"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", timeout=0.5)


@pytest.mark.slow
def test_start_and_stop_leave_no_process(
    new_mlflow_home: Callable[[str], Path], assert_group_gone: Callable[[int], None]
) -> None:
    home = new_mlflow_home("home")  # the migrated template: a fast start
    # Two starts at once (as `make sweep` starts the server beside `sweep launch`): one
    # server, and both calls return it.
    results: list[ServerInfo | BaseException] = []

    def start() -> None:
        try:
            results.append(start_server(home, port=free_port(), timeout=240.0))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300.0)
    assert len(results) == 2, results
    info = results[0]
    assert isinstance(info, ServerInfo), info
    try:
        assert results[1] == info
        assert len(_servers_of(home)) == 1
        assert server_status(home) == info
        assert len(_group_commands(info.pgid)) >= 2  # the server and its uvicorn at least
    finally:
        assert stop_server(home) is True
    assert_group_gone(info.pgid)
    assert not is_healthy(info.url)
    assert server_status(home) is None
    assert not (home / SERVER_STATE).exists()
    assert stop_server(home) is False
