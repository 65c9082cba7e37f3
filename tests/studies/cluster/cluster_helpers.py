"""Helpers of the cluster tests: a hook that holds a job's training at its first step
while a file exists (so that a test signals a job in the middle of a trial, on every run,
whatever the machine's load), an observer that records the launcher's display, and waits
on the storage."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# sitecustomize of the jobs' Python (PYTHONPATH): only in a job (submitit's local task or
# a Slurm job), and only while SALSWEEP_TEST_HOLD names a file that exists.
HOLD_HOOK = """
import os
import time

_HOLD = os.environ.get("SALSWEEP_TEST_HOLD")
if _HOLD and (os.environ.get("SUBMITIT_LOCAL_JOB_ID") or os.environ.get("SLURM_JOB_ID")):
    import torch

    def _hold(module, _inputs, _output):
        if type(module).__name__ == "DepthNet" and module.training and os.path.exists(_HOLD):
            held = f"{_HOLD}.{os.getpid()}.held"
            open(held, "w").close()  # the test sees that the trial is training
            try:
                while os.path.exists(_HOLD):
                    time.sleep(0.05)
            finally:  # stopped by a signal too (not when killed)
                os.remove(held)
        return None

    torch.nn.modules.module.register_module_forward_hook(_hold)
"""


def hold_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Install the hook for the jobs this test submits; returns the hold file (created:
    every job's first training step waits until the test removes it, `held` counts the
    jobs waiting so)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOLD_HOOK)
    hold = tmp_path / "hold"
    hold.touch()
    path = os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("SALSWEEP_TEST_HOLD", str(hold))
    return hold


class Recorder:
    """A `SweepObserver` (and the launcher's ``log``) that records every call."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.calls: list[tuple[Any, ...]] = []
        self.lines: list[str] = []

    def for_worker(self, index: int) -> Recorder:
        worker = Recorder(f"w{index} ")
        worker.calls = self.calls
        worker.lines = self.lines
        return worker

    def log(self, line: str) -> None:
        self.lines.append(self.prefix + line)

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((self.prefix + name, *args))


def wait_until(check: Callable[[], Any], what: str, timeout: float = 240.0) -> Any:
    """``check()``'s first true value, polled; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def held(hold: Path) -> int:
    """How many jobs are held in a trial's training now (see `hold_jobs`)."""
    return len(list(hold.parent.glob(f"{hold.name}.*.held")))
