"""A confirmation replicate's score on its MLflow run: the value the race counts (the
objective on validation at the selected epoch, as the search scores a trial), logged under
one name on every replicate, ``confirm.value``, a column of the sweep's runs view
(studies.tracking.client). A replicate without a finite value (diverged) logs none. Its
test-split counterpart, reported only, is ``confirm.test_value`` (studies.run.replicates).
"""

from __future__ import annotations

from collections.abc import Callable

from studies.run.runner import EpochCallback, RunEnding
from studies.tracking import CONFIRM_VALUE_METRIC, RunLog

__all__ = ["Train", "logging_score"]

Train = Callable[[EpochCallback, RunLog, RunEnding], float]


def logging_score(train: Train, metric: str = CONFIRM_VALUE_METRIC) -> Train:
    """``train`` that also logs the value it returns as ``metric`` (step 0) on the run."""

    def train_and_log(on_epoch_end: EpochCallback, run: RunLog, ending: RunEnding) -> float:
        value = train(on_epoch_end, run, ending)
        run.log_epoch(0, {metric: value})
        return value

    return train_and_log
