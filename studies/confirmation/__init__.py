"""The confirmation's statistics and its verdict, read from study records (no Optuna
object): estimates, paired differences, who wins.

Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.confirmation.confirmed import (
        Confirmation,
        ConfirmedConfig,
        ConfirmError,
        load_confirmation,
        search_baseline_trial,
    )
    from studies.confirmation.stats import (
        Estimate,
        Outcome,
        Verdict,
        estimate,
        paired_difference,
        t_quantile_975,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.confirmation.stats": (
            "Estimate",
            "Outcome",
            "Verdict",
            "estimate",
            "paired_difference",
            "t_quantile_975",
        ),
        "studies.confirmation.confirmed": (
            "ConfirmError",
            "Confirmation",
            "ConfirmedConfig",
            "load_confirmation",
            "search_baseline_trial",
        ),
    },
)
