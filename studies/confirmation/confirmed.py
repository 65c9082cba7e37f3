"""The confirmation as stored: the companion study of replicate runs, read into a race.

A sweep's study ``NAME`` holds the search's trials only. Beside it, in the same storage,
the companion study ``NAME:confirm`` (':' cannot occur in a study name, so it never
collides; `salsweep studies list` hides it) holds every run outside the search, one trial
each, with user attributes:

- ``config_key``: ``baseline`` or ``trial-<n>`` (the search trial whose config it runs);
- ``seed``: the training seed; ``role``: ``search-baseline`` (the SSI baseline with the
  search's seed) or ``confirmation`` (a replicate of the race);
- a replicate's ``seed_index`` s (training seed = the search's + 1 + s, data seed ``data_seed``
  = the base's + 1 + s: replicate s of every contender shares both), its value (the
  objective on validation at the selected epoch: what the race decides on) and
  ``test_value`` (the test split's counterpart at that epoch: reported only);
- ``params`` (the searched values), ``mlflow_run_id``, ``metric`` (what the value is);
- a replicate that diverged ends PRUNED with ``non_finite`` set: done, and counted as the
  worst of its seed (studies.confirmation.replicates).

The companion study itself keeps ``race``: the design, candidates and baseline as the race
started (fixed from then on, studies.run.race_rounds). The verdict is `race` replayed on the
stored replicates (studies.confirmation.sequential: pure, so a read gives what the sweep
decided).

Reading takes the study as a record (studies.store.records), read once: from the tables
without Optuna, as `salsweep studies show` does, or from a sweep's Optuna study as it
closes (`as_record`). Nothing here touches Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studies import attrs
from studies.attrs import BASELINE_KEY, ROLE_CONFIRMATION, ROLE_SEARCH_BASELINE, config_label
from studies.confirmation.replicates import Direction
from studies.confirmation.sequential import (
    Comparison,
    ContenderRecord,
    RaceState,
    SequentialDesign,
    race,
)
from studies.confirmation.stats import Estimate, estimate, rank
from studies.confirmation.words import race_sentences
from studies.store import COMPLETE, PRUNED, StudyRecord, TrialRecord
from trainer.errors import UserError

__all__ = [
    "ConfirmError",
    "Confirmation",
    "ConfirmedConfig",
    "RaceSetup",
    "Replicate",
    "load_confirmation",
    "race_scores",
    "race_setup",
    "race_state",
    "replicates",
    "search_baseline_trial",
]


class ConfirmError(UserError, ValueError):
    """Nothing to confirm (no complete search trial), or a race that cannot go on as asked
    (another design than the one it started with, replicates it cannot use)."""


@dataclass(frozen=True)
class Replicate:
    """One finished run of the companion study."""

    number: int  # trial number in the companion study
    key: str
    seed: int  # the training seed
    index: int | None  # the race's seed index (None: the search baseline, or an old run)
    data_seed: int | None
    role: str
    value: float  # validation (the search baseline: its search score); NaN: diverged
    test: float  # the test split's counterpart; NaN: diverged or not reported
    params: dict[str, Any]
    method: str | None  # the loss method
    mlflow_run_id: str | None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _as_replicate(trial: TrialRecord) -> Replicate | None:
    stored = trial.user_attrs
    if attrs.CONFIG_KEY not in stored or attrs.SEED not in stored:
        return None  # not a replicate (see studies.run.replicates: a trial that found no job)
    if trial.state == COMPLETE and trial.value is not None:
        value = float(trial.value)
    elif trial.state == PRUNED and stored.get(attrs.NON_FINITE):
        value = math.nan
    else:
        return None
    index = stored.get(attrs.SEED_INDEX)
    data_seed = stored.get(attrs.DATA_SEED)
    return Replicate(
        number=trial.number,
        key=str(stored[attrs.CONFIG_KEY]),
        seed=int(stored[attrs.SEED]),
        index=int(index) if index is not None else None,
        data_seed=int(data_seed) if data_seed is not None else None,
        role=str(stored.get(attrs.ROLE, ROLE_CONFIRMATION)),
        value=value,
        test=_float(stored.get(attrs.TEST_VALUE)) if math.isfinite(value) else math.nan,
        params=dict(stored.get(attrs.PARAMS) or {}),
        method=stored.get(attrs.METHOD),
        mlflow_run_id=stored.get(attrs.MLFLOW_RUN_ID),
    )


def replicates(companion: StudyRecord, role: str | None = None) -> list[Replicate]:
    """The finished replicates (of ``role``) of the companion study, the first one of
    each (key, seed, role): two workers racing for one job never count it twice."""
    seen: dict[tuple[str, int, str], Replicate] = {}
    for trial in companion.get_trials((COMPLETE, PRUNED)):
        rep = _as_replicate(trial)
        if rep is not None and (role is None or rep.role == role):
            seen.setdefault((rep.key, rep.seed, rep.role), rep)
    return list(seen.values())


def search_baseline_trial(study: StudyRecord) -> TrialRecord | None:
    """The latest trial of the SSI baseline's search run (any state), or None."""
    companion = study.companion
    if companion is None:
        return None
    runs = [t for t in companion.trials if t.user_attrs.get(attrs.ROLE) == ROLE_SEARCH_BASELINE]
    if not runs:
        return None
    done = [t for t in runs if t.state == COMPLETE]
    return max(done or runs, key=lambda t: t.number)


