"""A command trial's inputs as values (pure functions; studies.command.prepare writes them).

- the config copy: the user's base config with the trial's dotted keys set (`config_copy`)
- the arguments: ``--key=value`` words for {args} (`argument_words`)
- the JSON document: every value, the seed and the trial number (`params_document`)
- argv with its placeholders filled (`expand_argv`)
- the environment (`trial_env`)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.command.reporter import METRICS_ENV, STOP_ENV
from sweeps.command import expand_word, is_arg_key
from sweeps.dotted import with_dotted

__all__ = [
    "ENV_EXPERIMENT_ID",
    "ENV_RUN_ID",
    "ENV_TRACKING_URI",
    "ENV_TRIAL_DIR",
    "ENV_TRIAL_NUMBER",
    "TrackingTarget",
    "argument_words",
    "config_copy",
    "expand_argv",
    "format_argument",
    "params_document",
    "program_values",
    "trial_env",
]

ENV_TRIAL_DIR = "SALSWEEP_TRIAL_DIR"
ENV_TRIAL_NUMBER = "SALSWEEP_TRIAL_NUMBER"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_RUN_ID = "MLFLOW_RUN_ID"
ENV_EXPERIMENT_ID = "MLFLOW_EXPERIMENT_ID"
# Inherited values that would point the program at another trial or run: always replaced
# or removed (MLFLOW_EXPERIMENT_NAME would contradict MLFLOW_EXPERIMENT_ID in mlflow).
_TRIAL_VARS = (
    ENV_TRIAL_DIR,
    ENV_TRIAL_NUMBER,
    METRICS_ENV,
    STOP_ENV,
    ENV_RUN_ID,
    ENV_EXPERIMENT_ID,
    "MLFLOW_EXPERIMENT_NAME",
)


@dataclass(frozen=True)
class TrackingTarget:
    """The trial's MLflow run, for the program to resume (``mlflow.start_run()`` reads
    ``MLFLOW_RUN_ID``). ``tracking_uri`` may hold credentials: never print it."""

    tracking_uri: str
    experiment_id: str
    run_id: str


def program_values(
    keys: Mapping[str, str],
    values: Mapping[str, Any],
    seed_key: str | None,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config keys -> value, --arguments -> value)``: each searched value (and the seed)
    under its program key, split by where it goes. Names without a key are left out (they
    reach the program through {json})."""
    mapped = {key: values[name] for name, key in keys.items() if name in values}
    if seed_key is not None:
        mapped[seed_key] = seed
    config = {k: v for k, v in mapped.items() if not is_arg_key(k)}
    args = {k: v for k, v in mapped.items() if is_arg_key(k)}
    return config, args


def config_copy(base: Mapping[str, Any], config_values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the base config with each dotted key set (missing mappings created,
    other keys kept). Raises `sweeps.dotted.DottedKeyError` for a key through a value
    that is not a mapping."""
    return with_dotted(base, config_values)


def format_argument(value: Any) -> str:
    """A value as the text after ``=``: JSON for numbers, booleans and null (``0.001``,
    ``true``, ``null``), strings as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return json.dumps(value)


def argument_words(arg_values: Mapping[str, Any]) -> list[str]:
    """``--key=value`` for each argument, in order."""
    return [f"{key}={format_argument(value)}" for key, value in arg_values.items()]


def params_document(values: Mapping[str, Any], seed: int, trial_number: int) -> dict[str, Any]:
    """The JSON file at {json}: ``{"trial_number": n, "seed": s, "params": {name: value}}``
    with every searched and fixed value under its name in the spec's search."""
    return {"trial_number": trial_number, "seed": seed, "params": dict(values)}


def expand_argv(
    argv: Sequence[str],
    *,
    config: Path | None,
    args: Sequence[str],
    json_file: Path,
    trial_dir: Path,
) -> list[str]:
    """argv with its placeholders filled: a word ``{args}`` becomes the argument words
    (none, one or several); ``{config}``, ``{json}``, ``{trial_dir}`` become paths.
    Raises ``KeyError`` for {config} without a config (the spec checks refuse that)."""
    fills = {"json": str(json_file), "trial_dir": str(trial_dir)}
    if config is not None:
        fills["config"] = str(config)
    out: list[str] = []
    for word in argv:
        if word == "{args}":
            out.extend(args)
        else:
            out.append(expand_word(word, fills))
    return out


def trial_env(
    base: Mapping[str, str],
    *,
    trial_dir: Path,
    trial_number: int,
    metrics_file: Path,
    stop_file: Path,
    tracking: TrackingTarget | None = None,
    cuda_visible_devices: str | None = None,
) -> dict[str, str]:
    """The program's environment: ``base`` (usually ``os.environ``) with the trial's
    variables set, and any inherited trial or run variables removed.

    ``cuda_visible_devices``: the worker plan's GPUs ("" hides every GPU); None keeps the
    inherited value. ``tracking`` None: no MLflow run for the program (an inherited
    ``MLFLOW_TRACKING_URI`` is kept).
    """
    env = {k: v for k, v in base.items() if k not in _TRIAL_VARS}
    env[ENV_TRIAL_DIR] = str(trial_dir)
    env[ENV_TRIAL_NUMBER] = str(trial_number)
    env[METRICS_ENV] = str(metrics_file)
    env[STOP_ENV] = str(stop_file)
    env["PYTHONUNBUFFERED"] = "1"  # print() reaches the stdout pattern as it happens
    if tracking is not None:
        env[ENV_TRACKING_URI] = tracking.tracking_uri
        env[ENV_EXPERIMENT_ID] = tracking.experiment_id
        env[ENV_RUN_ID] = tracking.run_id
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    return env
