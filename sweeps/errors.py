"""Problems found in a sweep spec, each with its key path, reported all at once."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from trainer.errors import UserError

__all__ = ["SpecError", "SpecProblem", "join_path", "problems_from_validation", "unknown_key"]


@dataclass(frozen=True)
class SpecProblem:
    """One problem: ``path`` is the dotted key path ('' for the file as a whole)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(UserError, ValueError):
    """A sweep spec that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[SpecProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        body = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{body}")


def join_path(*parts: str | int) -> str:
    """Key path from parts: ``('search', 'loss.lambda_sg', 'choices', 1)`` ->
    ``search.loss.lambda_sg.choices[1]``; empty parts are skipped."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out else part
    return out


def unknown_key(key: str, valid: Iterable[str]) -> str:
    """Message for an unknown key: the valid keys, and the closest one when there is one."""
    names = sorted(valid)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}valid keys: {', '.join(names)})"


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The nested model class that ``loc`` (without its last part) points into."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if _is_model(current) else None
        if field is None:
            return None
        current = field.annotation
    return current if _is_model(current) else None


def _is_model(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _validator_lines(
    model: type[BaseModel], loc: list[str | int], prefix: str, message: str
) -> list[SpecProblem]:
    """A model validator's message: lines "field: problem" go under that field's path."""
    owner = _model_at(model, [*loc, ""])
    fields = owner.model_fields if owner is not None else {}
    out = []
    for line in message.splitlines():
        key, sep, rest = line.partition(": ")
        if sep and " " not in key and key.split(".")[0].split("[")[0] in fields:
            out.append(SpecProblem(join_path(prefix, *loc, key), rest))
        else:
            out.append(SpecProblem(join_path(prefix, *loc) or "(top level)", line))
    return out


def problems_from_validation(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[SpecProblem]:
    """One problem per pydantic error, its location joined onto ``prefix``."""
    problems: list[SpecProblem] = []
    for err in exc.errors():
        loc = list(err["loc"])
        path = join_path(prefix, *loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            valid = owner.model_fields if owner is not None else ()
            problems.append(SpecProblem(path, unknown_key(str(loc[-1]), valid)))
            continue
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "value_error":
            problems.extend(_validator_lines(model, loc, prefix, message))
            continue
        value = err.get("input")
        if err["type"] != "missing" and isinstance(value, str | int | float | bool | None):
            message = f"{message} (got {value!r})"
        problems.append(SpecProblem(path, message))
    return problems
