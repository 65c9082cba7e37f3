"""Dotted paths into `TrainConfig` (``loss.lambda_sg``, ``data.height``, ``lr`` ...)."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from sweeps.errors import unknown_key
from trainer.config import TrainConfig
from trainer.validation import shown

__all__ = [
    "FieldKind",
    "PathError",
    "apply_values",
    "check_value",
    "field_kind",
    "get_value",
    "resolve_field",
]

FieldKind = Literal["bool", "int", "float", "other"]


class PathError(ValueError):
    """A dotted path that does not name a setting of `TrainConfig`."""


@functools.lru_cache(maxsize=256)
def resolve_field(path: str) -> FieldInfo:
    """The pydantic field that ``path`` names; `PathError` when there is none."""
    model: type[BaseModel] = TrainConfig
    parts = path.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        where = ".".join(parts[:depth])
        if field is None:
            under = f" under {where}" if where else ""
            raise PathError(
                f"not a TrainConfig setting: {shown(part)}{under} is an "
                f"{unknown_key(part, model.model_fields)}"
            )
        annotation = field.annotation
        last = depth == len(parts) - 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if last:
                example = f"{path}.{next(iter(annotation.model_fields))}"
                raise PathError(f"a section, not a setting; search its settings, e.g. {example}")
            model = annotation
        elif not last:
            raise PathError(f"{'.'.join(parts[: depth + 1])} is a setting, not a section")
        else:
            return field
    raise PathError("empty path")  # pragma: no cover - split() never returns []


def field_kind(field: FieldInfo) -> FieldKind:
    """bool, int or float for those plain types; other for strings, literals, paths."""
    annotation = field.annotation
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    return "other"


def _mentions_path(annotation: Any) -> bool:
    if annotation is Path:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_mentions_path(a) for a in typing.get_args(annotation))
    return False


@functools.lru_cache(maxsize=256)
def _adapter(path: str) -> TypeAdapter[Any]:
    annotation = resolve_field(path).annotation
    # Strict, so that "0.5" or 1 are not taken for a float or a bool without a word; paths
    # are written as strings in YAML, which only lax mode turns into a Path.
    strict = not _mentions_path(annotation)
    return TypeAdapter(annotation, config=ConfigDict(strict=strict))  # type: ignore[arg-type]


def check_value(path: str, value: Any) -> tuple[Any, str | None]:
    """``(value as JSON, None)`` when ``value`` has the setting's type, else ``(value, message)``.

    Only the type is checked here; bounds are checked by building a `TrainConfig`.
    """
    adapter = _adapter(path)
    try:
        parsed = adapter.validate_python(value)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]) for e in exc.errors())
        return value, f"{message} (got {shown(value)})"
    return adapter.dump_python(parsed, mode="json"), None


def get_value(config: TrainConfig, path: str) -> Any:
    """The JSON value of ``path`` in ``config``."""
    node: Any = config.model_dump(mode="json")
    for part in path.split("."):
        node = node[part]
    return node


def apply_values(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """``base`` with every ``dotted.path: value`` set, validated as a whole.

    Goes through ``model_validate`` of the nested mapping (not ``model_copy``), so that the
    field bounds and the cross-field validators run. Raises pydantic's ``ValidationError``.
    """
    data: dict[str, Any] = base.model_dump()
    for path, value in values.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return TrainConfig.model_validate(data)
