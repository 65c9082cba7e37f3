"""Problems found in a sweep spec, each with its key path, reported all at once."""

from __future__ import annotations

from collections.abc import Sequence

from trainer.errors import UserError
from trainer.validation import Problem, join_path, unknown_key, validation_problems

__all__ = ["SpecError", "SpecProblem", "join_path", "problems_from_validation", "unknown_key"]

# The one pydantic-error formatter is trainer.validation's (the trainer's config loader
# uses it too); the spec parser knows its names as these.
SpecProblem = Problem
problems_from_validation = validation_problems


class SpecError(UserError, ValueError):
    """A sweep spec that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[SpecProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        body = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{body}")
