"""Fixtures shared by every test folder: system parts (MLflow server, PostgreSQL, Chromium,
docker-compose) and the rule for when one is missing.

A missing system part skips its tests on a developer's machine, with the reason, but
fails them in CI (``CI=true``), where ``.ci/run`` installs everything: a green CI never
hides a test that did not run.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported lazily: tests of other packages need no MLflow
    from studies.tracking.server import ServerInfo

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USERS = ("root", "postgres")  # trust auth: no password
POSTGRES_MAINTENANCE_DB = "test"


def require_system(component: str, available: bool, reason: str) -> None:
    """Skip the calling test when ``component`` is not available, or fail it under CI=true."""
    if available:
        return
    message = f"{component} is not available: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: system parts are required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(name="require_system")
def require_system_fixture() -> Any:
    """``require_system(component, available, reason)`` for tests with their own checks."""
    return require_system


# ---------------------------------------------------------------------------- MLflow


def _live_group_members(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are alive (zombies excluded), via /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _assert_group_gone(pgid: int, timeout: float = 10.0) -> None:
    """Assert that no process of group ``pgid`` is left (zombies get ``timeout`` to be reaped)."""
    assert _live_group_members(pgid) == [], f"processes of group {pgid} outlived the stop"
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"process group {pgid} still exists"
        time.sleep(0.1)


@pytest.fixture(name="assert_group_gone", scope="session")
def assert_group_gone_fixture() -> Callable[[int], None]:
    """``assert_group_gone(pgid)``: no live process of the group is left, and the group
    itself disappears once init has reaped its zombies."""
    return _assert_group_gone


@pytest.fixture(scope="session")
def mlflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data dir of the session's MLflow server (``mlflow.db``, ``mlartifacts/``)."""
    return tmp_path_factory.mktemp("mlflow-home")


@pytest.fixture(scope="session")
def mlflow_server(mlflow_home: Path) -> Iterator[ServerInfo]:
    """A real ``mlflow server`` on a free loopback port, started once per test session
    (the first start migrates the SQLite schema: tens of seconds) and stopped at the end,
    checking that none of its processes outlives it."""
    from studies.tracking.server import start_server, stop_server
    from tests.port_helpers import free_port

    info = start_server(mlflow_home, port=free_port(), timeout=240.0)
    try:
        yield info
    finally:
        started = time.monotonic()
        stop_server(mlflow_home)
        _assert_group_gone(info.pgid)
        print(f"\nstopped the session's MLflow server in {time.monotonic() - started:.1f} s")


# ---------------------------------------------------------------------------- PostgreSQL


def _postgres_connect(dbname: str) -> tuple[Any, str]:
    """(connection, user) to PostgreSQL on 127.0.0.1:5432; raises the last error."""
    import psycopg2

    error: Exception | None = None
    for user in POSTGRES_USERS:
        try:
            conn = psycopg2.connect(
                host=POSTGRES_HOST, port=POSTGRES_PORT, user=user, dbname=dbname, connect_timeout=3
            )
        except psycopg2.OperationalError as exc:
            error = exc
            continue
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        return conn, user
    assert error is not None
    raise error


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards), as an
    SQLAlchemy URL ``postgresql+psycopg2://USER@127.0.0.1:5432/salsweep_test_<hex>``."""
    try:
        admin, user = _postgres_connect(POSTGRES_MAINTENANCE_DB)
    except Exception as exc:  # no driver, refused, no such role/database
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        require_system("PostgreSQL", False, f"{POSTGRES_HOST}:{POSTGRES_PORT}: {first}")
        raise  # unreachable: require_system skipped or failed
    name = f"salsweep_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            # FORCE: a pool the test left open must not keep the database alive.
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# ---------------------------------------------------------------------------- Chromium, compose


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of Debian's ``chromium`` and ``chromedriver`` (apt: chromium chromium-driver)."""
    binary = shutil.which("chromium") or CHROMIUM
    driver = shutil.which("chromedriver") or CHROMEDRIVER
    missing = [p for p in (binary, driver) if not os.access(p, os.X_OK)]
    require_system(
        "Chromium",
        not missing,
        f"missing {', '.join(missing)} (apt-get install chromium chromium-driver)",
    )
    return binary, driver


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """Path of the ``docker-compose`` v1 command (apt: docker-compose)."""
    found = shutil.which("docker-compose")
    require_system(
        "docker-compose", found is not None, "not on PATH (apt-get install docker-compose)"
    )
    assert found is not None
    return found
