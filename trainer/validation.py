"""Turn pydantic validation errors into one line per problem, each with its key path.

Shared by the trainer's YAML loader and the sweep-spec parser so that a user sees the same
kind of message for a bad training config and a bad sweep spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["describe_validation_error", "valid_keys_at"]


def valid_keys_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str] | None:
    """The field names of the nested model that ``path`` (without its last part) points into.

    Returns None when the path does not lead to a pydantic model.
    """
    current: Any = model
    for part in path[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[str]:
    """One ``key.path: problem`` line per error in ``exc``.

    Unknown keys name the valid keys at that level, so that a typo is fixed in one go.
    ``prefix`` is prepended to every key path (e.g. ``base`` inside a sweep spec).
    """
    lines: list[str] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            valid = valid_keys_at(model, loc)
            hint = f" (valid keys: {', '.join(valid)})" if valid else ""
            lines.append(f"{key}: unknown key{hint}")
        else:
            msg = str(err["msg"])
            # pydantic prefixes model-validator messages with "Value error, ".
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{key}: {msg}")
    return lines
