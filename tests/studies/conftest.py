"""Fixtures of the studies tests: one real sweep per session, shared by the end-to-end
and browser tests (a sweep costs tens of seconds); the CLI's stop handlers."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from studies import SweepTarget, run_sweep
from studies.run import signals
from studies.tracking.server import ServerInfo
from tests.studies.sweep_helpers import CONFIRM, Sweep, tiny_spec


@pytest.fixture(scope="session")
def sweep(mlflow_server: ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The session's sweep. It also counts the SQL statements its close sends to the
    Optuna storage: from the end of the confirmation's replicates to `run_sweep`'s
    return (an SQLAlchemy ``before_cursor_execute`` listener on every engine)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from studies.run import sweep as sweep_module

    home = tmp_path_factory.mktemp("sweep-home")
    target = SweepTarget(f"sqlite:///{home / 'optuna.db'}", mlflow_server.url, home)
    closing = [False]
    statements: list[str] = []
    confirm = sweep_module._confirm

    def confirmed(*args: Any, **kwargs: Any) -> bool:
        done = confirm(*args, **kwargs)
        closing[0] = True
        return done

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if closing[0]:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", on_statement)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sweep_module, "_confirm", confirmed)
            outcome = run_sweep(tiny_spec("e2e", confirm=CONFIRM), "e2e", target)
    finally:
        event.remove(Engine, "before_cursor_execute", on_statement)
    assert closing[0], "the session sweep ran no confirmation"
    return Sweep(
        "e2e",
        target,
        outcome.experiment_id,
        outcome.parent_run_id,
        outcome.ran,
        outcome.replicates,
        close_statements=tuple(statements),
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