# ------------------------------------------------------------------------ the race stored


@dataclass(frozen=True)
class RaceSetup:
    """What a race is fixed by when it starts: its design (the spec's ``confirm`` keys),
    its candidates (config keys, best search value first) and its baseline (or None)."""

    top_k: int
    initial_seeds: int
    max_seeds: int
    indifference_zone: float
    alpha: float
    candidates: tuple[str, ...]
    baseline: str | None

    def design(self, direction: Direction) -> SequentialDesign:
        return SequentialDesign(
            n0=self.initial_seeds,
            n_max=self.max_seeds,
            delta=self.indifference_zone,
            alpha=self.alpha,
            direction=direction,
        )

    @property
    def design_keys(self) -> dict[str, Any]:
        """The design as the spec's ``confirm`` keys."""
        return {
            "top_k": self.top_k,
            "initial_seeds": self.initial_seeds,
            "max_seeds": self.max_seeds,
            "indifference_zone": self.indifference_zone,
            "alpha": self.alpha,
        }

    def to_attr(self) -> dict[str, Any]:
        """The companion study's ``race`` attribute."""
        return {
            "design": self.design_keys,
            "candidates": list(self.candidates),
            "baseline": self.baseline,
        }

    @classmethod
    def from_attr(cls, stored: Mapping[str, Any]) -> RaceSetup:
        design = dict(stored["design"])
        baseline = stored.get("baseline")
        return cls(
            top_k=int(design["top_k"]),
            initial_seeds=int(design["initial_seeds"]),
            max_seeds=int(design["max_seeds"]),
            indifference_zone=float(design["indifference_zone"]),
            alpha=float(design["alpha"]),
            candidates=tuple(str(k) for k in stored["candidates"]),
            baseline=None if baseline is None else str(baseline),
        )


def race_setup(companion: StudyRecord) -> RaceSetup | None:
    """The race the companion study records (None: no race started)."""
    stored = companion.user_attrs.get(attrs.RACE)
    return None if not isinstance(stored, Mapping) else RaceSetup.from_attr(stored)


def race_scores(reps: list[Replicate], setup: RaceSetup) -> dict[str, list[tuple[float, float]]]:
    """Per contender, its ``(validation, test)`` scores by seed index, up to its first
    missing index (a replicate still running, or not queued yet: the race reads what is
    contiguous). Replicates without a seed index (not the race's) are left out."""
    by_key: dict[str, dict[int, Replicate]] = {}
    for rep in reps:
        if rep.index is not None:
            by_key.setdefault(rep.key, {}).setdefault(rep.index, rep)
    contenders = [*setup.candidates, *([setup.baseline] if setup.baseline else [])]
    scores: dict[str, list[tuple[float, float]]] = {}
    for key in contenders:
        found = by_key.get(key, {})
        seq: list[tuple[float, float]] = []
        while len(seq) in found:
            rep = found[len(seq)]
            seq.append((rep.value, rep.test))
        scores[key] = seq
    return scores


def race_state(companion: StudyRecord, direction: Direction) -> RaceState | None:
    """The race replayed on the stored replicates (None: no race started)."""
    setup = race_setup(companion)
    if setup is None:
        return None
    scores = race_scores(replicates(companion, ROLE_CONFIRMATION), setup)
    return race(setup.design(direction), scores, setup.candidates, setup.baseline)


# ------------------------------------------------------------------------ the verdict


