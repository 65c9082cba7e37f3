"""Write a command trial's inputs into its folder and say how to start it (`LaunchPlan`).

Files of a trial folder (``trial_dir``)::

    config.yaml     the copy of command.base_config with the trial's keys set ({config})
    params.json     every value, the seed and the trial number ({json}); always written
    metrics.jsonl   what the program reports ($SALSWEEP_METRICS_FILE; studies.command.reporter)
    STOP            created when salsweep asks the program to stop ($SALSWEEP_STOP_FILE)
    stdout.log      the program's standard output
    stderr.log      its standard error

A folder used before (a retried trial) is made ready again: an old stop file and old
metrics are removed, so that the new run neither stops at once nor reports stale values.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studies.command.inputs import (
    TrackingTarget,
    argument_words,
    config_copy,
    expand_argv,
    params_document,
    program_values,
    trial_env,
)
from sweeps.command import CommandSpec
from trainer.errors import UserError
from trainer.io import YamlFileError, read_yaml

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "PARAMS_FILE",
    "STDERR_FILE",
    "STDOUT_FILE",
    "STOP_FILE",
    "BaseConfigError",
    "LaunchPlan",
    "TrialInputs",
    "config_text",
    "prepare_trial",
]

CONFIG_FILE = "config.yaml"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.jsonl"
STOP_FILE = "STOP"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"


class BaseConfigError(UserError, ValueError):
    """The user's base config cannot be read (it changed since the spec was checked)."""


@dataclass(frozen=True)
class TrialInputs:
    """What the runner knows of one trial: its number, its values (searched and fixed, by
    their names in the spec's search), the training seed, its folder, the MLflow run the
    program may log to, and the worker's GPUs ("" = none, None = inherited)."""

    number: int
    values: Mapping[str, Any]
    seed: int
    trial_dir: Path
    tracking: TrackingTarget | None = None
    cuda_visible_devices: str | None = None


@dataclass(frozen=True)
class LaunchPlan:
    """How to start one command trial: the words, the environment, the folder it runs in,
    and the trial folder's files. ``env`` is the program's whole environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)  # may hold credentials (tracking URI)
    cwd: Path | None
    trial_dir: Path
    config_file: Path | None = None

    @property
    def metrics_file(self) -> Path:
        return self.trial_dir / METRICS_FILE

    @property
    def stop_file(self) -> Path:
        return self.trial_dir / STOP_FILE

    @property
    def stdout_file(self) -> Path:
        return self.trial_dir / STDOUT_FILE

    @property
    def stderr_file(self) -> Path:
        return self.trial_dir / STDERR_FILE

    @property
    def params_file(self) -> Path:
        return self.trial_dir / PARAMS_FILE


def _read_base(path: Path) -> dict[str, Any]:
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        raise BaseConfigError(f"{path}: {'; '.join(exc.problems)}") from None
    except OSError as exc:
        raise BaseConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BaseConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def _write_text(path: Path, text: str) -> None:
    """Write whole or not at all (a temporary file renamed over the target)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def config_text(command: CommandSpec, values: Mapping[str, Any], seed: int) -> str | None:
    """The YAML of a trial's copy of ``command.base_config`` (the file at {config}) with
    ``values`` and the training ``seed`` set at their dotted keys; None without a base
    config. Raises `BaseConfigError`, or `sweeps.dotted.DottedKeyError` (see
    `prepare_trial`)."""
    if command.base_config is None:
        return None
    config_values, _args = program_values(command.keys, values, command.seed_key, seed)
    copy = config_copy(_read_base(command.base_config), config_values)
    return yaml.safe_dump(copy, sort_keys=False, allow_unicode=True)


def prepare_trial(
    command: CommandSpec,
    inputs: TrialInputs,
    *,
    base_env: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """Write the trial's config copy and JSON file into ``inputs.trial_dir`` (created) and
    return how to start it. ``base_env``: the environment to start from (default
    ``os.environ``). Raises `BaseConfigError`, or `sweeps.dotted.DottedKeyError` for a
    key through a value of the base config that is no mapping."""
    trial_dir = inputs.trial_dir.absolute()  # the program runs in another folder
    trial_dir.mkdir(parents=True, exist_ok=True)
    for stale in (STOP_FILE, METRICS_FILE):
        with contextlib.suppress(FileNotFoundError):
            (trial_dir / stale).unlink()
    _config_values, arg_values = program_values(
        command.keys, inputs.values, command.seed_key, inputs.seed
    )
    config_file: Path | None = None
    text = config_text(command, inputs.values, inputs.seed)
    if text is not None:
        config_file = trial_dir / CONFIG_FILE
        _write_text(config_file, text)
    params = params_document(inputs.values, inputs.seed, inputs.number)
    _write_text(trial_dir / PARAMS_FILE, json.dumps(params, indent=2) + "\n")
    argv = expand_argv(
        command.argv,
        config=config_file,
        args=argument_words(arg_values),
        json_file=trial_dir / PARAMS_FILE,
        trial_dir=trial_dir,
    )
    env = trial_env(
        os.environ if base_env is None else base_env,
        trial_dir=trial_dir,
        trial_number=inputs.number,
        metrics_file=trial_dir / METRICS_FILE,
        stop_file=trial_dir / STOP_FILE,
        tracking=inputs.tracking,
        cuda_visible_devices=inputs.cuda_visible_devices,
    )
    return LaunchPlan(
        argv=tuple(argv), env=env, cwd=command.workdir, trial_dir=trial_dir, config_file=config_file
    )
