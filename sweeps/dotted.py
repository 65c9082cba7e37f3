"""Dotted keys into a user's own YAML config: ``model.loss.lambda_sg`` set in a copy.

The config of a command trial is the user's file, not a `TrainConfig`: any mapping. Setting
a key creates the mappings on its way that are missing and keeps every other key; a key
whose way goes through a value that is not a mapping (a list, a number) is an error, never
silently replaced. Pure functions: the spec checks (sweeps.command_checks) and the trial's
inputs (studies.command.inputs) use the same ones.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from trainer.errors import UserError

__all__ = ["DottedKeyError", "set_dotted", "with_dotted"]


class DottedKeyError(UserError, ValueError):
    """A dotted key that cannot be set: its way goes through a value that is no mapping."""

    def __init__(self, key: str, through: str, found: Any) -> None:
        self.key = key
        self.through = through
        super().__init__(
            f"cannot set {key}: {through} is {_kind(found)} in the base config, not a mapping"
        )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (``a.b.c``) to ``value`` in ``data``, in place.

    Missing mappings on the way are created (``{}``); a value on the way that is not a
    mapping raises `DottedKeyError` (``data`` is then unchanged).
    """
    parts = key.split(".")
    node: Any = data
    # Check the whole way first, so that an error leaves ``data`` as it was.
    for depth, part in enumerate(parts[:-1]):
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            break
        if not isinstance(node, dict):
            raise DottedKeyError(key, ".".join(parts[: depth + 1]), node)
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def with_dotted(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with every ``dotted.key: value`` of ``values`` set, in order.

    ``base`` is not changed. Raises `DottedKeyError` for a key through a non-mapping.
    """
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in values.items():
        set_dotted(out, key, value)
    return out
