"""Fixtures shared by every test folder: system parts (MLflow server, PostgreSQL, Chromium,
docker-compose, Slurm), the ``salsweep`` command line as a child process, the rule for when a
system part is missing, and the test tiers.

A missing system part skips its tests on a developer's machine, with the reason, but
fails them in CI (``CI=true``), where ``.ci/run`` installs everything: a green CI never
hides a test that did not run.

Tiers: a test that uses one of the fixtures of ``FIXTURE_MARKERS`` (directly or through
another fixture, such as the session's ``sweep``) gets that fixture's marker at collection
(``pytest_collection_modifyitems``); ``make test-fast`` deselects those markers, ``make
test`` runs everything. Nobody marks such a test by hand, and nobody forgets to.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.process_helpers import PythonChild, SalsweepProcess
from tests.tiers import FIXTURE_MARKERS

# One intra-op thread for torch in the tests and every process they start (set before any
# test module imports torch; children inherit it), unless the environment says otherwise.
# The tests' networks are tiny, and on the 2-core machine, shared with a server, child
# processes and other jobs, torch's second thread spins for a core it does not get:
# tests/trainer/test_loop.py::test_it_learns took 78 s with 2 threads and 8 s with 1 at
# load 5 (docs/BENCHMARKS.md, "Test suite tiers"). Local workers set their own share anyway
# (studies.workers.plan).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The boundary's simulated null distribution is cached in a file (studies.confirmation.
# null_cache): the tests and their child processes share one cache of their own, never the
# user's ~/.cache. One cache a test session (pytest-xdist workers each start their own).
if "SALSWEEP_CACHE" not in os.environ:
    import atexit
    import tempfile

    os.environ["SALSWEEP_CACHE"] = tempfile.mkdtemp(prefix="salsweep-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SALSWEEP_CACHE"], ignore_errors=True)

if TYPE_CHECKING:  # imported lazily: tests of other packages need no MLflow
    from studies.tracking.server import ServerInfo

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USERS = ("root", "postgres")  # trust auth: no password
POSTGRES_MAINTENANCE_DB = "test"
SESSION_SWEEP = "sweep"  # the session sweep's fixture (tests/studies/conftest.py)


# ---------------------------------------------------------------------------- tiers


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by the fixtures it uses (FIXTURE_MARKERS); under pytest-xdist
    (``make test`` runs ``-n auto --dist loadgroup``), put the tests on the session's sweep
    (tests/studies/conftest.py) in one group, so that one worker runs that sweep, not each."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in used:
                item.add_marker(marker)
        if SESSION_SWEEP in used:
            item.add_marker(pytest.mark.xdist_group(SESSION_SWEEP))


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


def _migrated(db: Path) -> bool:
    """Whether ``db`` is an MLflow database whose schema migrations have run."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    except sqlite3.Error:
        return False


def _copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy of an SQLite database (the backup API, not a file copy)."""
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    source.close()
    target.close()


@pytest.fixture(scope="session")
def mlflow_db_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An empty MLflow SQLite database with its schema migrated, as a real ``mlflow server``
    leaves it after its first start: copied into every fresh server home (``new_mlflow_home``)
    so that no server of the tests migrates the schema again (a first start on an empty
    SQLite file spends tens of seconds on it, a start on a migrated one a few).

    Made once per session by starting and stopping a real server on an empty home, and kept
    in pytest's cache (``.pytest_cache``) under the MLflow version, for the next session."""
    from studies.home import MLFLOW_DB
    from studies.tracking.server import start_server, stop_server
    from tests.port_helpers import free_port

    name = f"mlflow-{importlib.metadata.version('mlflow')}.db"
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    folder = cache.mkdir("salsweep-mlflow-db") if cache is not None else None
    if folder is not None and _migrated(folder / name):
        return folder / name

    home = tmp_path_factory.mktemp("mlflow-template")
    started = time.monotonic()
    info = start_server(home, port=free_port(), timeout=240.0)
    stop_server(home)
    _assert_group_gone(info.pgid)
    assert _migrated(home / MLFLOW_DB), "the MLflow server left no migrated database"
    print(f"\nmigrated an MLflow database for the session in {time.monotonic() - started:.1f} s")
    if folder is None:
        return home / MLFLOW_DB
    partial = folder / f"{name}.{os.getpid()}.tmp"
    _copy_sqlite(home / MLFLOW_DB, partial)
    partial.replace(folder / name)  # atomic: a concurrent session reads a whole file or none
    return folder / name


