"""What one searched setting may take: a float or int range, a list of choices, or a value.

In YAML the kind of a range follows the setting it searches (``loss.num_scales`` is an int,
so ``{low: 1, high: 4}`` is an int range); `sweeps.parse` decides it. Inside a `SweepSpec`
the tag is read back from the values (floats vs ints), so a dumped spec loads unchanged.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
)

__all__ = [
    "MAX_CHOICES",
    "Choices",
    "FixedValue",
    "FloatRange",
    "IntRange",
    "SearchParam",
    "candidate_values",
    "endpoints",
    "grid_values",
    "is_discrete",
    "is_searched",
    "value_count",
]

# A grid of more points than this is a mistake, not a sweep.
MAX_CHOICES = 1000

FixedValue = StrictBool | StrictInt | StrictFloat | StrictStr | None


class _Strict(BaseModel):
    # Strict: a range bound written as "0.5" is an error, not silently a number.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class FloatRange(_Strict):
    """A float from ``[low, high]``: uniform, log-uniform, or on a grid of ``step``."""

    low: float = Field(allow_inf_nan=False, description="Smallest value (inclusive).")
    high: float = Field(
        allow_inf_nan=False, description="Largest value (inclusive); must be > low."
    )
    log: bool = Field(False, description="Sample log-uniformly; needs low > 0, not with step.")
    step: float | None = Field(
        None,
        gt=0.0,
        allow_inf_nan=False,
        description="Spacing of a discrete grid from low; high - low must be a multiple.",
    )


class IntRange(_Strict):
    """An integer from ``[low, high]`` in steps of ``step``."""

    low: int = Field(ge=-(2**31), le=2**31, description="Smallest value (inclusive).")
    high: int = Field(
        ge=-(2**31), le=2**31, description="Largest value (inclusive); must be > low."
    )
    step: int = Field(1, ge=1, le=2**31, description="Spacing from low; high - low a multiple.")
    log: bool = Field(False, description="Sample log-uniformly; needs low > 0 and step 1.")


class Choices(_Strict):
    """One of a list of values (categorical; bool settings search ``[true, false]``)."""

    choices: list[FixedValue] = Field(
        min_length=1, max_length=MAX_CHOICES, description="The values, each of the setting's type."
    )


def _tag(value: Any) -> str:
    if isinstance(value, FloatRange):
        return "float"
    if isinstance(value, IntRange):
        return "int"
    if isinstance(value, Choices) or (isinstance(value, dict) and "choices" in value):
        return "choices"
    if isinstance(value, dict):
        bounds = [value.get("low"), value.get("high"), value.get("step")]
        ints = all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds)
        return "int" if ints else "float"
    return "fixed"


SearchParam = Annotated[
    Annotated[FloatRange, Tag("float")]
    | Annotated[IntRange, Tag("int")]
    | Annotated[Choices, Tag("choices")]
    | Annotated[FixedValue, Tag("fixed")],
    Discriminator(_tag),
]


def is_searched(param: SearchParam) -> bool:
    """True for a distribution, False for a fixed value."""
    return isinstance(param, FloatRange | IntRange | Choices)


def is_discrete(param: SearchParam) -> bool:
    """Whether a grid can enumerate it: choices, int ranges, floats with a step."""
    return not isinstance(param, FloatRange) or param.step is not None


def _count(param: IntRange | FloatRange) -> int:
    assert param.step is not None
    if isinstance(param, IntRange):
        return len(range(param.low, param.high + 1, param.step))
    # Rounded to 28 digits (Decimal's default precision): exact for any grid worth listing.
    return int((Decimal(str(param.high)) - Decimal(str(param.low))) / Decimal(str(param.step))) + 1


def value_count(param: SearchParam) -> int:
    """How many values a discrete param takes (`grid_values` without listing them); 1 for a
    fixed value. A continuous float range has no count (ValueError)."""
    if isinstance(param, Choices):
        return len(param.choices)
    if isinstance(param, IntRange | FloatRange):
        if param.step is None:
            raise ValueError("a continuous float range has no grid")
        return max(_count(param), 0)
    return 1


def grid_values(param: SearchParam) -> list[Any]:
    """Every value of a discrete param, in order; floats in exact decimal steps."""
    if isinstance(param, Choices):
        return list(param.choices)
    if isinstance(param, IntRange):
        return list(range(param.low, param.high + 1, param.step))
    if isinstance(param, FloatRange):
        if param.step is None:
            raise ValueError("a continuous float range has no grid")
        low, step = Decimal(str(param.low)), Decimal(str(param.step))
        # Decimal keeps 0.3 + 2 * 0.2 at 0.7 instead of 0.7000000000000001.
        return [float(low + i * step) for i in range(_count(param))]
    return [param]


def endpoints(param: SearchParam) -> list[tuple[str, Any]]:
    """``(sub-key, value)`` for the values that bound a param: low and high, or each choice
    (sub-key ``choices[i]``); a fixed value has the sub-key ''."""
    if isinstance(param, FloatRange | IntRange):
        return [("low", param.low), ("high", param.high)]
    if isinstance(param, Choices):
        return [(f"choices[{i}]", v) for i, v in enumerate(param.choices)]
    return [("", param)]


def candidate_values(param: SearchParam, limit: int = MAX_CHOICES) -> list[Any]:
    """The values worth building a config with: every value of a small discrete param
    (so that e.g. a height that is not a multiple of 16 inside a range is found), else
    the ends."""
    discrete = isinstance(param, IntRange | FloatRange) and param.step is not None
    # An empty range (low > high, reported by the checks) has its ends as candidates.
    if discrete and 0 < _count(param) <= limit:  # type: ignore[arg-type]
        return grid_values(param)
    return [value for _, value in endpoints(param)]
