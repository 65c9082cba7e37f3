"""The Optuna storage locked or unreachable for a while: calls retry with backoff, give up
after a bound with one line naming the storage (password hidden), and leave no
half-written trial.

Real parts: Optuna studies over real SQLite files, locked by another process that holds
``BEGIN EXCLUSIVE`` through sqlite3; the real PostgreSQL server, reached through a small
TCP proxy on a free loopback port that the test stops (listener closed, open connections
cut, as a restart does) and starts again. The busy timeout and the retry bound are
shortened through `open_storage`'s parameters (``SALSWEEP_SQLITE_BUSY_TIMEOUT_S`` and
``SALSWEEP_STORAGE_RETRY_S`` in the CLI). Faults start and end on what the storage has
done (its retry counts), never on the clock, so the tests hold on a slow machine.
"""

from __future__ import annotations

import os
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from studies.store.storage import (
    BUSY_TIMEOUT_ENV,
    RETRY_ENV,
    RetryingStorage,
    StorageError,
    open_storage,
)
from studies.tracking.server import ServerInfo
from sweeps import spec_to_yaml
from tests.port_helpers import free_port
from tests.process_helpers import SalsweepProcess
from tests.studies.sweep_helpers import tiny_spec

BUSY_TIMEOUT_S = 0.2  # one SQLite attempt waits this long for the lock
PASSWORD = "s3cretpw-C1"
WAIT_S = 30.0  # bound of every wait on a condition (a failing test ends, never hangs)

optuna.logging.set_verbosity(optuna.logging.ERROR)


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def states(storage_url: str, name: str) -> list[TrialState]:
    """Trial states as a fresh, plain Optuna storage reads them (no retries)."""
    study = optuna.load_study(study_name=name, storage=storage_url)
    return [t.state for t in study.get_trials(deepcopy=False)]


def counts(storage: RetryingStorage) -> str:
    s = storage.stats
    return (
        f"retries={s.retries} recovered={s.recovered} gave_up={s.gave_up} "
        f"heartbeats={s.heartbeats} heartbeats_skipped={s.heartbeats_skipped}"
    )


# ---------------------------------------------------------------------------- SQLite

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