@pytest.fixture(scope="session")
def new_mlflow_home(
    mlflow_db_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """``new_mlflow_home(name)``: a fresh MLflow server home (a new temporary folder) holding
    a copy of the migrated database template, so that a server starts there in seconds."""
    from studies.home import MLFLOW_DB

    def make(name: str) -> Path:
        home = tmp_path_factory.mktemp(name)
        _copy_sqlite(mlflow_db_template, home / MLFLOW_DB)
        return home

    return make


@pytest.fixture(scope="session")
def mlflow_home(new_mlflow_home: Callable[[str], Path]) -> Path:
    """The data dir of the session's MLflow server (``mlflow.db``, ``mlartifacts/``)."""
    return new_mlflow_home("mlflow-home")


@pytest.fixture(scope="session")
def mlflow_server(mlflow_home: Path) -> Iterator[ServerInfo]:
    """A real ``mlflow server`` on a free loopback port, started once per test session
    on a copy of the migrated database template and stopped at the end, checking that
    none of its processes outlives it."""
    from studies.tracking.server import start_server, stop_server
    from tests.port_helpers import free_port

    started = time.monotonic()
    info = start_server(mlflow_home, port=free_port(), timeout=240.0)
    print(f"\nstarted the session's MLflow server in {time.monotonic() - started:.1f} s")
    try:
        yield info
    finally:
        started = time.monotonic()
        stop_server(mlflow_home)
        _assert_group_gone(info.pgid)
        print(f"\nstopped the session's MLflow server in {time.monotonic() - started:.1f} s")


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="session")
def salsweep_process() -> SalsweepProcess:
    """The ``salsweep`` command line as a child process (``.run``, ``.popen``, ``.argv``):
    for tests about the process boundary (signals, process groups, workers, limits of a
    real process). Every other test runs the CLI in-process with click's ``CliRunner``."""
    return SalsweepProcess()


@pytest.fixture(scope="session")
def python_child() -> PythonChild:
    """A fresh Python interpreter as a child process (tests.process_helpers.PythonChild);
    the test is marked ``child_process`` (tests.tiers)."""
    return PythonChild()


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
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards), as an
    SQLAlchemy URL ``postgresql+psycopg2://USER@127.0.0.1:5432/salsweep_test_<hex>``."""
    # Asked for at run time (request.getfixturevalue), it is invisible to the collection
    # hook: such a test carries the marker itself (e.g. on its parameter), or the fast tier
    # would run it.
    assert request.node.get_closest_marker("postgres") is not None, (
        f"{request.node.nodeid} uses PostgreSQL but is not marked postgres"
    )
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


# ---------------------------------------------------------------- Chromium, compose, Slurm


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


SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun")


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A real Slurm that runs jobs (its commands on the PATH, a node up, a one-second
    ``srun`` done): ``.ci/slurm.sh`` sets up a single-node one on this machine. Returns the
    default partition's name."""
    import subprocess

    hint = "sudo .ci/slurm.sh sets up a single-node Slurm on this machine"
    missing = [c for c in SLURM_COMMANDS if shutil.which(c) is None]
    require_system("Slurm", not missing, f"missing {', '.join(missing)} ({hint})")

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(command, 1, "", f"{command[0]} timed out")

    listed = run("sinfo", "--noheader", "--format=%P %a")
    default = [p for p, up in (line.split() for line in listed.stdout.splitlines()) if "*" in p]
    ready = listed.returncode == 0 and bool(default)
    why = (listed.stderr.strip() or "no default partition").splitlines()[0] if not ready else ""
    require_system("Slurm", ready, f"sinfo: {why} ({hint})")
    probe = run("srun", "--time=1", "--quiet", "true")
    first = (probe.stderr.strip() or "srun failed").splitlines()[0]
    require_system("Slurm", probe.returncode == 0, f"srun: {first} ({hint})")
    return default[0].rstrip("*")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """Path of the ``docker-compose`` v1 command (apt: docker-compose)."""
    found = shutil.which("docker-compose")
    require_system(
        "docker-compose", found is not None, "not on PATH (apt-get install docker-compose)"
    )
    assert found is not None
    return found
