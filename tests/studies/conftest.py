"""Fixtures of the studies tests: one real sweep per session, shared by the end-to-end
and browser tests (a sweep costs tens of seconds); the CLI's stop handlers."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from studies import SweepTarget, run_sweep
from studies.run import signals
from studies.tracking.server import ServerInfo
from tests.studies.sweep_helpers import CONFIRM, Sweep, tiny_spec


@pytest.fixture(scope="session")
def sweep(mlflow_server: ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    home = tmp_path_factory.mktemp("sweep-home")
    target = SweepTarget(f"sqlite:///{home / 'optuna.db'}", mlflow_server.url, home)
    outcome = run_sweep(tiny_spec("e2e", confirm=CONFIRM), "e2e", target)
    return Sweep(
        "e2e", target, outcome.experiment_id, outcome.parent_run_id, outcome.ran, outcome.replicates
    )


@pytest.fixture
def stop_handlers() -> Iterator[None]:
    """The CLI's stop handlers (studies.run.signals) installed in this process for one test,
    the earlier handlers restored after."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    assert signals.install_stop_handlers()
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        signals._HANDLER = None
