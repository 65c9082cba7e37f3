"""The confirmation as stored: the companion study of replicate runs, read into a verdict.

A sweep's study ``NAME`` holds the search's trials only. Beside it, in the same storage,
the companion study ``NAME:confirm`` (':' cannot occur in a study name, so it never
collides; `salsweep studies list` hides it) holds every run outside the search, one trial
each, with user attributes:

- ``config_key``: ``baseline`` or ``trial-<n>`` (the search trial whose config it runs);
- ``seed``: the training seed; ``role``: ``search-baseline`` (the SSI baseline with the
  search's seed, scored on validation like a trial) or ``confirmation`` (a further seed,
  scored on the test split);
- ``params`` (the searched values), ``mlflow_run_id``, ``metric`` (what the value is);
- a replicate that diverged ends PRUNED with ``non_finite`` set: done, and counted as NaN.

Reading takes the study as a record (studies.store.records), read once: from the tables
without Optuna, as `salsweep studies show` does, or from a sweep's Optuna study as it
closes (`as_record`). Nothing here touches Optuna.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studies import attrs
from studies.attrs import BASELINE_KEY, ROLE_CONFIRMATION, ROLE_SEARCH_BASELINE, config_label
from studies.confirmation.stats import (
    Direction,
    Estimate,
    Verdict,
    estimate,
    paired_difference,
    rank,
    verdict,
)
from studies.store import COMPLETE, PRUNED, StudyRecord, TrialRecord
from trainer.errors import UserError

if TYPE_CHECKING:
    pass

__all__ = [
    "ConfirmError",
    "Confirmation",
    "ConfirmedConfig",
    "Replicate",
    "load_confirmation",
    "replicates",
    "search_baseline_trial",
]


class ConfirmError(UserError, ValueError):
    """Nothing to confirm: the study has no complete search trial."""


@dataclass(frozen=True)
class Replicate:
    """One finished run of the companion study."""

    number: int  # trial number in the companion study
    key: str
    seed: int
    role: str
    value: float  # NaN when the run diverged
    params: dict[str, Any]
    method: str | None  # the loss method
    mlflow_run_id: str | None


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
    return Replicate(
        number=trial.number,
        key=str(stored[attrs.CONFIG_KEY]),
        seed=int(stored[attrs.SEED]),
        role=str(stored.get(attrs.ROLE, ROLE_CONFIRMATION)),
        value=value,
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


@dataclass(frozen=True)
class ConfirmedConfig:
    """One configuration of the confirmation: its replicates and their statistics."""

    key: str
    label: str
    method: str | None  # the loss method
    params: dict[str, Any]
    values: dict[int, float]  # training seed -> test value (NaN: diverged)
    estimate: Estimate
    vs_baseline: Estimate | None  # this - baseline over shared seeds; None for the baseline
    mlflow_run_ids: tuple[str, ...]

    @property
    def is_baseline(self) -> bool:
        return self.key == BASELINE_KEY


@dataclass(frozen=True)
class Confirmation:
    """Every confirmed configuration, best mean first (the baseline among them), and the
    verdict over the candidates."""

    study_name: str
    metric: str
    direction: Direction
    configs: list[ConfirmedConfig]
    verdict: Verdict

    def config(self, key: str) -> ConfirmedConfig:
        return next(c for c in self.configs if c.key == key)

    @property
    def winner(self) -> ConfirmedConfig | None:
        return None if self.verdict.winner is None else self.config(self.verdict.winner)

    @property
    def baseline(self) -> ConfirmedConfig | None:
        return next((c for c in self.configs if c.is_baseline), None)

    @property
    def runner_up(self) -> ConfirmedConfig | None:
        key = self.verdict.runner_up
        return None if key is None else self.config(key)


def load_confirmation(record: StudyRecord) -> Confirmation | None:
    """The confirmation of ``record`` from its companion study; None when no confirmation
    replicate has finished."""
    companion = record.companion
    if companion is None:
        return None
    reps = replicates(companion, ROLE_CONFIRMATION)
    if not reps:
        return None
    direction: Direction = "maximize" if record.direction == "maximize" else "minimize"
    samples: dict[str, dict[int, float]] = {}
    first: dict[str, Replicate] = {}
    runs: dict[str, list[str]] = {}
    for rep in reps:
        samples.setdefault(rep.key, {})[rep.seed] = rep.value
        first.setdefault(rep.key, rep)
        if rep.mlflow_run_id:
            runs.setdefault(rep.key, []).append(rep.mlflow_run_id)
    baseline = BASELINE_KEY if BASELINE_KEY in samples else None
    estimates = {key: estimate(values.values()) for key, values in samples.items()}
    configs = []
    for key in rank(estimates, direction):
        values = dict(sorted(samples[key].items()))
        rep = first[key]
        configs.append(
            ConfirmedConfig(
                key=key,
                label=config_label(key, rep.method),
                method=rep.method,
                params=rep.params,
                values=values,
                estimate=estimates[key],
                vs_baseline=(
                    paired_difference(values, samples[baseline])
                    if baseline is not None and key != baseline
                    else None
                ),
                mlflow_run_ids=tuple(runs.get(key, ())),
            )
        )
    metric = str(
        companion.user_attrs.get(attrs.COMPANION_METRIC)
        or record.user_attrs.get(attrs.OBJECTIVE_METRIC)
    )
    return Confirmation(
        study_name=record.study_name,
        metric=metric,
        direction=direction,
        configs=configs,
        verdict=verdict(samples, direction, baseline),
    )