@dataclass(frozen=True)
class ConfirmedConfig:
    """One contender of the race: its replicates as the race counted them (seed index ->
    score, NaN: diverged), their estimates and its comparison with the winner."""

    key: str
    label: str
    method: str | None  # the loss method
    params: dict[str, Any]
    validation: dict[int, float]  # seed index -> validation score (NaN: diverged)
    test: dict[int, float]  # seed index -> test score (NaN: diverged or not reported)
    training_seeds: dict[int, int]  # seed index -> training seed
    data_seeds: dict[int, int]  # seed index -> data seed (empty for a command)
    validation_estimate: Estimate  # mean and 95% t-interval of the finite scores
    test_estimate: Estimate
    contender: ContenderRecord  # seeds, divergences, in the race or not
    comparison: Comparison | None  # the winner against it; None for the winner
    mlflow_run_ids: tuple[str, ...]

    @property
    def is_baseline(self) -> bool:
        return self.key == BASELINE_KEY

    @property
    def seeds(self) -> int:
        return self.contender.seeds

    @property
    def diverged(self) -> int:
        return self.contender.diverged


@dataclass(frozen=True)
class Confirmation:
    """The race: every contender (the winner first, then by validation mean, the baseline
    among them) and its state (studies.confirmation.sequential.RaceState)."""

    study_name: str
    metric: str  # the objective: validation decides
    test_metric: str  # its test-split counterpart: reports
    direction: Direction
    configs: list[ConfirmedConfig]
    state: RaceState

    def config(self, key: str) -> ConfirmedConfig:
        return next(c for c in self.configs if c.key == key)

    @property
    def winner(self) -> ConfirmedConfig | None:
        return None if self.state.winner is None else self.config(self.state.winner)

    @property
    def baseline(self) -> ConfirmedConfig | None:
        return next((c for c in self.configs if c.is_baseline), None)

    @property
    def runner_up(self) -> ConfirmedConfig | None:
        key = self.state.runner_up
        return None if key is None else self.config(key)

    @property
    def labels(self) -> dict[str, str]:
        return {c.key: c.label for c in self.configs}

    def sentences(self) -> list[str]:
        """The verdict in words (studies.confirmation.words.race_sentences): the test, the
        seeds, the Holm adjustment, the intervals and the split, one sentence a line."""
        return race_sentences(self.state, self.metric, self.labels)


def load_confirmation(record: StudyRecord) -> Confirmation | None:
    """The race of ``record`` replayed from its companion study; None when no race started
    or no replicate of it has finished."""
    companion = record.companion
    if companion is None:
        return None
    setup = race_setup(companion)
    reps = [r for r in replicates(companion, ROLE_CONFIRMATION) if r.index is not None]
    if setup is None or not reps:
        return None
    direction: Direction = "maximize" if record.direction == "maximize" else "minimize"
    state = race(
        setup.design(direction), race_scores(reps, setup), setup.candidates, setup.baseline
    )
    by_key: dict[str, dict[int, Replicate]] = {}
    for rep in reps:
        by_key.setdefault(rep.key, {}).setdefault(rep.index or 0, rep)
    configs = []
    for key, contender in state.contenders.items():
        counted = [by_key.get(key, {}).get(i) for i in range(contender.seeds)]
        runs = [r for r in counted if r is not None]
        first = runs[0] if runs else None
        method = first.method if first is not None else None
        configs.append(
            ConfirmedConfig(
                key=key,
                label=config_label(key, method),
                method=method,
                params=dict(first.params) if first is not None else {},
                validation={i: r.value for i, r in enumerate(counted) if r is not None},
                test={i: r.test for i, r in enumerate(counted) if r is not None},
                training_seeds={i: r.seed for i, r in enumerate(counted) if r is not None},
                data_seeds={
                    i: r.data_seed
                    for i, r in enumerate(counted)
                    if r is not None and r.data_seed is not None
                },
                validation_estimate=estimate(r.value for r in runs),
                test_estimate=estimate(r.test for r in runs if math.isfinite(r.value)),
                contender=contender,
                comparison=state.comparisons.get(key),
                mlflow_run_ids=tuple(r.mlflow_run_id for r in runs if r.mlflow_run_id),
            )
        )
    order = rank({c.key: c.validation_estimate for c in configs}, direction)
    if state.winner is not None:
        order = [state.winner, *(k for k in order if k != state.winner)]
    by_order = {c.key: c for c in configs}
    metric = str(
        companion.user_attrs.get(attrs.SEARCH_METRIC)
        or record.user_attrs.get(attrs.OBJECTIVE_METRIC)
        or companion.user_attrs.get(attrs.COMPANION_METRIC)
    )
    test_metric = str(
        companion.user_attrs.get(attrs.TEST_METRIC) or attrs.confirmation_metric(metric)
    )
    return Confirmation(
        study_name=record.study_name,
        metric=metric,
        test_metric=test_metric,
        direction=direction,
        configs=[by_order[k] for k in order],
        state=state,
    )
