"""Per-seed scores of a confirmation and the rule for diverged replicates.

A contender's scores are a sequence indexed by seed: entry ``s`` is the ``(validation,
test)`` pair of its replicate with seed index ``s`` (the same training seed and the same
validation and test scenes for every contender: the replicates are paired). NaN marks a
replicate that diverged (no finite score).

Diverged replicates count, as the worst of their seed: every NaN score of seed ``s`` is
replaced by the worst finite score of that seed among the contenders that ran it, plus a
margin (the design's indifference zone), so a diverged run ranks below every finite run of
its seed by a difference that matters, and ties with the other diverged runs of the seed.
When every contender of the seed diverged, they all get the same value (their paired
differences are 0). Validation and test scores are filled separately, each from its own
split. The means a report shows are of the finite scores, with the divergence rate beside.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["Direction", "Replicate", "Scores", "fill_diverged", "finite_mean"]

Direction = Literal["minimize", "maximize"]
Replicate = tuple[float, float]  # (validation, test) of one seed; NaN = diverged
Scores = Mapping[str, Sequence[Replicate]]


def fill_diverged(values: Sequence[float], margin: float, direction: Direction) -> list[float]:
    """The scores of one seed (one per contender) with each non-finite score replaced by
    the worst finite score plus ``margin`` (worse by ``margin``: added when minimizing,
    subtracted when maximizing); all non-finite: 0.0 each."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return [0.0] * len(values)
    worst = max(finite) + margin if direction == "minimize" else min(finite) - margin
    return [float(v) if math.isfinite(v) else worst for v in values]


def finite_mean(values: Sequence[float]) -> tuple[float, int]:
    """Mean of the finite values (NaN when none) and the number of non-finite ones."""
    finite = [float(v) for v in values if math.isfinite(v)]
    mean = math.fsum(finite) / len(finite) if finite else math.nan
    return mean, len(values) - len(finite)
