"""studies.run.replicates without training: which jobs a confirmation makes, what counts as done,
and how a replicate is scored (real Optuna studies in SQLite)."""

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
    _claimed,
    _Diverged,
    baseline_search_job,
    confirmation_jobs,
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


def test_jobs(tmp_path: Path, spec: SweepSpec) -> None:
    ok = TrialState.COMPLETE
    study = make_study(tmp_path, spec, [(p(0.5), 0.3, ok), (p(0.2), 0.2, ok)])
    jobs = confirmation_jobs(study, spec, top_k=1, seeds=3)
    # the search used training seed 10: the confirmation uses 11, 12, 13
    assert [(j.key, j.seed, j.role) for j in jobs] == [
        ("trial-1", 11, "confirmation"),
        ("trial-1", 12, "confirmation"),
        ("trial-1", 13, "confirmation"),
        ("baseline", 11, "confirmation"),
        ("baseline", 12, "confirmation"),
        ("baseline", 13, "confirmation"),
    ]
    source = study.trials[1].user_attrs["config"]
    for job in jobs[:3]:
        assert job.params == p(0.2)
        assert job.config.model_dump(mode="json") == {**source, "seed": job.seed}
        assert job.config.data.seed == spec.base.data.seed  # the scenes never move
    for job in jobs[3:]:
        assert job.config.loss.method == "sparse-ssi" and job.params == {
            "loss.method": "sparse-ssi"
        }
    assert jobs[0].user_attrs()["config"]["seed"] == 11
    # Readable in optuna-dashboard: a label and one scalar field per searched value.
    shown = jobs[0].user_attrs()
    assert shown["label"] == "trial 1"
    assert {k: v for k, v in shown.items() if k.startswith("param.")} == {
        f"param.{k}": v for k, v in p(0.2).items()
    }
    assert jobs[3].user_attrs()["label"] == "baseline (sparse-ssi)"
    assert jobs[3].user_attrs()["param.loss.method"] == "sparse-ssi"
    first = baseline_search_job(spec)
    assert (first.key, first.seed, first.role) == ("baseline", 10, "search-baseline")
    no_baseline = parse_spec({**spec.model_dump(mode="json"), "baseline": False}, "t")
    assert {j.key for j in confirmation_jobs(study, no_baseline, 2, 2)} == {"trial-0", "trial-1"}


def test_claimed_jobs(tmp_path: Path, spec: SweepSpec) -> None:
    study = make_study(tmp_path, spec, [])
    add_search_baseline(study, 0.4, seed=10)
    add_replicate(study, "trial-1", 11, 0.2)
    add_replicate(study, "trial-1", 12, math.nan)  # diverged: a result, not run again
    add_replicate(study, "trial-1", 13, 0.2, state=TrialState.FAIL)  # interrupted: run again
    companion = companion_study(study)
    assert companion is not None
    assert _claimed(companion) == {
        ("baseline", 10, "search-baseline"),
        ("trial-1", 11, "confirmation"),
        ("trial-1", 12, "confirmation"),
    }


def test_replicate_score(spec: SweepSpec) -> None:
    runner = ReplicateRunner(
        SweepRuns(spec, Tracker("http://127.0.0.1:9"), "1", "p", "c"), Path(".")
    )
    history = [{"val/abs_rel_align": 0.5}, {"val/abs_rel_align": 0.4}]
    test = {"test/abs_rel_align": 0.45, "test/a1": 0.6}
    assert runner._score(history, test, searching=True) == ("val/abs_rel_align", 0.4)
    assert runner._score(history, test, searching=False) == ("test/abs_rel_align", 0.45)
    with pytest.raises(_Diverged, match="not finite"):
        runner._score(history, {"test/abs_rel_align": math.nan}, searching=False)
    with pytest.raises(_Diverged, match="never produced a finite"):
        runner._score([{"val/abs_rel_align": math.inf}], {}, searching=True)
    with pytest.raises(KeyError, match="no 'test/abs_rel_align' on the test split"):
        runner._score(history, {"test/a1": 0.6}, searching=False)