class Locker:
    """Another process holding an exclusive lock on an SQLite file until `release`."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT_S)
        assert ready and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        assert self.proc.wait(timeout=WAIT_S) == 0


@contextmanager
def locked(path: Path, release_when: Callable[[], bool] | None = None) -> Iterator[Locker]:
    """The file locked by another process; released when ``release_when()`` turns true
    (polled in a thread), else on leaving the block."""
    locker = Locker(path)
    watcher = None
    if release_when is not None:

        def watch() -> None:
            deadline = time.monotonic() + WAIT_S
            while not release_when() and time.monotonic() < deadline:
                time.sleep(0.02)
            locker.release()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        yield locker
    finally:
        if watcher is not None:
            watcher.join(WAIT_S)
        locker.release()


def sqlite_study(tmp_path: Path, name: str, **kwargs: float) -> tuple[str, Path, optuna.Study]:
    path = tmp_path / "optuna.db"
    url = f"sqlite:///{path}"
    storage = open_storage(url, busy_timeout_s=BUSY_TIMEOUT_S, **kwargs)  # type: ignore[arg-type]
    study = optuna.create_study(study_name=name, storage=storage)
    study.optimize(objective, n_trials=2)
    return url, path, study


def test_sqlite_lock_shorter_than_the_bound_is_waited_out(tmp_path: Path) -> None:
    url, path, study = sqlite_study(tmp_path, "locked", heartbeat_interval=1, retry_s=60)
    storage = study._storage._backend  # type: ignore[attr-defined]  # Optuna's cache wraps it
    assert isinstance(storage, RetryingStorage)

    # Locked longer than the busy timeout: released once the storage has retried twice.
    with locked(path, release_when=lambda: storage.stats.retries >= 2):
        study.optimize(objective, n_trials=2)

    print(f"\ncounts: sqlite locked, released after 2 retries: {counts(storage)}")
    assert storage.stats.retries >= 2
    assert storage.stats.recovered >= 1
    assert storage.stats.gave_up == 0
    trials = optuna.load_study(study_name="locked", storage=url).get_trials()
    # Exactly the four asked for, numbered without a gap: no trial created twice.
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # study.ask()
def test_sqlite_lock_past_the_bound_is_one_line_and_writes_no_trial(tmp_path: Path) -> None:
    url, path, study = sqlite_study(tmp_path, "stuck", heartbeat_interval=1, retry_s=1.0)
    storage = study._storage._backend  # type: ignore[attr-defined]

    with locked(path):
        with pytest.raises(StorageError) as before_trial:
            study.optimize(objective, n_trials=1)
        # The trial's creation itself (not only the stale-trial check before it).
        with pytest.raises(StorageError) as creating:
            study.ask()

    print(f"\ncounts: sqlite locked past a 1 s bound: {counts(storage)}")
    for error in (before_trial.value, creating.value):
        message = str(error)
        assert "\n" not in message
        assert f"the Optuna storage sqlite:///{path} failed" in message
        assert "database is locked" in message
    assert storage.stats.gave_up == 2
    # Nothing half-written: the two earlier trials and no other.
    assert states(url, "stuck") == [TrialState.COMPLETE] * 2

    study.optimize(objective, n_trials=1)  # the lock is gone: the same storage goes on
    assert states(url, "stuck") == [TrialState.COMPLETE] * 3


def test_sqlite_lock_at_a_trials_end_fails_it_and_runs_it_again(tmp_path: Path) -> None:
    """The trial's end cannot be written: the StorageError comes through (not the
    AssertionError Optuna's trial runner would raise), the trial stays RUNNING without
    heartbeat, and the next run marks it FAIL and runs its parameters again."""
    url, path, study = sqlite_study(tmp_path, "ending", heartbeat_interval=1, retry_s=1.0)
    storage = study._storage._backend  # type: ignore[attr-defined]
    holder: list[Locker] = []

    def lock_then_return(trial: optuna.Trial) -> float:
        value = trial.suggest_float("x", 0.0, 1.0)
        beats = storage.stats.heartbeats
        wait_until(lambda: storage.stats.heartbeats > beats, "the trial's first heartbeat")
        holder.append(Locker(path))
        return value

    with pytest.raises(StorageError) as ending:
        study.optimize(lock_then_return, n_trials=1)
    holder[0].release()
    assert "database is locked" in str(ending.value)
    lost = optuna.load_study(study_name="ending", storage=url).get_trials()[2]
    assert lost.state == TrialState.RUNNING

    time.sleep(3.5)  # past the grace period (2 x 1 s); SQLite's clock ticks in seconds
    study.optimize(objective, n_trials=1)
    trials = optuna.load_study(study_name="ending", storage=url).get_trials()
    print(f"\ncounts: sqlite locked at a trial's end: {counts(storage)}")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert trials[3].system_attrs["failed_trial"] == 2
    assert trials[3].params == lost.params


def test_heartbeat_outage_skips_beats_and_the_trial_completes(tmp_path: Path) -> None:
    url, path, study = sqlite_study(tmp_path, "beats", heartbeat_interval=1, retry_s=60)
    storage = study._storage._backend  # type: ignore[attr-defined]
    thread_errors: list[threading.ExceptHookArgs] = []
    previous_hook = threading.excepthook
    threading.excepthook = thread_errors.append

    def outage_during_trial(trial: optuna.Trial) -> float:
        value = trial.suggest_float("x", 0.0, 1.0)
        beats = storage.stats.heartbeats
        wait_until(lambda: storage.stats.heartbeats > beats, "the trial's first heartbeat")
        with locked(path, release_when=lambda: storage.stats.heartbeats_skipped >= 1):
            pass
        after = storage.stats.heartbeats
        wait_until(lambda: storage.stats.heartbeats > after, "a heartbeat after the outage")
        return value

    try:
        study.optimize(outage_during_trial, n_trials=1)
    finally:
        threading.excepthook = previous_hook
    print(f"\ncounts: heartbeat outage: {counts(storage)}")
    assert thread_errors == []
    assert storage.stats.heartbeats_skipped >= 1
    assert states(url, "beats") == [TrialState.COMPLETE] * 3


def test_a_fault_retrying_cannot_cure_is_one_line_at_once(tmp_path: Path) -> None:
    """A permanent database error (here a table gone) is not retried: one line naming the
    storage at once, instead of Optuna's internal error."""
    _, path, study = sqlite_study(tmp_path, "broken", heartbeat_interval=1, retry_s=60)
    storage = study._storage._backend  # type: ignore[attr-defined]
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE trial_params")
    with pytest.raises(StorageError) as raised:
        study.optimize(objective, n_trials=1)
    print(f"\ncounts: sqlite table dropped: {counts(storage)}")
    assert str(raised.value).startswith(f"the Optuna storage sqlite:///{path} failed (")
    assert str(raised.value).endswith("no such table: trial_params")
    assert storage.stats.retries == 0


