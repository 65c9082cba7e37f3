"""The launcher's one display of a sweep run by jobs, read from the storage: what the jobs
did since the last look (trials started, epochs reported, trials and runs ended) becomes
the `studies.run.SweepObserver` calls that the CLI draws, each labelled with the worker
whose job ran it (`studies.attrs.JOB`). Also the counts the launcher decides by.

Pure apart from the observer: it is handed the trials as Optuna returns them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from studies import attrs
from studies.run.observer import SweepObserver

__all__ = ["Counts", "Progress", "count_search", "failure_streak", "run_label"]

_ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class Counts:
    """The search study's trials by what they mean to the budget."""

    done: int = 0  # COMPLETE and PRUNED: the budget's
    running: int = 0
    waiting: int = 0  # queued: granted to the jobs, not taken yet
    streak: int = 0  # diverged trials in a row (failures with a reason)
    last_failure: str | None = None  # the last diverged trial's reason


def failure_streak(trials: Sequence[FrozenTrial]) -> tuple[int, str | None]:
    """Trials that failed with a reason (diverged, a command's failure) in a row, the
    latest ended first, and the latest one's reason. A trial failed because its worker was
    stopped or died has no reason: it neither counts nor breaks the run."""
    ended = [t for t in trials if t.state in _ENDED and t.datetime_complete is not None]
    ended.sort(key=lambda t: (t.datetime_complete, t.number))
    streak, last = 0, None
    for trial in reversed(ended):
        if trial.state != TrialState.FAIL:
            break
        reason = trial.user_attrs.get(attrs.FAIL_REASON)
        if not reason:
            continue
        streak += 1
        last = last or str(reason)
    return streak, last


def count_search(trials: Sequence[FrozenTrial]) -> Counts:
    """The `Counts` of the search study's ``trials``."""
    states = [t.state for t in trials]
    streak, last = failure_streak(trials)
    return Counts(
        done=sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
        running=states.count(TrialState.RUNNING),
        waiting=states.count(TrialState.WAITING),
        streak=streak,
        last_failure=last,
    )


def run_label(trial: FrozenTrial) -> str | None:
    """The display label of a replicate's trial (None: not a job, e.g. a duplicate)."""
    stored = trial.user_attrs
    key, seed = stored.get(attrs.CONFIG_KEY), stored.get(attrs.SEED)
    if key is None or seed is None or stored.get(attrs.DUPLICATE_OF) is not None:
        return None
    if stored.get(attrs.ROLE) == attrs.ROLE_SEARCH_BASELINE:
        return "baseline"
    return f"confirm {key} seed {seed}"


@dataclass
class _Seen:
    started: bool = False
    epochs: int = 0
    ended: bool = False


@dataclass
class Progress:
    """Tells ``observer_for(job id)`` (None: the job is unknown) what changed in the
    studies since the last `search` / `replicates` call."""

    metric: str
    epochs: int  # a search trial's epochs when its config does not say
    observer_for: Callable[[str | None], SweepObserver | None]
    ran: int = 0  # search trials that ended since the first look
    replicates: int = 0  # runs of the companion study that ended since the first look
    _search: dict[int, _Seen] = field(default_factory=dict)
    _runs: dict[int, _Seen] = field(default_factory=dict)
    _primed: set[str] = field(default_factory=set)

    def search(self, trials: Sequence[FrozenTrial]) -> None:
        """The search study as it is now."""
        first = "search" not in self._primed
        self._primed.add("search")
        for trial in trials:
            seen = self._search.setdefault(trial.number, _Seen())
            if first and trial.state in _ENDED:
                seen.started = seen.ended = True  # ended before this launch: not news
                continue
            if seen.ended or trial.state == TrialState.WAITING:
                continue
            job = trial.user_attrs.get(attrs.JOB)
            if trial.state == TrialState.RUNNING and (job is None or not trial.params):
                continue  # taken a moment ago: its job and values are recorded next
            observer = self.observer_for(None if job is None else str(job))
            if not seen.started:
                seen.started = True
                if observer is not None:
                    observer.trial_started(trial.number, dict(trial.params), self._epochs(trial))
            for step in sorted(trial.intermediate_values)[seen.epochs :]:
                seen.epochs += 1
                value = trial.intermediate_values[step]
                if observer is not None and math.isfinite(value):
                    observer.epoch_finished(trial.number, step, {self.metric: value})
            if trial.state in _ENDED:
                seen.ended = True
                self.ran += 1
                if observer is not None:
                    reason = trial.user_attrs.get(attrs.FAIL_REASON)
                    observer.trial_finished(
                        trial.number,
                        trial.state.name,
                        trial.value,
                        None if reason is None else str(reason),
                    )

    def replicates_of(self, trials: Sequence[FrozenTrial]) -> None:
        """The companion study (baseline and confirmation runs) as it is now."""
        first = "runs" not in self._primed
        self._primed.add("runs")
        for trial in trials:
            label = run_label(trial)
            seen = self._runs.setdefault(trial.number, _Seen())
            if label is None or seen.ended or trial.state == TrialState.WAITING:
                continue
            if first and trial.state in _ENDED:
                seen.started = seen.ended = True
                continue
            job = trial.user_attrs.get(attrs.JOB)
            if job is None and trial.state == TrialState.RUNNING:
                continue
            observer = self.observer_for(None if job is None else str(job))
            if not seen.started:
                seen.started = True
                if observer is not None:
                    params = dict(trial.user_attrs.get(attrs.PARAMS) or {})
                    observer.run_started(label, params, self._epochs(trial))
            if trial.state in _ENDED:
                seen.ended = True
                self.replicates += 1
                if observer is not None:
                    diverged = trial.user_attrs.get(attrs.NON_FINITE)
                    state = "FAIL" if diverged else trial.state.name
                    reason = None if diverged is None else str(diverged)
                    observer.run_finished(label, state, trial.value, reason)

    def _epochs(self, trial: FrozenTrial) -> int:
        config = trial.user_attrs.get(attrs.CONFIG)
        if isinstance(config, dict) and isinstance(config.get("epochs"), int):
            return int(config["epochs"])
        return self.epochs
