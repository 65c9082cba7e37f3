"""studies.run.race_rounds without training: the race's setup, each round's jobs (paired
training and data seeds), rounds that follow the stored replicates until the race is
decided, and a race that cannot go on (real Optuna studies in SQLite)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from studies.confirmation import ConfirmError
from studies.confirmation.confirmed import load_confirmation
from studies.run.race_rounds import (
    current_race,
    next_confirmation_jobs,
    run_race,
    start_race,
)
from studies.run.replicates import ReplicateJob, ReplicateRunner
from studies.run.runner import SweepRuns
from studies.store import as_record
from studies.store.records import companion_study
from studies.tracking.runs import Tracker
from sweeps import ConfirmSpec, SweepSpec, parse_spec
from tests.studies.confirm_helpers import add_replicate
from tests.studies.sweep_helpers import tiny_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "loss.lambda_sg": FloatDistribution(0.1, 1.0, log=True),
    "loss.num_scales": IntDistribution(1, 3),
    "loss.use_inv_depth": CategoricalDistribution([True, False]),
}
RACE = ConfirmSpec(top_k=2, initial_seeds=3, max_seeds=5)


def p(lam: float) -> dict[str, Any]:
    return {"loss.lambda_sg": lam, "loss.num_scales": 2, "loss.use_inv_depth": True}


@pytest.fixture
def spec() -> SweepSpec:
    data = tiny_spec("c").model_dump(mode="json")
    data["base"]["seed"] = 10  # the search's training seed: replicates use 11, 12, ...
    data["base"]["data"]["seed"] = 20  # its data seed: replicates use 21, 22, ...
    return parse_spec(data, "t")


@pytest.fixture
def study(tmp_path: Path, spec: SweepSpec) -> optuna.Study:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="c")
    for lam, value in [(0.5, 0.3), (0.2, 0.2), (0.7, 0.25)]:
        study.add_trial(
            create_trial(
                value=value,
                params=p(lam),
                distributions=DISTRIBUTIONS,
                user_attrs={"config": spec.config_for(p(lam)).model_dump(mode="json")},
            )
        )
    return study


def shown(jobs: list[ReplicateJob]) -> list[tuple[str, int | None, int, int | None]]:
    return [(j.key, j.index, j.seed, j.data_seed) for j in jobs]


def test_the_first_round_is_paired(study: optuna.Study, spec: SweepSpec) -> None:
    setup = start_race(study, spec, RACE)
    assert setup is not None
    assert (setup.candidates, setup.baseline) == (("trial-1", "trial-2"), "baseline")
    assert (setup.initial_seeds, setup.max_seeds) == (3, 5)
    jobs = next_confirmation_jobs(study, spec)
    # Seed index first (the runs of one seed share their scenes): replicate s of every
    # contender has training seed 10 + 1 + s and data seed 20 + 1 + s.
    assert shown(jobs) == [
        (key, s, 11 + s, 21 + s) for s in range(3) for key in ("baseline", "trial-1", "trial-2")
    ]
    source = study.trials[1].user_attrs["config"]
    for job in jobs:
        assert job.config is not None and job.role == "confirmation"
        assert (job.config.seed, job.config.data.seed) == (job.seed, job.data_seed)
        stored = job.user_attrs()
        assert (stored["seed_index"], stored["data_seed"], stored["seed"]) == (
            job.index,
            job.data_seed,
            job.seed,
        )
        if job.key == "trial-1":
            assert job.params == p(0.2)
            expected = {
                **source,
                "seed": job.seed,
                "data": {**source["data"], "seed": job.data_seed},
            }
            assert job.config.model_dump(mode="json") == expected
        if job.key == "baseline":
            assert job.config.loss.method == "sparse-ssi"
    # The race is fixed when it starts: the same design goes on, another is refused.
    assert start_race(study, spec, RACE) == setup
    with pytest.raises(ConfirmError, match="design is fixed before the first replicate"):
        start_race(study, spec, RACE.model_copy(update={"max_seeds": 8}))
    no_baseline = parse_spec({**spec.model_dump(mode="json"), "baseline": False}, "t")
    other = optuna.create_study(storage=study._storage, study_name="d")
    assert start_race(other, no_baseline, RACE) is None  # no complete search trial


def score(key: str, index: int) -> tuple[float, float]:
    """Trial 1 leads trial 2 by about 0.02, the baseline is far behind; test = val + 0.03."""
    noise = [0.0, 0.01, -0.01, 0.005, -0.004][index]
    val = {"trial-1": 0.20, "trial-2": 0.22 + 0.7 * noise, "baseline": 0.40}[key] + noise
    return val, val + 0.03


def test_rounds_follow_the_stored_replicates(study: optuna.Study, spec: SweepSpec) -> None:
    start_race(study, spec, RACE)
    rounds: list[list[tuple[str, int | None, int, int | None]]] = []
    while jobs := next_confirmation_jobs(study, spec):
        assert next_confirmation_jobs(study, spec) == jobs  # a pure read of the storage
        rounds.append(shown(jobs))
        for job in jobs:
            assert job.index is not None
            val, test = score(job.key, job.index)
            add_replicate(study, job.key, job.seed, val, test=test, index=job.index)
        state = current_race(study)
        assert state is not None
        if not state.done:
            # The next round: one more seed for exactly the contenders still open.
            assert {key for key, _, _, _ in shown(next_confirmation_jobs(study, spec))} == set(
                state.needs
            )
    state = current_race(study)
    assert state is not None and state.done and state.winner == "trial-1"
    assert len(rounds) >= 2  # the race added seeds after its first look
    assert rounds[0] == [
        (key, s, 11 + s, 21 + s) for s in range(3) for key in ("baseline", "trial-1", "trial-2")
    ]
    # The baseline, far behind, was resolved at the first look: it runs no further seed.
    assert all(key != "baseline" for later in rounds[1:] for key, *_ in later)
    assert state.comparisons["baseline"].outcome == "better"
    assert state.runs == sum(len(r) for r in rounds)
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None and confirmation.state == state


def test_a_race_that_cannot_go_on(study: optuna.Study, spec: SweepSpec) -> None:
    """Replicates of an earlier fixed-seed confirmation hold the race's first jobs (the same
    configuration and training seed) without its scores: refused, not looped over."""
    start_race(study, spec, RACE)
    for key in ("trial-1", "trial-2", "baseline"):
        for seed in (11, 12, 13):
            add_replicate(study, key, seed, 0.3, legacy=True)
    runner = ReplicateRunner(
        SweepRuns(spec, Tracker("http://127.0.0.1:9"), "1", "p", "c"), Path(".")
    )
    with pytest.raises(ConfirmError, match="cannot go on: its next replicates"):
        run_race(study, spec, RACE, runner)
    companion = companion_study(study)
    assert companion is not None
    waiting = companion.get_trials(states=(TrialState.WAITING,))
    assert not waiting and math.isfinite(companion.trials[0].value or math.nan)
