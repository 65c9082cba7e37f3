"""``--executor slurm`` on the command line (cli.py, in-process): what is refused before
anything is created, started or submitted. No Slurm needed: the refusals come first."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import cli
from tests.studies.sweep_helpers import tiny_spec


def _launch(tmp_path: Path, *options: str) -> tuple[int, str, Path]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec("cluster").model_dump(mode="json")))
    home = tmp_path / "home"
    args = ["sweep", "launch", str(spec), "--executor", "slurm", "--home", str(home), *options]
    done = CliRunner().invoke(cli, args)
    return done.exit_code, done.output, home


def test_sqlite_is_refused_before_anything_starts(tmp_path: Path) -> None:
    code, output, home = _launch(tmp_path, "--workers", "2")
    assert code == 1, output
    assert "SQLite loses writes" in " ".join(output.split())
    assert "--allow-sqlite" in output
    assert not home.exists()  # no storage, no MLflow server, no job folder


def test_slurm_options_are_checked_with_their_keys(tmp_path: Path) -> None:
    code, output, _ = _launch(tmp_path, "--allow-sqlite", "--sbatch", "time=5")
    assert code == 1, output
    assert "slurm.sbatch" in output and "'time' is set by salsweep" in output
    code, output, _ = _launch(tmp_path, "--allow-sqlite", "--sbatch", "account")
    assert code == 2 and "not NAME=VALUE" in output
    code, output, _ = _launch(tmp_path, "--workers", "auto")
    assert code == 2 and "number of worker jobs" in output


def test_without_slurm_s_commands_the_launch_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    code, output, _ = _launch(tmp_path, "--allow-sqlite")
    assert code == 1, output
    assert "needs Slurm's commands" in output and "sbatch" in output
