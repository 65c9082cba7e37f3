"""The confirmation's statistics and its verdict, read from study records (no Optuna
object): estimates, paired differences, who wins; the sequential race (`race`,
`SequentialDesign`) with its stated error rate, the fixed-seed design with Holm's
adjustment (`fixed_comparison`, `holm`), and both in words.

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
        RaceSetup,
        load_confirmation,
        race_state,
        search_baseline_trial,
    )
    from studies.confirmation.fixed import (
        FixedVerdict,
        fixed_comparison,
    )
    from studies.confirmation.holm import (
        holm,
    )
    from studies.confirmation.sequential import (
        RaceState,
        SequentialDesign,
        race,
    )
    from studies.confirmation.stats import (
        Estimate,
        Outcome,
        Verdict,
        estimate,
        paired_difference,
        t_quantile_975,
    )
    from studies.confirmation.words import (
        fixed_sentences,
        race_sentences,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.confirmation.confirmed": (
            "ConfirmError",
            "Confirmation",
            "ConfirmedConfig",
            "RaceSetup",
            "load_confirmation",
            "race_state",
            "search_baseline_trial",
        ),
        "studies.confirmation.fixed": (
            "FixedVerdict",
            "fixed_comparison",
        ),
        "studies.confirmation.holm": ("holm",),
        "studies.confirmation.sequential": (
            "RaceState",
            "SequentialDesign",
            "race",
        ),
        "studies.confirmation.stats": (
            "Estimate",
            "Outcome",
            "Verdict",
            "estimate",
            "paired_difference",
            "t_quantile_975",
        ),
        "studies.confirmation.words": (
            "fixed_sentences",
            "race_sentences",
        ),
    },
)
