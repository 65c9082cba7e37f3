"""Child processes of the tests: the ``salsweep`` command line (``SalsweepProcess``) and
Python children that import the project (``PythonChild``).

Tests get it through the ``salsweep_process`` fixture (tests/conftest.py), never by building
the command themselves: the fixture is what puts them in the ``cli_process`` tier, which
``make test-fast`` leaves out (each child spends 7-9 s importing torch, Optuna and MLflow).
Use it where the process boundary is what the test is about (signals, process groups,
workers, a real process's limits or its whole output); elsewhere run the command in-process
with click's ``CliRunner`` on ``cli.cli``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "PythonChild", "SalsweepProcess"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class SalsweepProcess:
    """Runs ``python cli.py ARGS...`` (what the ``salsweep`` console script runs) of this
    checkout, with this interpreter."""

    script: Path = ROOT / "cli.py"

    def argv(self, *args: str) -> list[str]:
        """The command line of ``salsweep ARGS...``."""
        return [sys.executable, str(self.script), *args]

    def run(self, *args: str, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``salsweep ARGS...`` to its end: text output captured (stdout and stderr
        apart), at most ``timeout`` seconds; other keywords go to ``subprocess.run``."""
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, **kwargs
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``salsweep ARGS...`` in the background; keywords go to ``subprocess.Popen``."""
        return subprocess.Popen(self.argv(*args), **kwargs)


@dataclass(frozen=True)
class PythonChild:
    """Runs ``python ARGS...`` with this interpreter, in this checkout by default.

    Tests get it through the ``python_child`` fixture (tests/conftest.py), which puts them
    in the ``child_process`` tier that ``make test-fast`` leaves out: a fresh interpreter
    that imports torch, Optuna or MLflow spends seconds on it (what such a test is about is
    usually the fresh process itself: what an import pulls in, hidden GPUs, a lock held by
    another process). Children that import nothing heavy (a user's training command in
    tests/studies/command) are started directly."""

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def run(
        self, *args: str, timeout: float = 120.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGS...`` to its end: text output captured, in the checkout unless
        ``cwd`` is given, at most ``timeout`` seconds; other keywords go to
        ``subprocess.run``."""
        kwargs.setdefault("cwd", ROOT)
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, **kwargs
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``python ARGS...`` in the background, in the checkout unless ``cwd`` is
        given; keywords go to ``subprocess.Popen``."""
        kwargs.setdefault("cwd", ROOT)
        return subprocess.Popen(self.argv(*args), **kwargs)
