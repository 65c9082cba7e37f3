"""Turn pydantic validation errors into one problem per error, each with its key path.

The one formatter of pydantic errors: the trainer's config loader (`describe_validation_error`,
one ``key.path: problem`` line each) and the sweep-spec parser (sweeps.errors, which
re-exports `Problem` as ``SpecProblem``) both use it, so a user sees the same messages for
a bad training config and a bad sweep spec: an unknown key names the closest valid key and
every valid one, a wrong value shows what was given, and a model validator's lines
``field: problem`` go under that field's path.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = [
    "SHOWN_LIMIT",
    "Problem",
    "describe_validation_error",
    "join_path",
    "shown",
    "unknown_key",
    "validation_problems",
]


@dataclass(frozen=True)
class Problem:
    """One problem: ``path`` is the dotted key path ('' for the file as a whole)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


# A value or key shown in a message is cut to about this many characters.
SHOWN_LIMIT = 80


def shown(value: Any) -> str:
    """``repr(value)`` for a one-line message, cut to about `SHOWN_LIMIT` characters."""
    text = repr(value)
    if len(text) <= SHOWN_LIMIT:
        return text
    return f"{text[: SHOWN_LIMIT - 20]}... ({len(text)} characters)"


def join_path(*parts: str | int) -> str:
    """Key path from parts: ``('search', 'loss.lambda_sg', 'choices', 1)`` ->
    ``search.loss.lambda_sg.choices[1]``; empty parts are skipped."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            # A key with a newline stays on its line, a long one is cut.
            part = part if part.isprintable() and len(part) <= SHOWN_LIMIT else shown(part)
            out = f"{out}.{part}" if out else part
    return out


def unknown_key(key: str, valid: Iterable[str]) -> str:
    """Message for an unknown key: the valid keys, and the closest one when there is one."""
    names = sorted(valid)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}valid keys: {', '.join(names)})"


def _is_model(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The nested model class that ``loc`` (without its last part) points into."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if _is_model(current) else None
        if field is None:
            return None
        current = field.annotation
    return current if _is_model(current) else None


def _validator_lines(
    model: type[BaseModel], loc: list[str | int], prefix: str, message: str
) -> list[Problem]:
    """A model validator's message: lines "field: problem" go under that field's path."""
    owner = _model_at(model, [*loc, ""])
    fields = owner.model_fields if owner is not None else {}
    out = []
    for line in message.splitlines():
        key, sep, rest = line.partition(": ")
        if sep and " " not in key and key.split(".")[0].split("[")[0] in fields:
            out.append(Problem(join_path(prefix, *loc, key), rest))
        else:
            out.append(Problem(join_path(prefix, *loc) or "(top level)", line))
    return out


def validation_problems(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[Problem]:
    """One problem per pydantic error of validating ``model``, its location joined onto
    ``prefix`` (e.g. ``base`` inside a sweep spec)."""
    problems: list[Problem] = []
    for err in exc.errors():
        loc = list(err["loc"])
        path = join_path(prefix, *loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            valid = owner.model_fields if owner is not None else ()
            problems.append(Problem(path, unknown_key(str(loc[-1]), valid)))
            continue
        # pydantic prefixes model-validator messages with "Value error, ".
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "value_error":
            problems.extend(_validator_lines(model, loc, prefix, message))
            continue
        value = err.get("input")
        if err["type"] != "missing" and isinstance(value, str | int | float | bool | None):
            message = f"{message} (got {shown(value)})"
        problems.append(Problem(path, message))
    return problems


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[str]:
    """One ``key.path: problem`` line per error in ``exc`` (see `validation_problems`)."""
    return [str(problem) for problem in validation_problems(exc, model, prefix)]
