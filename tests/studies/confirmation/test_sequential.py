"""The sequential race: its rules on small, clear-cut inputs, and resuming it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from studies.confirmation.sequential import RaceState, SequentialDesign, race
from studies.confirmation.simulation import simulate_scores

DESIGN = SequentialDesign()  # n0 4, n_max 16, delta 0.005, alpha 0.05, futility 1 SE
NAN = math.nan
Scores = dict[str, list[tuple[float, float]]]


def _noisy(means: Mapping[str, float], sd: float, seeds: int, seed: int) -> Scores:
    rng = np.random.default_rng(seed)
    return simulate_scores(rng, means, dict.fromkeys(means, sd), seeds)


def _step_by_step(
    design: SequentialDesign, full: Scores, candidates: Sequence[str], baseline: str | None
) -> tuple[RaceState, list[RaceState]]:
    """Run the race as a sweep would: only the seeds it asks for, one decision at a time."""
    seen: Scores = {key: [] for key in full}
    history = []
    while True:
        state = race(design, seen, candidates, baseline)
        history.append(state)
        if state.done:
            return state, history
        assert state.needs, "a running race must ask for seeds"
        for key, seeds in state.to_run.items():
            assert seeds[0] == len(seen[key])  # the next seed, in order
            seen[key].extend(full[key][s] for s in seeds)


def test_design_is_checked() -> None:
    for bad in (
        {"n0": 2},
        {"n0": 17},
        {"n_max": 1001},
        {"delta": 0.0},
        {"alpha": 0.5},
        {"rho": -1.0},
        {"baseline_weight": 0.0},
        {"direction": "up"},
        {"futility_z": -1.0},
        {"futility_z": math.inf},
    ):
        with pytest.raises(ValueError):
            SequentialDesign(**bad)  # type: ignore[arg-type]


def test_before_the_first_look_every_contender_runs_the_initial_seeds() -> None:
    state = race(DESIGN, {}, ["a", "b"], "base")
    assert state.winner is None and not state.done and state.looks == 0
    assert state.to_run == {"a": (0, 1, 2, 3), "b": (0, 1, 2, 3), "base": (0, 1, 2, 3)}
    partial = race(DESIGN, {"a": [(0.1, 0.1)] * 4, "b": [(0.1, 0.1)]}, ["a", "b"], "base")
    assert partial.to_run == {"b": (1, 2, 3), "base": (0, 1, 2, 3)}
    assert partial.needs == ("b", "base")


def test_a_clear_lead_is_claimed_at_the_first_look() -> None:
    scores = _noisy({"a": 0.15, "b": 0.19, "base": 0.20}, 0.002, 12, seed=1)
    state = race(DESIGN, scores, ["a", "b"], "base")
    assert state.done and state.stop == "resolved" and state.looks == 4
    assert state.winner == "a" and state.runner_up == "b" and state.baseline == "base"
    assert {k: c.outcome for k, c in state.comparisons.items()} == {
        "b": "better",
        "base": "better",
    }
    assert state.runs == 12  # 3 contenders x 4 seeds
    for c in state.comparisons.values():
        assert c.claim_look == 4 and c.claim_level is not None
        assert c.validation.high < 0 and c.validation.n == 4
        assert c.test.n == 4
    # the first claim splits alpha over the whole weight (4 candidate-led + 2 baseline-led
    # pairs at 0.5), later ones over less
    levels = sorted(c.level for c in state.claims)
    assert levels[0] == pytest.approx(0.05 / 5)
    assert all(c.look == 4 for c in state.claims)


def test_step_by_step_is_the_same_race() -> None:
    for seed, means in enumerate(
        (
            {"a": 0.15, "b": 0.17, "base": 0.17},
            {"a": 0.15, "b": 0.151, "c": 0.16, "base": 0.17},
            {"a": 0.17, "b": 0.17, "base": 0.17},
        )
    ):
        full = _noisy(means, 0.008, DESIGN.n_max, seed)
        keys = list(means)
        one_shot = race(DESIGN, full, keys[:-1], keys[-1])
        final, history = _step_by_step(DESIGN, full, keys[:-1], keys[-1])
        assert final == one_shot
        # one decision per look after the initial seeds
        assert len(history) == 1 + final.looks - DESIGN.n0 + 1
        used = sum(c.seeds for c in final.contenders.values())
        assert used == final.runs


def test_seeds_run_after_a_contender_left_are_ignored() -> None:
    full = _noisy({"a": 0.15, "b": 0.16, "base": 0.20}, 0.006, 12, seed=3)
    state = race(DESIGN, full, ["a", "b"], "base")
    base = state.contenders["base"]
    # the baseline left early, but every contender has 12 seeds (workers ran them anyway)
    assert base.left_at is not None and base.seeds == base.left_at < 12
    trimmed = {k: v[: state.contenders[k].seeds] for k, v in full.items()}
    assert race(DESIGN, trimmed, ["a", "b"], "base") == state


def test_waiting_for_a_seed_of_the_round() -> None:
    full = _noisy({"a": 0.15, "b": 0.152, "base": 0.17}, 0.008, 12, seed=4)
    after_four = race(DESIGN, {k: v[:4] for k, v in full.items()}, ["a", "b"], "base")
    assert not after_four.done and after_four.looks == 4
    running = list(after_four.needs)
    assert "a" in running
    # only the winner has its fifth seed: the others are still to run
    partial = {k: v[:4] for k, v in full.items()}
    partial["a"] = full["a"][:5]
    waiting = race(DESIGN, partial, ["a", "b"], "base")
    assert waiting.looks == 4 and not waiting.done
    assert set(waiting.needs) == set(running) - {"a"}
    assert all(seeds == (4,) for seeds in waiting.to_run.values())


def test_identical_contenders_are_equivalent() -> None:
    same = [(0.2 + 0.01 * s, 0.2) for s in range(4)]
    state = race(DESIGN, {"a": same, "b": list(same)}, ["a", "b"])
    assert state.done and state.winner == "a"  # ties: the first
    c = state.comparisons["b"]
    assert c.outcome == "equivalent" and c.validation.mean == 0.0
    assert (c.validation.low, c.validation.high) == (0.0, 0.0)


def test_the_baseline_is_never_the_winner_and_can_beat_it() -> None:
    scores = _noisy({"a": 0.20, "b": 0.25, "base": 0.15}, 0.002, 12, seed=5)
    state = race(DESIGN, scores, ["a", "b"], "base")
    assert state.winner == "a"
    assert state.comparisons["base"].outcome == "worse"
    assert state.comparisons["b"].outcome == "better"
    worse = state.comparisons["base"]
    assert worse.validation.low > 0  # winner - baseline > 0: worse (lower is better)
    # a baseline-led claim gets half the weight
    assert worse.claim_level is not None and worse.claim_level <= 0.05 * 0.5 / 3 + 1e-12


def test_maximize_mirrors_minimize() -> None:
    scores = _noisy({"a": 0.15, "b": 0.16, "c": 0.17, "base": 0.18}, 0.006, 12, seed=6)
    mirrored = {k: [(-v, -t) for v, t in seeds] for k, seeds in scores.items()}
    lo = race(DESIGN, scores, ["a", "b", "c"], "base")
    hi = race(SequentialDesign(direction="maximize"), mirrored, ["a", "b", "c"], "base")
    assert (lo.winner, lo.looks, lo.runs, lo.stop) == (hi.winner, hi.looks, hi.runs, hi.stop)
    for key, c in lo.comparisons.items():
        m = hi.comparisons[key]
        assert (c.outcome, c.claim_look) == (m.outcome, m.claim_look)
        assert m.validation.mean == pytest.approx(-c.validation.mean)
        assert (m.validation.low, m.validation.high) == pytest.approx(
            (-c.validation.high, -c.validation.low)
        )


def test_a_diverging_contender_ranks_worst_and_is_counted() -> None:
    scores = _noisy({"a": 0.15, "b": 0.15, "base": 0.16}, 0.004, 12, seed=7)
    scores["b"] = [(NAN, NAN)] * 12  # b diverges every time
    state = race(DESIGN, scores, ["a", "b"], "base")
    assert state.winner == "a"
    b = state.contenders["b"]
    assert b.diverged == b.seeds and b.divergence_rate == 1.0
    assert math.isnan(b.validation_mean)
    # every seed: b = the worst finite score + 0.005, so a leads it by at least 0.005
    c = state.comparisons["b"]
    assert c.outcome == "better" and c.validation.mean <= -0.005


def test_eliminated_candidates_leave_and_say_by_whom() -> None:
    scores = _noisy({"a": 0.150, "b": 0.152, "c": 0.30, "base": 0.20}, 0.003, 12, seed=8)
    state = race(DESIGN, scores, ["a", "b", "c"], "base")
    c = state.contenders["c"]
    assert c.beaten_by in ("a", "b") and c.left_at == 4 and c.seeds == 4
    assert state.comparisons["c"].outcome == "better"
    assert {state.winner, state.runner_up} == {"a", "b"}


def test_bad_contenders() -> None:
    with pytest.raises(ValueError, match="candidate"):
        race(DESIGN, {}, [])
    with pytest.raises(ValueError, match="distinct"):
        race(DESIGN, {}, ["a", "b"], "a")


def test_a_near_tie_is_given_up_as_futile() -> None:
    scores = _noisy({"a": 0.150, "b": 0.1505, "base": 0.20}, 0.008, 16, seed=9)
    state = race(DESIGN, scores, ["a", "b"], "base")
    runner = state.comparisons[state.runner_up or ""]
    assert runner.outcome == "unresolved" and runner.reason == "futile"
    assert state.done and state.looks < 16
    assert state.comparisons["base"].outcome == "better"
    patient = race(SequentialDesign(futility_z=None), scores, ["a", "b"], "base")
    assert patient.looks == 16 and patient.stop == "maximum"
    assert patient.comparisons[patient.runner_up or ""].reason == "maximum"
    assert patient.runs > state.runs


def test_the_baseline_is_resolved_against_whichever_candidate_wins() -> None:
    """The baseline stays while any candidate still racing is open against it, so the
    winner's comparison with the baseline never ends as "left"."""
    means = {"a": 0.150, "b": 0.152, "base": 0.158}
    for seed in range(40):
        state = race(DESIGN, _noisy(means, 0.006, 16, seed=100 + seed), ["a", "b"], "base")
        base = state.comparisons["base"]
        assert base.reason in (None, "maximum", "futile"), (seed, base)
        if base.reason is None:
            assert base.outcome in ("better", "worse", "equivalent")
