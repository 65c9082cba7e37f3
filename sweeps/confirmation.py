"""Proposed spec keys of the sequential confirmation (issue 19), not wired into `SweepSpec`
yet: the lead adds them under ``confirm:``, where they replace ``seeds``.

    confirm:
      top_k: 2                    # candidates, with the baseline
      initial_seeds: 4            # every contender runs these before the first look
      max_seeds: 16               # no contender runs more
      indifference_zone: 0.005    # a difference within it does not matter (metric units)
      alpha: 0.05                 # probability of any false claim, fixed in advance

The race itself (studies.confirmation.sequential.SequentialDesign) takes them as ``n0``,
``n_max``, ``delta`` and ``alpha``; its boundary shape (rho 1), the weight of the
baseline-led claims (0.5) and the futility rule (1 standard error) are fixed, not spec
keys. Figures behind the defaults:
docs/BENCHMARKS.md, "Sequential confirmation".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SequentialConfirmSpec"]


class SequentialConfirmSpec(BaseModel):
    """The sequential confirmation's design, fixed before any replicate runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    initial_seeds: int = Field(
        4,
        ge=3,
        le=100,
        description="Seeds every contender (candidates and baseline) runs before the first "
        "look; at least 3.",
    )
    max_seeds: int = Field(
        16,
        ge=3,
        le=100,
        description="The most seeds a contender runs; a comparison still open then is "
        "reported unresolved.",
    )
    indifference_zone: float = Field(
        0.005,
        gt=0.0,
        le=1.0,
        description="Differences smaller than this (in the objective metric's units) do not "
        "matter: two contenders whose difference lies within it are equivalent.",
    )
    alpha: float = Field(
        0.05,
        gt=0.0,
        lt=0.5,
        description="Probability of any false claim (better, worse or equivalent when not) "
        "over the whole race, whichever winner it picks and whenever it stops.",
    )

    @model_validator(mode="after")
    def _check(self) -> SequentialConfirmSpec:
        if self.max_seeds < self.initial_seeds:
            raise ValueError(
                f"max_seeds: {self.max_seeds} is below initial_seeds ({self.initial_seeds})"
            )
        return self

    def design_arguments(self, direction: Literal["minimize", "maximize"]) -> dict[str, Any]:
        """Keyword arguments of studies.confirmation.SequentialDesign."""
        return {
            "n0": self.initial_seeds,
            "n_max": self.max_seeds,
            "delta": self.indifference_zone,
            "alpha": self.alpha,
            "direction": direction,
        }
