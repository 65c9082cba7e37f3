"""Which epoch of a run counts: the one whose weights are kept and tested.

Torch-free, so that specs and studies can build an :class:`EpochSelection` without loading
the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_SELECTION", "EpochSelection"]


@dataclass(frozen=True)
class EpochSelection:
    """How ``fit`` picks the epoch whose weights it keeps (``best.pt``, ``best_epoch``).

    Args:
        metric: a per-epoch metric of ``fit`` (``val/...``, ``train/...``); never a test
            metric, which exists only after the last epoch.
        direction: ``minimize`` for errors (abs_rel, rmse), ``maximize`` for a1..a3.
        reduce: ``best``: the epoch with the best finite value (the earliest on ties);
            ``last``: the last epoch with a finite value.

    When no epoch has a finite value, the last epoch is selected (its weights are the
    only ones nothing argues against).
    """

    metric: str = "val/abs_rel_align"
    direction: Literal["minimize", "maximize"] = "minimize"
    reduce: Literal["best", "last"] = "best"

    def __post_init__(self) -> None:
        # Literal types are not checked at run time; a typo would silently minimise.
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {self.direction!r}")
        if self.reduce not in ("best", "last"):
            raise ValueError(f"reduce must be 'best' or 'last', got {self.reduce!r}")
        if self.metric.startswith("test/"):
            raise ValueError(f"selection cannot look at a test metric ({self.metric!r})")

    def prefers(self, value: float, incumbent: float | None) -> bool:
        """Whether an epoch with ``value`` replaces the selected one, whose value is
        ``incumbent`` (None: no epoch with a finite value yet)."""
        if not math.isfinite(value):
            return incumbent is None  # provisional: the last epoch when none is finite
        if incumbent is None or self.reduce == "last":
            return True
        return value < incumbent if self.direction == "minimize" else value > incumbent

    def select(self, history: list[dict[str, float]]) -> int:
        """The selected epoch (1-based) of ``history`` (``history[i]`` = epoch ``i + 1``);
        0 for an empty history. Same rule as ``fit`` applies epoch by epoch."""
        selected, incumbent = 0, None
        for epoch, metrics in enumerate(history, start=1):
            value = metrics.get(self.metric, math.nan)
            if self.prefers(value, incumbent):
                selected = epoch
                incumbent = value if math.isfinite(value) else None
        return selected


DEFAULT_SELECTION = EpochSelection()
