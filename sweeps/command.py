"""`CommandSpec`: a sweep whose trials run the user's own training program.

The ``command:`` section of a spec replaces the built-in trainer. Per trial salsweep writes
a copy of ``base_config`` with the trial's values set at dotted keys, ``--key=value``
arguments and a JSON file, and fills the placeholders of ``argv`` with them:

- ``{config}``     the path of the trial's copy of ``base_config`` (keys without ``--``)
- ``{args}``       the ``--key=value`` arguments (keys with ``--``); a word on its own
- ``{json}``       the path of a JSON file with every value, the seed and the trial number
- ``{trial_dir}``  the trial's folder (outputs, logs)

``{{`` and ``}}`` are literal braces. Only ``{name}`` with a letter first is a placeholder,
so ``python -c "print({1: 2})"`` needs no escaping. The check across keys (a placeholder
that cannot be filled, a value with no way into the program ...) is sweeps.command_checks.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ARG_PREFIX",
    "KEY_PATTERN",
    "MAX_PATTERN_LENGTH",
    "PARAM_NAME_PATTERN",
    "PATTERN_GROUPS",
    "PLACEHOLDERS",
    "CommandSpec",
    "MetricsSource",
    "Placeholder",
    "expand_word",
    "is_arg_key",
    "placeholders_in",
]

Placeholder = Literal["config", "args", "json", "trial_dir"]
PLACEHOLDERS: tuple[Placeholder, ...] = ("config", "args", "json", "trial_dir")
MetricsSource = Literal["file", "mlflow", "stdout"]
# A program key: ``--name`` (an argument at {args}) or a dotted key of the config copy.
ARG_PREFIX = "--"
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_\-]*"
KEY_PATTERN = rf"^(--[A-Za-z0-9][A-Za-z0-9_.\-]*|{_SEGMENT}(\.{_SEGMENT})*)$"
# A searched name of a command spec (an Optuna parameter and an MLflow param name).
PARAM_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$"
# Named groups a stdout pattern may have: value (required), name, step.
PATTERN_GROUPS = ("value", "name", "step")
MAX_PATTERN_LENGTH = 1000
# {{ and }} are literal braces; {identifier} is a placeholder (or a typo of one).
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_in(word: str) -> list[str]:
    """The placeholder names in one word of argv, in order (unknown names included, so
    that the checks can name a typo); ``{{`` / ``}}`` are not placeholders."""
    return [m.group(1) for m in _TOKEN.finditer(word) if m.group(1) is not None]


def expand_word(word: str, values: dict[str, str]) -> str:
    """``word`` with each ``{name}`` replaced by ``values[name]`` and ``{{ }}`` unescaped.

    Raises ``KeyError`` for a placeholder that ``values`` lacks (the spec checks refuse
    those before any trial runs).
    """

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        return values[name]

    return _TOKEN.sub(_sub, word)


def is_arg_key(key: str) -> bool:
    """True for ``--name`` (an argument at {args}), False for a dotted config key."""
    return key.startswith(ARG_PREFIX)


class CommandSpec(BaseModel):
    """The user's training program, run once per trial in its own process group."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="The command: a list of words, or one string split as a shell would "
        "(no shell runs it). Placeholders: {config}, {args} (a word on its own), {json}, "
        "{trial_dir}; {{ and }} are literal braces. The program (first word) is looked up on "
        "PATH, or is a file (relative to workdir).",
    )
    workdir: Path | None = Field(
        None,
        description="Folder the command runs in; relative to where salsweep runs. Made "
        "absolute when the spec is read (a resume runs it in the same place); null = where "
        "salsweep runs.",
    )
    base_config: Path | None = Field(
        None,
        description="Your program's YAML config; each trial gets a copy with its values set "
        "at the dotted keys of `keys`, passed at {config}. Relative to workdir.",
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        max_length=256,
        description="Searched name -> your program's key: a dotted key set in the config copy "
        "(model.loss.lambda_sg, at {config}) or --name (passed as --name=value at {args}). "
        "Names left out reach the program only through {json}.",
    )
    seed_key: str | None = Field(
        None,
        max_length=200,
        pattern=KEY_PATTERN,
        description="Where the training seed goes: a dotted config key or --name. Required "
        "unless argv passes {json} (which holds the seed).",
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        strict=True,
        description="Training seed of the search's trials; the confirmation uses the seeds "
        "after it.",
    )
    metrics: MetricsSource = Field(
        "file",
        description="How metrics come back: file (JSON lines at $SALSWEEP_METRICS_FILE, e.g. "
        "studies.command.reporter.report), mlflow (the program logs to the trial's run, "
        "$MLFLOW_RUN_ID), or stdout (lines matched by `pattern`).",
    )
    pattern: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATTERN_LENGTH,
        description="metrics: stdout only. A Python regex searched in each line of standard "
        "output, with the named group `value` and optionally `name` (the metric; default the "
        "objective's) and `step` (default: the count of matching lines).",
    )
    steps: int | None = Field(
        None,
        ge=1,
        le=100_000,
        strict=True,
        description="The last step your program reports (e.g. its epochs): the hyperband "
        "pruner's maximum resource; null = unknown.",
    )
    grace_s: float = Field(
        10.0,
        gt=0.0,
        le=3600.0,
        strict=True,
        description="Seconds between SIGTERM to the trial's process group (the stop file is "
        "written first) and SIGKILL.",
    )
    timeout_s: float | None = Field(
        None,
        gt=0.0,
        le=30 * 24 * 3600.0,
        strict=True,
        description="Seconds a trial may run before it is stopped (timed out); null = no limit.",
    )
    poll_s: float = Field(
        2.0,
        ge=0.1,
        le=600.0,
        strict=True,
        description="metrics: mlflow: seconds between reads of the run's metrics (the file and "
        "stdout are read as lines arrive).",
    )

    @field_validator("argv", mode="before")
    @classmethod
    def _split_argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:  # unbalanced quotes
                raise ValueError(f"cannot split {value!r}: {exc}") from None
        if isinstance(value, list):
            for i, word in enumerate(value):
                if isinstance(word, dict) and len(word) == 1:
                    (name,) = word
                    if next(iter(word.values())) is None and name in PLACEHOLDERS:
                        # YAML read an unquoted `- {config}` as the mapping {config: null}.
                        raise ValueError(
                            f"word {i} is the mapping {{{name}: null}}: quote the "
                            f"placeholder, '{{{name}}}'"
                        )
        return value

    @field_validator("argv")
    @classmethod
    def _check_argv(cls, value: list[str]) -> list[str]:
        if any("\0" in word for word in value):
            raise ValueError("a word cannot contain a NUL character")
        if not value[0].strip():
            raise ValueError("the first word (the program) is empty")
        if placeholders_in(value[0]):
            raise ValueError("the first word (the program) cannot hold a placeholder")
        return value

    @field_validator("workdir", "base_config")
    @classmethod
    def _check_path(cls, value: Path | None) -> Path | None:
        if value is not None and "\0" in str(value):
            raise ValueError("a path cannot contain a NUL character")
        return value

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        groups = set(compiled.groupindex)
        if "value" not in groups:
            raise ValueError("needs the named group (?P<value>...) around the number")
        unknown = sorted(groups - set(PATTERN_GROUPS))
        if unknown:
            raise ValueError(
                f"unknown named group(s) {', '.join(unknown)} (use value, name, step; "
                "(?:...) for other groups)"
            )
        return value

    def used_placeholders(self) -> set[str]:
        """The placeholder names that argv uses (unknown ones included)."""
        return {name for word in self.argv for name in placeholders_in(word)}

    def config_keys(self) -> dict[str, str]:
        """Searched name -> dotted key set in the config copy."""
        return {n: k for n, k in self.keys.items() if not is_arg_key(k)}

    def arg_keys(self) -> dict[str, str]:
        """Searched name -> ``--name`` argument."""
        return {n: k for n, k in self.keys.items() if is_arg_key(k)}

    def program(self) -> str:
        """The first word of argv: a name looked up on PATH, or a path."""
        return self.argv[0]
