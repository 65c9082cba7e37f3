"""Opening the Optuna storage (studies.store.storage.open_storage) on a real SQLite file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from studies.store.storage import StorageError, open_storage


def test_openers_racing_on_an_empty_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """Processes (here threads, as a launcher and its display do) that open one new SQLite
    file together race to create Optuna's tables; the losers' CREATE fails with "table ...
    already exists" (an OperationalError; on PostgreSQL an IntegrityError) and must try
    again, not stop the sweep. Before the fix every one of these rounds failed; seen in a
    whole-suite run as a launch exiting 1 before its first trial."""
    rounds, openers = 4, 4
    errors: list[str] = []
    for r in range(rounds):
        url = f"sqlite:///{tmp_path / f'round-{r}' / 'optuna.db'}"
        barrier = threading.Barrier(openers)

        def open_it(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                open_storage(url).engine.dispose()
            except StorageError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=open_it) for _ in range(openers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []


def test_an_sqlite_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    """Any other OperationalError is no creation race: it is reported at once."""
    path = tmp_path / "optuna.db"
    path.write_bytes(b"not a database, " * 100)
    with pytest.raises(StorageError, match=r"^cannot open the Optuna storage sqlite:///.*: "):
        open_storage(f"sqlite:///{path}")
