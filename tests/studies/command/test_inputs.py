"""A command trial's inputs: config copy, arguments, JSON file, argv and environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from studies.command.inputs import (
    TrackingTarget,
    argument_words,
    config_copy,
    expand_argv,
    format_argument,
    params_document,
    program_values,
    trial_env,
)
from studies.command.prepare import BaseConfigError, TrialInputs, prepare_trial
from sweeps import parse_spec
from sweeps.command import CommandSpec
from sweeps.dotted import DottedKeyError

BASE_CONFIG = """\
# the user's config: comments are not kept in the copy
model:
  loss: {lambda_sg: 0.5, num_scales: 4}
  layers: [1, 2, 3]
training: {seed: 1, epochs: 3}
"""


def test_program_values_split_config_keys_from_arguments() -> None:
    keys = {"lambda_sg": "model.loss.lambda_sg", "lr": "--lr", "unused": "--unused"}
    values = {"lambda_sg": 0.25, "lr": 0.001, "extra": 7}
    config, args = program_values(keys, values, "training.seed", 3)
    assert config == {"model.loss.lambda_sg": 0.25, "training.seed": 3}
    assert args == {"--lr": 0.001}  # `extra` has no key: it travels in the JSON file only
    config, args = program_values(keys, values, "--seed", 3)
    assert args == {"--lr": 0.001, "--seed": 3} and "training.seed" not in config


def test_config_copy_sets_dotted_keys() -> None:
    base = yaml.safe_load(BASE_CONFIG)
    copy = config_copy(base, {"model.loss.lambda_sg": 0.25, "optim.lr": 0.1})
    assert copy["model"]["loss"] == {"lambda_sg": 0.25, "num_scales": 4}
    assert copy["model"]["layers"] == [1, 2, 3] and copy["training"] == base["training"]
    assert copy["optim"] == {"lr": 0.1}
    assert base["model"]["loss"]["lambda_sg"] == 0.5
    with pytest.raises(DottedKeyError, match=r"model\.layers is a list"):
        config_copy(base, {"model.layers.n": 1})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.001, "0.001"),
        (1e-05, "1e-05"),
        (3, "3"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ("adamw", "adamw"),
        ("two words", "two words"),
        (float("inf"), "inf"),
    ],
)
def test_format_argument(value: Any, text: str) -> None:
    assert format_argument(value) == text


def test_argument_words_and_argv() -> None:
    words = argument_words({"--lr": 0.01, "--use-inv": True})
    assert words == ["--lr=0.01", "--use-inv=true"]
    argv = expand_argv(
        ["python", "train.py", "--config={config}", "{args}", "--out", "{trial_dir}/o", "{json}"],
        config=Path("/t/config.yaml"),
        args=words,
        json_file=Path("/t/params.json"),
        trial_dir=Path("/t"),
    )
    assert argv == [
        "python",
        "train.py",
        "--config=/t/config.yaml",
        "--lr=0.01",
        "--use-inv=true",
        "--out",
        "/t/o",
        "/t/params.json",
    ]
    # {args} with no arguments is no word at all (not an empty one).
    empty = expand_argv(
        ["p", "{args}", "{{json}}"], config=None, args=[], json_file=Path("j"), trial_dir=Path("t")
    )
    assert empty == ["p", "{json}"]


def test_params_document() -> None:
    doc = params_document({"lambda_sg": 0.5, "lr": 0.01}, seed=4, trial_number=7)
    assert doc == {"trial_number": 7, "seed": 4, "params": {"lambda_sg": 0.5, "lr": 0.01}}


def test_trial_env_sets_the_trial_and_drops_inherited_run_variables(tmp_path: Path) -> None:
    base = {
        "PATH": "/bin",
        "MLFLOW_RUN_ID": "stale",
        "MLFLOW_EXPERIMENT_NAME": "other",
        "SALSWEEP_STOP_FILE": "/old/STOP",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "MLFLOW_TRACKING_URI": "http://inherited",
    }
    env = trial_env(
        base,
        trial_dir=tmp_path,
        trial_number=3,
        metrics_file=tmp_path / "metrics.jsonl",
        stop_file=tmp_path / "STOP",
        tracking=TrackingTarget("http://127.0.0.1:5000", "12", "abc"),
        cuda_visible_devices="1",
    )
    assert env == {
        "PATH": "/bin",
        "SALSWEEP_TRIAL_DIR": str(tmp_path),
        "SALSWEEP_TRIAL_NUMBER": "3",
        "SALSWEEP_METRICS_FILE": str(tmp_path / "metrics.jsonl"),
        "SALSWEEP_STOP_FILE": str(tmp_path / "STOP"),
        "PYTHONUNBUFFERED": "1",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_EXPERIMENT_ID": "12",
        "MLFLOW_RUN_ID": "abc",
        "CUDA_VISIBLE_DEVICES": "1",
    }
    assert base["MLFLOW_RUN_ID"] == "stale"  # not changed
    bare = trial_env(
        base,
        trial_dir=tmp_path,
        trial_number=0,
        metrics_file=tmp_path / "m",
        stop_file=tmp_path / "s",
    )
    assert "MLFLOW_RUN_ID" not in bare and "MLFLOW_EXPERIMENT_NAME" not in bare
    assert bare["CUDA_VISIBLE_DEVICES"] == "0,1"  # None: the inherited GPUs
    assert bare["MLFLOW_TRACKING_URI"] == "http://inherited"


@pytest.fixture
def command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CommandSpec:
    (tmp_path / "train.yaml").write_text(BASE_CONFIG)
    (tmp_path / "train.py").write_text("")
    monkeypatch.chdir(tmp_path)
    spec = parse_spec(
        {
            "name": "mine",
            "command": {
                "argv": "python train.py --config {config} {args} --params {json}",
                "base_config": "train.yaml",
                "keys": {"lambda_sg": "model.loss.lambda_sg", "lr": "--lr"},
                "seed_key": "training.seed",
            },
            "search": {"lambda_sg": {"low": 0.1, "high": 1.0}, "lr": [0.01, 0.1], "tag": "x"},
            "objective": {"metric": "val/loss"},
        },
        "t",
    )
    assert spec.command is not None
    return spec.command


def test_prepare_trial_writes_the_inputs(command: CommandSpec, tmp_path: Path) -> None:
    trial_dir = tmp_path / "trials" / "trial-3"
    inputs = TrialInputs(
        number=3,
        values={"lambda_sg": 0.25, "lr": 0.1, "tag": "x"},
        seed=5,
        trial_dir=trial_dir,
        cuda_visible_devices="",
    )
    plan = prepare_trial(command, inputs, base_env={"PATH": "/usr/bin"})
    assert plan.argv == (
        "python",
        "train.py",
        "--config",
        str(trial_dir / "config.yaml"),
        "--lr=0.1",
        "--params",
        str(trial_dir / "params.json"),
    )
    assert plan.cwd == tmp_path and plan.config_file == trial_dir / "config.yaml"
    copy = yaml.safe_load((trial_dir / "config.yaml").read_text())
    assert copy == {
        "model": {"loss": {"lambda_sg": 0.25, "num_scales": 4}, "layers": [1, 2, 3]},
        "training": {"seed": 5, "epochs": 3},
    }
    assert json.loads((trial_dir / "params.json").read_text()) == {
        "trial_number": 3,
        "seed": 5,
        "params": {"lambda_sg": 0.25, "lr": 0.1, "tag": "x"},
    }
    assert plan.env["CUDA_VISIBLE_DEVICES"] == "" and plan.env["SALSWEEP_TRIAL_NUMBER"] == "3"
    assert plan.env["SALSWEEP_METRICS_FILE"] == str(plan.metrics_file)
    assert "env" not in repr(plan)  # the environment may hold credentials


def test_prepare_trial_clears_a_used_folder(command: CommandSpec, tmp_path: Path) -> None:
    trial_dir = tmp_path / "t"
    trial_dir.mkdir()
    (trial_dir / "STOP").touch()
    (trial_dir / "metrics.jsonl").write_text('{"step": 1, "metrics": {"val/loss": 9}}\n')
    inputs = TrialInputs(0, {"lambda_sg": 0.5, "lr": 0.1, "tag": "x"}, 0, trial_dir)
    plan = prepare_trial(command, inputs)
    assert not plan.stop_file.exists() and not plan.metrics_file.exists()


def test_prepare_trial_reports_a_changed_base_config(command: CommandSpec, tmp_path: Path) -> None:
    assert command.base_config is not None
    inputs = TrialInputs(0, {"lambda_sg": 0.5, "lr": 0.1, "tag": "x"}, 0, tmp_path / "t")
    command.base_config.write_text("model: {loss: 3}\n")
    with pytest.raises(DottedKeyError, match=r"model\.loss is a number"):
        prepare_trial(command, inputs)
    command.base_config.write_text("- a list\n")
    with pytest.raises(BaseConfigError, match="expected a mapping at the top, got list"):
        prepare_trial(command, inputs)
    command.base_config.unlink()
    with pytest.raises(BaseConfigError, match=r"train\.yaml: file not found"):
        prepare_trial(command, inputs)
