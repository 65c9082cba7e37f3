"""Command specs at the command line: `sweep validate` refuses a bad one with its key
paths, and `sweep launch` refuses it before anything is created (no study, no folder, no
call to the tracking server)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[2]


def good_spec(project: Path) -> dict[str, Any]:
    return {
        "name": "mine",
        "command": {
            "argv": [sys.executable, "train.py", "{config}", "{args}"],
            "workdir": str(project),
            "base_config": "train.yaml",
            "keys": {"lambda_sg": "model.loss.lambda_sg", "lr": "--lr"},
            "seed_key": "training.seed",
        },
        "search": {
            "lambda_sg": {"low": 0.05, "high": 2.0, "log": True},
            "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        },
        "objective": {"metric": "val/loss"},
        "pruner": {"type": "none"},
        "baseline": False,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.yaml").write_text("model: {loss: {lambda_sg: 0.5}}\ntraining: {seed: 1}\n")
    (folder / "train.py").write_text("print('hello')\n")
    return folder


def write(project: Path, data: dict[str, Any]) -> Path:
    path = project / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_validate_accepts_a_good_command_spec(project: Path) -> None:
    code, output = invoke("sweep", "validate", str(write(project, good_spec(project))))
    assert code == 0, output
    # rich wraps a long path where the terminal width falls: compare without whitespace
    flat = "".join(output.split())
    assert f"base_config:{project / 'train.yaml'}" in flat  # resolved against workdir
    assert flat.endswith("sweep.yaml:valid")


def _missing_placeholder(c: dict[str, Any]) -> None:
    c["argv"] = [sys.executable, "train.py", "{args}"]  # the config copy reaches nothing


def _unknown_program(c: dict[str, Any]) -> None:
    c["argv"] = ["no-such-trainer-xyz", "{config}", "{args}"]


def _unmapped_seed(c: dict[str, Any]) -> None:
    del c["seed_key"]


def _typo_placeholder(c: dict[str, Any]) -> None:
    c["argv"] = [sys.executable, "train.py", "{cnfig}", "{args}"]


BAD = [
    (
        _missing_placeholder,
        ["command.base_config: the copy reaches the program by no way: put {config}"],
    ),
    (_unknown_program, ["command.argv[0]: 'no-such-trainer-xyz' is not found on PATH"]),
    (_unmapped_seed, ["command.seed_key: required: the training seed must reach your program"]),
    (
        _typo_placeholder,
        [
            "command.argv[2]: unknown placeholder {cnfig} (did you mean {config}?",
            "command.base_config: the copy reaches the program by no way",
        ],
    ),
]


@pytest.mark.parametrize(("change", "expected"), BAD, ids=lambda x: getattr(x, "__name__", ""))
def test_validate_refuses_a_bad_command_spec_with_its_key_paths(
    project: Path, change: Any, expected: list[str]
) -> None:
    data = good_spec(project)
    change(data["command"])
    code, output = invoke("sweep", "validate", str(write(project, data)))
    assert code == 1, output
    assert "Traceback" not in output
    flat = " ".join(output.split())  # rich may wrap long lines
    for line in expected:
        assert " ".join(line.split()) in flat, output


@pytest.mark.parametrize(("change", "expected"), BAD[:3], ids=lambda x: getattr(x, "__name__", ""))
def test_launch_creates_nothing_for_a_bad_command_spec(
    project: Path, tmp_path: Path, change: Any, expected: list[str]
) -> None:
    data = good_spec(project)
    change(data["command"])
    home = tmp_path / "home"
    code, output = invoke(
        "sweep",
        "launch",
        str(write(project, data)),
        "--home",
        str(home),
        # No server answers here: refused before the tracking server is asked anything.
        "--tracking-uri",
        "http://127.0.0.1:9",
    )
    assert code == 1, output
    assert "no MLflow server answers" not in output
    assert " ".join(expected[0].split()) in " ".join(output.split()), output
    assert not home.exists()  # no data dir, no Optuna database, no trial folder
    assert sorted(p.name for p in project.iterdir()) == ["sweep.yaml", "train.py", "train.yaml"]


def test_the_shipped_example_spec_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/sweep-example.yaml, from the repository root with the venv's `python`."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    code, output = invoke("sweep", "validate", "examples/sweep-example.yaml")
    assert code == 0, output
    assert f"workdir: {ROOT / 'examples'}" in output
