"""No space left where a run's outputs go: one line naming the folder, nothing truncated
left behind, the study and MLflow intact, and the sweep resumes once there is room.

A disk-full trial stops the sweep (exit 1) instead of failing and going on: every later
trial writes to the same folder and would fail the same way, each after a training.

Real parts: a tmpfs mounted on the study's output folder (needs root: `mount`, then
`mount -o remount` to make room; without it the test is skipped, or fails under CI=true),
the session's real MLflow server, and the sweep's commands run in-process (click's
CliRunner). The trainer's own test needs no mount: a file-size limit (RLIMIT_FSIZE, SIGXFSZ
ignored) on a `salsweep train` child process makes writes past 4 KiB fail with EFBIG, the
error a process meets when its file-size limit (not the disk) is spent.
"""

from __future__ import annotations

import errno
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner, Result
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from cli import cli
from studies import load_study
from studies.tracking.server import ServerInfo
from sweeps import spec_to_yaml
from tests.process_helpers import SalsweepProcess
from tests.studies.sweep_helpers import tiny_spec
from trainer.io import OutputSpaceError, write_output

NAME = "diskfull"
BUDGET = 3
SMALL, BIG = 4, 64  # base channels: best.pt of 13 KB and of 1.4 MB


RequireSystem = Callable[[str, bool, str], None]  # the fixture of tests/conftest.py


@contextmanager
def small_filesystem(path: Path, size: str, require_system: RequireSystem) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` (unmounted on leaving)."""
    path.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    done = (
        subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if mount
        else None
    )
    reason = "no mount command" if done is None else done.stderr.strip() or "mount failed"
    require_system("a tmpfs mount (root)", done is not None and done.returncode == 0, reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def make_room(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, timeout=30)


def invoke(*args: str) -> Result:
    """``salsweep ARGS`` in this process; ``.stdout`` and ``.stderr`` apart."""
    result = CliRunner().invoke(cli, list(args))
    # Only SystemExit (the exit code) may leave the command: anything else would have been
    # a traceback in a real process.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def run_states(client: MlflowClient, experiment_id: str) -> dict[str, str]:
    return {r.info.run_name: r.info.status for r in client.search_runs([experiment_id])}


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_a_full_folder_keeps_the_previous_file(
    tmp_path: Path, require_system: RequireSystem
) -> None:
    folder = tmp_path / "out"
    with small_filesystem(folder, "8k", require_system):
        write_output(folder / "best.pt", b"old" * 1000)  # one of the two pages
        with pytest.raises(OutputSpaceError) as raised:
            write_output(folder / "best.pt", b"new" * 2000)  # needs both
        assert (folder / "best.pt").read_bytes() == b"old" * 1000
        assert sorted(p.name for p in folder.iterdir()) == ["best.pt"]  # no temporary file
    assert raised.value.errno == errno.ENOSPC
    assert str(raised.value) == (
        f"no space left in {folder} while writing best.pt: free space there, then run again"
    )


def _file_size_limit() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_train_past_a_file_size_limit_is_one_line(
    tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(tiny_spec("x").base.model_dump(mode="json")))
    out = tmp_path / "out"
    # A child process: the limit applies to a whole process.
    done = salsweep_process.run(
        "train", str(config), "--output-dir", str(out), timeout=300, preexec_fn=_file_size_limit
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert error_lines(done.stderr) == [
        f"Error: no space left in {out} while writing best.pt: free space there, then run again"
    ]
    assert list(out.iterdir()) == []  # the cut-off checkpoint was removed


def test_disk_full_stops_the_sweep_and_resume_finishes_it(
    mlflow_server: ServerInfo, tmp_path: Path, require_system: RequireSystem
) -> None:
    # TPE with seed 0 draws 4 base channels for trial 0 and 64 for trial 1: trial 0's
    # outputs (13 KB checkpoint, 2 previews of 46 KB) fit in 1 MiB, trial 1's 1.4 MB
    # checkpoint does not.
    search = {
        "loss.lambda_sg": {"low": 0.1, "high": 1.0, "log": True},
        "model.base_channels": {"choices": [SMALL, BIG]},
    }
    spec = tiny_spec(NAME, n_trials=BUDGET, search=search, baseline=False)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec_to_yaml(spec))
    home = tmp_path / "home"
    outputs = home / "studies" / NAME
    storage = f"sqlite:///{home / 'optuna.db'}"
    common = ("--home", str(home), "--tracking-uri", mlflow_server.url)

    with small_filesystem(outputs, "1m", require_system):
        launched = invoke("sweep", "launch", str(spec_file), *common)
        assert launched.exit_code == 1, launched.stderr[-3000:]
        assert "Traceback" not in launched.stdout + launched.stderr
        lines = error_lines(launched.stderr)
        assert len(lines) == 1, launched.stderr[-3000:]
        assert lines[0].startswith("Error: no space left in ")
        assert f"studies/{NAME}/trial-0001 while writing best.pt" in lines[0]

        study = load_study(NAME, storage)
        trials = study.get_trials()
        assert [t.params["model.base_channels"] for t in trials] == [SMALL, BIG]
        assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
        # Trial 0's checkpoint is whole; trial 1 left no checkpoint, cut off or not.
        assert torch.load(outputs / "trial-0000" / "best.pt", weights_only=True)
        assert not list((outputs / "trial-0001").glob("*.pt*"))
        assert not list(outputs.rglob("*.tmp"))

        client = MlflowClient(mlflow_server.url)
        experiment = client.get_experiment_by_name(NAME)
        runs = {
            r.info.run_name: r.info.status for r in client.search_runs([experiment.experiment_id])
        }
        assert runs == {"sweep": "KILLED", "trial-0": "FINISHED", "trial-1": "FAILED"}

        make_room(outputs, "64m")
        resumed = invoke("sweep", "resume", NAME, *common)
        assert resumed.exit_code == 0, resumed.stderr[-3000:]

    states = [t.state for t in load_study(NAME, storage).get_trials()]
    shown = [s.name for s in states]
    print(f"\ncounts: disk full: after launch [COMPLETE, FAIL], after resume {shown}")
    print(lines[0])
    assert states.count(TrialState.COMPLETE) == BUDGET
    assert states.count(TrialState.FAIL) == 1
    runs = run_states(client, experiment.experiment_id)
    assert runs["sweep"] == "FINISHED"
    assert sorted(runs.values()).count("FINISHED") == 1 + BUDGET
    assert "RUNNING" not in runs.values()
