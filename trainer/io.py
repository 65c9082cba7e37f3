"""Read and write a `TrainConfig` as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trainer.config import TrainConfig
from trainer.errors import UserError
from trainer.validation import describe_validation_error

__all__ = ["ConfigError", "dump_train_config", "load_train_config", "parse_train_config"]


class ConfigError(UserError, ValueError):
    """A training config that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        body = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{body}")


def parse_train_config(data: Any, source: str = "<config>") -> TrainConfig:
    """Validate a mapping as a `TrainConfig`, reporting every problem with its key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a mapping, got {type(data).__name__}"])
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc, TrainConfig)) from None


def load_train_config(path: Path) -> TrainConfig:
    """Load a YAML training config (comment lines, e.g. an export header, are fine)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(str(path), [f"{where}invalid YAML ({problem})"]) from None
    return parse_train_config(data, str(path))


def dump_train_config(config: TrainConfig) -> str:
    """The config as YAML text that `load_train_config` reads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
