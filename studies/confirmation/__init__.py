"""The statistical core of the confirmation (issue 19): pure functions on per-seed scores.

- `race`: the sequential confirmation, a resumable race of paired replicates with a stated
  error rate (`SequentialDesign`: initial seeds, maximum seeds, indifference zone, alpha);
  the winner chosen on validation, the test split carried along for the report.
- `fixed_comparison`: the fixed-seed design, paired t-tests with `holm`'s adjustment.
- `race_sentences`, `fixed_sentences`: the verdict in words.
- `boundary`: one-sided group-sequential t boundaries; `at_risk_bound`: Shaffer's logical
  constraints; `t_quantile`, `t_two_sided_p`, `t_sf`: Student's t without scipy.
- `fill_diverged`: the rule for diverged replicates; `simulate_scores`: simulated
  replicates for the tests and benchmarks/sequential_bench.py.

numpy and the standard library only.
"""

from studies.confirmation.boundary import Boundary, boundary, crossing_level
from studies.confirmation.fixed import (
    FixedComparison,
    FixedContender,
    FixedVerdict,
    Split,
    fixed_comparison,
)
from studies.confirmation.holm import holm
from studies.confirmation.replicates import (
    Direction,
    Replicate,
    Scores,
    fill_diverged,
    finite_mean,
)
from studies.confirmation.sequential import (
    Claim,
    Comparison,
    ContenderRecord,
    Difference,
    Outcome,
    RaceState,
    SequentialDesign,
    race,
)
from studies.confirmation.shaffer import at_risk_bound, weak_orders
from studies.confirmation.simulation import (
    NoiseModel,
    random_sds,
    simulate_scores,
    simulated_scores,
)
from studies.confirmation.tdist import normal_sf, t_quantile, t_sf, t_two_sided_p
from studies.confirmation.words import fixed_sentences, race_sentences

__all__ = [
    "Boundary",
    "Claim",
    "Comparison",
    "ContenderRecord",
    "Difference",
    "Direction",
    "FixedComparison",
    "FixedContender",
    "FixedVerdict",
    "NoiseModel",
    "Outcome",
    "RaceState",
    "Replicate",
    "Scores",
    "SequentialDesign",
    "Split",
    "at_risk_bound",
    "boundary",
    "crossing_level",
    "fill_diverged",
    "finite_mean",
    "fixed_comparison",
    "fixed_sentences",
    "holm",
    "normal_sf",
    "race",
    "race_sentences",
    "random_sds",
    "simulate_scores",
    "simulated_scores",
    "t_quantile",
    "t_sf",
    "t_two_sided_p",
    "weak_orders",
]