# ---------------------------------------------------------------------------- PostgreSQL


class TcpProxy:
    """Forwards a free loopback port to ``target``. `stop` closes the listener and cuts
    every open connection (a restart, as clients see it); `start` listens again on the
    same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.stops = 0

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            cut, self._sockets = self._sockets, []
        for sock in cut:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.stops += 1

    def close(self) -> None:
        self.stop()
        for thread in self._threads:
            thread.join(WAIT_S)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_url(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """(URL of this test's PostgreSQL database through a proxy, with a password, proxy)."""
    from sqlalchemy.engine import make_url

    real = make_url(postgres_url)
    assert real.host is not None and real.port is not None
    proxy = TcpProxy((real.host, real.port))
    proxy.start()
    url = real.set(password=PASSWORD, port=proxy.port).render_as_string(hide_password=False)
    try:
        yield url, proxy
    finally:
        proxy.close()


def restart_when(proxy: TcpProxy, condition: Callable[[], bool]) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        proxy.start()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_postgres_brief_outage_is_retried(proxied_url: tuple[str, TcpProxy]) -> None:
    url, proxy = proxied_url
    storage = open_storage(url, heartbeat_interval=1, retry_s=60)
    try:
        study = optuna.create_study(study_name="outage", storage=storage)
        study.optimize(objective, n_trials=2)

        # Down between trials: the next trial's creation waits for it.
        proxy.stop()
        restarted = restart_when(proxy, lambda: storage.stats.retries >= 2)
        study.optimize(objective, n_trials=2)
        restarted.join(WAIT_S)
        between = storage.stats.retries

        # Down inside a trial: its report and its end wait for it.
        def outage_inside(trial: optuna.Trial) -> float:
            value = trial.suggest_float("x", 0.0, 1.0)
            proxy.stop()
            thread = restart_when(proxy, lambda: storage.stats.retries >= between + 2)
            trial.report(value, 1)
            thread.join(WAIT_S)
            return value

        study.optimize(outage_inside, n_trials=1)
    finally:
        storage.engine.dispose()
    print(f"\ncounts: postgres down twice (proxy stops={proxy.stops}): {counts(storage)}")
    assert storage.stats.retries >= between + 2 >= 4
    assert storage.stats.gave_up == 0
    trials = optuna.load_study(study_name="outage", storage=url).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5
    assert trials[4].intermediate_values == {1: trials[4].value}


def test_postgres_outage_past_the_bound(proxied_url: tuple[str, TcpProxy]) -> None:
    """Past the bound: one line, password hidden, nothing half-written; a trial whose end
    was lost is failed and run again once the server is back."""
    url, proxy = proxied_url
    storage = open_storage(url, heartbeat_interval=1, retry_s=1.5)
    try:
        study = optuna.create_study(study_name="down", storage=storage)
        study.optimize(objective, n_trials=2)

        proxy.stop()
        with pytest.raises(StorageError) as before_trial:
            study.optimize(objective, n_trials=1)
        proxy.start()
        message = str(before_trial.value)
        assert "\n" not in message
        shown = url.replace(PASSWORD, "***")
        assert f"the Optuna storage {shown} failed" in message
        assert PASSWORD not in message
        assert states(url, "down") == [TrialState.COMPLETE] * 2

        def outage_at_end(trial: optuna.Trial) -> float:
            value = trial.suggest_float("x", 0.0, 1.0)
            beats = storage.stats.heartbeats
            wait_until(lambda: storage.stats.heartbeats > beats, "the trial's first heartbeat")
            proxy.stop()
            return value

        with pytest.raises(StorageError) as ending:
            study.optimize(outage_at_end, n_trials=1)
        proxy.start()
        assert PASSWORD not in str(ending.value)
        lost = optuna.load_study(study_name="down", storage=url).get_trials()[2]
        assert lost.state == TrialState.RUNNING

        time.sleep(2.5)  # past the grace period (2 x 1 s heartbeat)
        study.optimize(objective, n_trials=1)
    finally:
        storage.engine.dispose()
    print(f"\ncounts: postgres down past a 1.5 s bound: {counts(storage)}")
    trials = optuna.load_study(study_name="down", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert trials[3].params == lost.params
    assert storage.stats.gave_up >= 2


# ---------------------------------------------------------------------------- the CLI


def test_sweep_with_its_storage_locked_past_the_bound_exits_with_one_line(
    mlflow_server: ServerInfo, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    """A real `salsweep sweep launch` whose SQLite file another process locks mid-trial
    and holds: exit 1, one line naming the storage, no traceback; the trial's MLflow run
    and the parent run are closed; Optuna keeps what was written before the lock."""
    spec = tiny_spec("held", n_trials=1, baseline=False)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec_to_yaml(spec))
    home = tmp_path / "home"
    db = home / "optuna.db"
    env = {**os.environ, RETRY_ENV: "2", BUSY_TIMEOUT_ENV: str(BUSY_TIMEOUT_S)}
    args = ["sweep", "launch", str(spec_file), "--home", str(home)]
    out_file, err_file = tmp_path / "out.txt", tmp_path / "err.txt"
    with out_file.open("w") as stdout, err_file.open("w") as stderr:
        launch = salsweep_process.popen(
            *args,
            "--tracking-uri",
            mlflow_server.url,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        # Lock once trial 0 has reported its first epoch; hold until the sweep has ended.
        def reported() -> bool:
            assert launch.poll() is None, "the sweep ended before the lock"
            if not db.exists():
                return False
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                try:
                    rows = conn.execute("SELECT COUNT(*) FROM trial_intermediate_values")
                except sqlite3.OperationalError:  # tables not made yet
                    return False
                return bool(rows.fetchone()[0])

        wait_until(reported, "trial 0's first epoch", timeout=240)  # the CLI starts first
        with locked(db):
            launch.wait(timeout=240)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait(timeout=30)
    out, err = out_file.read_text(), err_file.read_text()
    assert launch.returncode == 1, err[-3000:]
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err[-3000:]
    assert errors[0].startswith(f"Error: the Optuna storage sqlite:///{db} failed for ")
    assert errors[0].endswith("database is locked; once it answers again, resume the sweep")

    trial = optuna.load_study(study_name="held", storage=f"sqlite:///{db}").get_trials()[0]
    # Its end could not be written: RUNNING until its heartbeat is stale (see above).
    assert trial.state == TrialState.RUNNING
    assert 1 in trial.intermediate_values
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("held")
    runs = {r.info.run_name: r.info.status for r in client.search_runs([experiment.experiment_id])}
    assert runs["sweep"] == "KILLED"
    assert runs["trial-0"] in ("FAILED", "FINISHED")  # locked in the trial, or at its end
    told = [line for line in err.splitlines() if "storage" in line]
    print(f"\ncounts: sweep with its storage locked: runs {runs}, trial 0 {trial.state.name}")
    print("\n".join(told))
