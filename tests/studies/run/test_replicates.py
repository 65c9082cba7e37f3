"""studies.run.replicates without training: which trials the confirmation confirms, what
counts as done, and how a replicate is scored (real Optuna studies in SQLite). The race's
jobs: tests/studies/run/test_race_rounds.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from studies.run.replicates import (
    ReplicateRunner,
    _Diverged,
    baseline_search_job,
    claimed_jobs,
    selected_report,
    top_trials,
)
from studies.run.runner import SweepRuns
from studies.store.records import companion_study
from studies.tracking.runs import Tracker
from sweeps import SweepSpec, parse_spec
from tests.studies.confirm_helpers import add_replicate, add_search_baseline
from tests.studies.sweep_helpers import tiny_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "loss.lambda_sg": FloatDistribution(0.1, 1.0, log=True),
    "loss.num_scales": IntDistribution(1, 3),
    "loss.use_inv_depth": CategoricalDistribution([True, False]),
}


def p(lam: float, scales: int = 2, inv: bool = True) -> dict[str, Any]:
    return {"loss.lambda_sg": lam, "loss.num_scales": scales, "loss.use_inv_depth": inv}


def make_study(tmp_path: Path, spec: SweepSpec, trials: list[tuple[Any, ...]]) -> optuna.Study:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="c")
    for params, value, state in trials:
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs={"config": spec.config_for(params).model_dump(mode="json")},
            )
        )
    return study


@pytest.fixture
def spec() -> SweepSpec:
    data = tiny_spec("c").model_dump(mode="json")
    data["base"]["seed"] = 10
    return parse_spec(data, "t")


def test_top_trials_are_distinct_and_ordered(tmp_path: Path, spec: SweepSpec) -> None:
    ok = TrialState.COMPLETE
    study = make_study(
        tmp_path,
        spec,
        [
            (p(0.5), 0.30, ok),
            (p(0.2), 0.20, ok),
            (p(0.2), 0.10, ok),  # the same configuration again, luckier: counted once
            (p(0.9), 0.05, TrialState.PRUNED),  # not complete
            (p(0.7), 0.25, ok),
            (p(0.3), 0.25, ok),  # a tie: the earlier trial first
        ],
    )
    assert [t.number for t in top_trials(study, 3)] == [2, 4, 5]
    assert [t.number for t in top_trials(study, 10)] == [2, 4, 5, 0]


def test_the_search_baseline_job(spec: SweepSpec) -> None:
    first = baseline_search_job(spec)
    assert (first.key, first.seed, first.role) == ("baseline", 10, "search-baseline")
    assert first.config is not None and first.config.loss.method == "sparse-ssi"
    assert "seed_index" not in first.user_attrs()


def test_claimed_jobs(tmp_path: Path, spec: SweepSpec) -> None:
    study = make_study(tmp_path, spec, [])
    add_search_baseline(study, 0.4, seed=10)
    add_replicate(study, "trial-1", 11, 0.2)
    add_replicate(study, "trial-1", 12, math.nan)  # diverged: a result, not run again
    add_replicate(study, "trial-1", 13, 0.2, state=TrialState.FAIL)  # interrupted: run again
    companion = companion_study(study)
    assert companion is not None
    assert claimed_jobs(companion) == {
        ("baseline", 10, "search-baseline"),
        ("trial-1", 11, "confirmation"),
        ("trial-1", 12, "confirmation"),
    }


def test_replicate_score(spec: SweepSpec) -> None:
    """A replicate's value is the objective on validation at the selected epoch (as the
    search scores a trial); its test score is the test split's counterpart there."""
    runner = ReplicateRunner(
        SweepRuns(spec, Tracker("http://127.0.0.1:9"), "1", "p", "c"), Path(".")
    )
    history = [{"val/abs_rel_align": 0.5}, {"val/abs_rel_align": 0.4}]
    test = {"test/abs_rel_align": 0.45, "test/a1": 0.6}
    assert runner._validation(history) == 0.4
    assert runner._test(history, test) == ("test/abs_rel_align", 0.45)
    with pytest.raises(_Diverged, match="never produced a finite"):
        runner._validation([{"val/abs_rel_align": math.inf}])
    # Not reported on the test split: NaN (the test split only reports; it decides nothing).
    metric, value = runner._test(history, {"test/a1": 0.6})
    assert metric == "test/abs_rel_align" and math.isnan(value)
    # A command's reports: the test metric of the report the objective selects.
    reports = [
        {"val/abs_rel_align": 0.5, "test/abs_rel_align": 0.55},
        {"val/abs_rel_align": 0.3, "test/abs_rel_align": 0.35},
        {"val/abs_rel_align": 0.4, "test/abs_rel_align": 0.2},
    ]
    assert runner._test(reports, {}) == ("test/abs_rel_align", 0.35)
    assert selected_report(reports, "val/abs_rel_align", "minimize", "last") == reports[2]
    assert selected_report(reports, "val/abs_rel_align", "maximize", "best") == reports[0]
    assert selected_report([{"x": 1.0}], "val/abs_rel_align", "minimize", "best") is None
