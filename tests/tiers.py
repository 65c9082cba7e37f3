"""The test tiers: which fixtures put a test in which tier (``tests.tiers.FIXTURE_MARKERS``).

tests/conftest.py marks every collected test that uses one of these fixtures, directly or
through other fixtures (pytest's fixture closure, ``item.fixturenames``: a test on the
session's ``sweep`` uses ``mlflow_server``), with the fixture's marker. The markers are
declared in pyproject.toml; ``make test-fast`` deselects every one of them
(``FAST_MARKERS`` in the Makefile), ``make test`` runs everything. tests/test_tiers.py
keeps the three in step.
"""

from __future__ import annotations

__all__ = ["FIXTURE_MARKERS"]

FIXTURE_MARKERS: dict[str, str] = {
    # The session's MLflow server, and everything on it (the session's sweep).
    "mlflow_server": "server",
    # The migrated MLflow database: tests that start MLflow servers of their own.
    "mlflow_db_template": "server",
    "postgres_url": "postgres",
    "chromium": "browser",
    "docker_compose": "compose",
    # A real Slurm (.ci/slurm.sh): its tests submit jobs and wait for them.
    "slurm_cluster": "slurm",
    # `salsweep` as a child process (7-9 s of imports each).
    "salsweep_process": "cli_process",
    # A fresh Python interpreter that imports the project (seconds of imports each).
    "python_child": "child_process",
}
