"""The ``confirm:`` section of a sweep spec: the sequential confirmation's design, fixed
before any replicate runs (issue 19).

    confirm:
      top_k: 2                    # candidates: the best distinct search trials
      initial_seeds: 4            # every contender (and the baseline) runs these first
      max_seeds: 16               # no contender runs more
      indifference_zone: 0.005    # a difference within it does not matter (metric units)
      alpha: 0.05                 # probability of any false claim, fixed in advance

The race itself (studies.confirmation.sequential.SequentialDesign) takes them as ``n0``,
``n_max``, ``delta`` and ``alpha``; its boundary shape (rho 1), the weight of the
baseline-led claims (0.5) and the futility rule (1 standard error) are fixed, not spec
keys. Figures behind the defaults: docs/BENCHMARKS.md, "Sequential confirmation".

The fixed-seed confirmation's ``seeds`` key is refused with a message naming the keys that
replace it: a number of seeds decided in advance for every contender is not what the race
does, and reading it as ``initial_seeds = max_seeds`` would silently give a different
procedure (with its own error rate) under an old name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RETIRED_SEEDS", "ConfirmSpec"]

RETIRED_SEEDS = (
    "seeds: replaced by the sequential confirmation's initial_seeds (seeds every contender "
    "runs before the first look, default 4, at least 3) and max_seeds (the most any "
    "contender runs, default 16); the race adds seeds only to the contenders still open, "
    "with indifference_zone and alpha fixed in advance"
)


class ConfirmSpec(BaseModel):
    """After the search: the top configurations and the baseline race on paired replicates
    (seeds and scenes shared), the winner chosen on validation, the test split reported."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    top_k: int = Field(
        3,
        ge=1,
        le=100,
        description="Distinct configurations to confirm: the best complete search trials "
        "(the baseline races beside them when the spec has one).",
    )
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

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict) and "seeds" in data:
            raise ValueError(RETIRED_SEEDS)
        return data

    @model_validator(mode="after")
    def _check(self) -> ConfirmSpec:
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
