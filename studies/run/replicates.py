"""Runs outside the search: the SSI baseline's search run and the confirmation's replicates.

Over 400 lines: the job queue and the runner that pops it share the job's identity and
claim rules (a duplicate never runs, a diverged job is done); split, each would re-read
the other's private attributes.

Each run is one trial of the companion study ``NAME:confirm`` (see
studies.confirmation.confirmed), never of the study the sampler and pruner read. A job
(config key, training seed, role) is enqueued as a WAITING trial carrying its runnable
config; ``study.optimize`` on the companion study pops the queue, so that

- a job is claimed atomically (several workers never run one job at once; should two
  launches enqueue the same job in a race, only the first copy runs: a later copy is
  pruned with ``duplicate_of`` set, and the reader counts the first result only),
- a running replicate has heartbeats: one whose worker died is failed and queued again,
- Ctrl-C fails the running replicate (and closes its MLflow run), and the next call runs
  only what is missing: jobs with a COMPLETE (or diverged) trial are never run again, jobs
  still WAITING are run, jobs whose trial FAILED are queued again.

Which replicates the confirmation needs, round by round, is studies.run.race_rounds'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import optuna
from optuna.trial import FrozenTrial, TrialState

from studies import attrs
from studies.attrs import (
    BASELINE_KEY,
    ROLE_SEARCH_BASELINE,
    config_label,
    confirmation_metric,
)
from studies.run.commands import CommandFailed, command_params, command_train
from studies.run.objective import close_dead_trials, epoch_selection, objective_value
from studies.run.runner import (
    EpochCallback,
    RunEnding,
    SweepRuns,
    TrialPlan,
    builtin_params,
    optimize,
    run_trial,
)
from studies.run.scored import logging_score
from studies.store import companion_study
from studies.tracking import (
    CONFIRM_TEST_METRIC,
    LABEL_TAG,
    ROLE_TAG,
    STATE_TAG,
    STUDY_TAG,
    RunLog,
    Tracker,
)
from sweeps import SweepSpec
from trainer import EpochSelection, NonFiniteLoss, TrainConfig, fit

if TYPE_CHECKING:
    from trainer import RunResult

__all__ = [
    "CONFIG_TAG",
    "SEED_TAG",
    "ReplicateJob",
    "ReplicateRunner",
    "baseline_search_job",
    "claimed_jobs",
    "enqueue_jobs",
    "run_jobs",
    "selected_report",
    "top_trials",
]

CONFIG_TAG = "salsweep.config"
SEED_TAG = "salsweep.seed"
_JobId = tuple[str, int, str]


@dataclass(frozen=True)
class ReplicateJob:
    """One run outside the search: ``config`` (its training seed set) under ``key``; for
    a command spec, no config: the program runs with ``params`` and ``seed``."""

    key: str  # "baseline" or "trial-<n>"
    seed: int
    role: str  # ROLE_SEARCH_BASELINE or ROLE_CONFIRMATION
    config: TrainConfig | None
    params: dict[str, Any]  # the searched values (the baseline: its loss method)
    index: int | None = None  # a confirmation replicate's seed index (studies.run.race_rounds)
    data_seed: int | None = None  # its data seed (None: the config's, or a command's own)

    @property
    def id(self) -> _JobId:
        return (self.key, self.seed, self.role)

    def user_attrs(self) -> dict[str, Any]:
        method = None if self.config is None else self.config.loss.method
        stored: dict[str, Any] = {
            attrs.CONFIG_KEY: self.key,
            attrs.SEED: self.seed,
            attrs.ROLE: self.role,
            attrs.PARAMS: self.params,
            attrs.LABEL: config_label(self.key, method),
            **{f"{attrs.PARAM_PREFIX}{name}": value for name, value in self.params.items()},
        }
        if self.index is not None:
            stored[attrs.SEED_INDEX] = self.index
        if self.data_seed is not None:
            stored[attrs.DATA_SEED] = self.data_seed
        if self.config is not None:
            stored[attrs.METHOD] = self.config.loss.method
            stored[attrs.CONFIG] = self.config.model_dump(mode="json")
        return stored


def _job_id(trial: optuna.Trial | FrozenTrial) -> _JobId | None:
    stored = trial.user_attrs
    if attrs.CONFIG_KEY not in stored or attrs.SEED not in stored:
        return None
    return (str(stored[attrs.CONFIG_KEY]), int(stored[attrs.SEED]), str(stored.get(attrs.ROLE, "")))


def _label(key: str, seed: int, role: str) -> str:
    if role == ROLE_SEARCH_BASELINE:
        return "baseline"
    return f"confirm {key} seed {seed}"


def _run_name(key: str, seed: int, role: str) -> str:
    if role == ROLE_SEARCH_BASELINE:
        return f"baseline-seed{seed}"
    return f"confirm-{key}-seed{seed}"


def baseline_search_job(spec: SweepSpec) -> ReplicateJob:
    """The SSI baseline with the search's training seed, scored on validation."""
    config = spec.baseline_config()
    return ReplicateJob(
        key=BASELINE_KEY,
        seed=spec.training_seed(),
        role=ROLE_SEARCH_BASELINE,
        config=config.model_copy(update={"seed": spec.training_seed()}),
        params={"loss.method": config.loss.method},
    )


def top_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE trials with distinct params (finite values; the earlier
    trial on a tie and for a repeated configuration)."""
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    done.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
    chosen: list[FrozenTrial] = []
    seen: set[str] = set()
    for trial in done:
        signature = repr(sorted(trial.params.items()))
        if signature in seen:
            continue
        seen.add(signature)
        chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


@dataclass
class ReplicateRunner:
    """The objective of the companion study: runs the job a popped trial carries.

    The search-baseline run is scored like a search trial (the objective on validation,
    logged as ``optuna.value``). A confirmation replicate is scored the same way, on
    validation at the epoch the objective selects (its trial's value: the race decides on
    it; logged as ``confirm.value``, not ``optuna.value``, which ranks the search's trials
    in the MLflow UI), and tested with that epoch's weights: the test-split counterpart is
    kept beside it (user attribute ``test_value``, metric ``confirm.test_value``), reported
    only.
    """

    runs: SweepRuns
    runs_dir: Path
    finished: int = 0

    @property
    def spec(self) -> SweepSpec:
        return self.runs.spec

    def __call__(self, trial: optuna.Trial) -> float:
        job = _job_id(trial)
        if job is None:
            # The queue was emptied by another worker between our look and our pop.
            trial.study.stop()
            raise optuna.TrialPruned("no replicate was waiting")
        first = _first_claim(trial, job)
        if first is not None:
            # Two launches queued this job at once: the earlier trial runs it, not this one.
            trial.set_user_attr(attrs.DUPLICATE_OF, first)
            raise optuna.TrialPruned(f"a duplicate of trial {first}, which runs this job")
        key, seed, role = job
        label, name = _label(key, seed, role), _run_name(key, seed, role)
        params = dict(trial.user_attrs.get(attrs.PARAMS) or {})
        out_dir = self.runs_dir / name
        observer = self.runs.observer
        searching = role == ROLE_SEARCH_BASELINE
        spec = self.spec

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            if observer is not None:
                observer.run_epoch_finished(label, epoch, metrics)

        def on_finish(ending: RunEnding) -> None:
            self.finished += 1
            if observer is not None:
                reason = ending.reason if ending.state != "COMPLETE" else None
                observer.run_finished(label, ending.state or "FAIL", ending.value, reason)

        if spec.command is not None:
            # The objective's metric as the program reports it, for every replicate.
            values = {**spec.fixed(), **params}
            run_params, config_yaml = command_params(spec.command, values, seed)
            epochs = spec.command.steps or 0
            train = self._command_train(trial, values, seed, out_dir)
        else:
            config = TrainConfig.model_validate(trial.user_attrs[attrs.CONFIG])
            run_params, config_yaml = builtin_params(config)
            epochs = config.epochs
            train = self._builtin_train(trial, config, out_dir, searching)

        if not searching:  # the verdict's score, as a column of the runs view
            train = logging_score(train)

        def on_start() -> None:
            if observer is not None:
                observer.run_started(label, params, epochs)

        plan = TrialPlan(
            run_name=name,
            out_dir=out_dir,
            tags={
                "mlflow.parentRunId": self.runs.parent_run_id,
                STATE_TAG: "RUNNING",
                ROLE_TAG: role,
                CONFIG_TAG: key,
                LABEL_TAG: config_label(key, trial.user_attrs.get(attrs.METHOD)),
                SEED_TAG: str(seed),
                STUDY_TAG: self.runs.study_name,
            },
            params=run_params,
            config_yaml=config_yaml,
            train=train,
            on_epoch=on_epoch,
            on_start=on_start,
            on_finish=on_finish,
            log_value=searching,
            log_epochs=spec.command is None or spec.command.metrics != "mlflow",
        )
        return run_trial(self.runs, trial, plan)

    def _builtin_train(
        self, trial: optuna.Trial, config: TrainConfig, out_dir: Path, searching: bool
    ) -> Callable[[EpochCallback, RunLog, RunEnding], float]:
        objective = self.spec.objective

        def train(on_epoch_end: EpochCallback, run: RunLog, ending: RunEnding) -> float:
            try:
                result = _fit_or_diverged(
                    config.model_copy(update={"output_dir": out_dir}),
                    on_epoch_end,
                    select=epoch_selection(objective),
                    evaluate_test=not searching,
                )
                if not searching:
                    # Test metrics at the step of the epoch whose weights were tested.
                    run.log_epoch(result.best_epoch, result.test)
                value = self._validation(result.history)
            except _Diverged as exc:
                _diverged(trial, ending, exc)
            trial.set_user_attr(attrs.COMPANION_METRIC, objective.metric)
            if not searching:
                self._record_test(trial, run, self._test(result.history, result.test))
            return value

        return train

    def _command_train(
        self, trial: optuna.Trial, values: dict[str, Any], seed: int, out_dir: Path
    ) -> Callable[[EpochCallback, RunLog, RunEnding], float]:
        objective = self.spec.objective
        tested: list[tuple[str, float]] = []

        def score(history: list[dict[str, float]]) -> float:
            value = self._validation(history)
            tested.append(self._test(history, {}))
            return value

        command = command_train(self.runs, trial.number, values, seed, out_dir, score)

        def train(on_epoch_end: EpochCallback, run: RunLog, ending: RunEnding) -> float:
            try:
                value = command(on_epoch_end, run, ending)
            except (_Diverged, CommandFailed) as exc:
                # A result, counted as NaN: the same seed would fail again, not re-run.
                _diverged(trial, ending, exc)
            trial.set_user_attr(attrs.COMPANION_METRIC, objective.metric)
            if tested:
                self._record_test(trial, run, tested[-1])
            return value

        return train

    def _validation(self, history: list[dict[str, float]]) -> float:
        """The objective on validation at the selected epoch, as the search scores a trial
        (a replicate's value: it decides the race)."""
        objective = self.spec.objective
        try:
            value = objective_value(
                history, objective.metric, objective.direction, objective.reduce
            )
        except ValueError as exc:
            raise _Diverged(str(exc)) from None
        if not math.isfinite(value):
            raise _Diverged(f"{objective.metric} is not finite ({value})")
        return value

    def _test(self, history: list[dict[str, float]], test: dict[str, float]) -> tuple[str, float]:
        """(metric, value): the objective's test-split counterpart at the selected epoch
        (``test``: the trainer's test metrics of the selected weights; a command's own
        report of it at the selected step); a metric with no test counterpart (e.g.
        ``train/...``) is its own; NaN when the run reported none (it only reports)."""
        objective = self.spec.objective
        metric = confirmation_metric(objective.metric)
        if metric in test:
            return metric, float(test[metric])
        if metric == objective.metric:
            return metric, self._validation(history)
        selected = selected_report(history, objective.metric, objective.direction, objective.reduce)
        if selected is None:
            return metric, math.nan
        return metric, float(selected.get(metric, math.nan))

    def _record_test(self, trial: optuna.Trial, run: RunLog, tested: tuple[str, float]) -> None:
        metric, value = tested
        trial.set_user_attr(attrs.TEST_METRIC, metric)
        trial.set_user_attr(attrs.TEST_VALUE, value if math.isfinite(value) else None)
        if math.isfinite(value):
            run.log_epoch(0, {CONFIRM_TEST_METRIC: value})


def selected_report(
    history: list[dict[str, float]], metric: str, direction: str, reduce: str
) -> dict[str, float] | None:
    """The report (epoch) whose ``metric`` the objective takes (`objective_value`: the
    best, the first of equals, or the last finite), or None without a finite one."""
    finite = [h for h in history if math.isfinite(h.get(metric, math.nan))]
    if not finite:
        return None
    if reduce == "last":
        return finite[-1]
    pick = min if direction == "minimize" else max
    return pick(finite, key=lambda h: h[metric])


class _Diverged(Exception):
    """A run without a finite value: diverged training or a non-finite score."""


def _diverged(trial: optuna.Trial, ending: RunEnding, exc: Exception) -> NoReturn:
    """End a replicate that has no finite value: a result, counted as NaN (the same seed
    would diverge again: it is not run again)."""
    trial.set_user_attr(attrs.NON_FINITE, str(exc))
    ending.state = "FAIL"
    raise optuna.TrialPruned(str(exc)) from exc


def _fit_or_diverged(
    config: TrainConfig,
    on_epoch_end: Callable[[int, dict[str, float]], None],
    *,
    select: EpochSelection,
    evaluate_test: bool,
) -> RunResult:
    try:
        return fit(config, on_epoch_end, select=select, evaluate_test=evaluate_test)
    except NonFiniteLoss as exc:
        raise _Diverged(str(exc)) from exc


def _first_claim(trial: optuna.Trial, job: _JobId) -> int | None:
    """The number of an earlier trial of the companion study that holds ``job`` (done,
    diverged, queued or running), or None when ``trial`` is the first: of the copies that
    launches racing each other queue, only the first is ever run (a copy whose original
    later fails is queued again by the next `run_jobs`, as any failed job)."""
    for other in trial.study.get_trials(deepcopy=False):
        if other.number >= trial.number or _job_id(other) != job:
            continue
        live = other.state in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        if live or (other.state == TrialState.PRUNED and other.user_attrs.get(attrs.NON_FINITE)):
            return other.number
    return None


def claimed_jobs(companion: optuna.Study) -> set[_JobId]:
    """Jobs done (COMPLETE, or diverged), queued (WAITING) or running elsewhere (RUNNING)."""
    out = set()
    for trial in companion.get_trials(deepcopy=False):
        job = _job_id(trial)
        if job is None:
            continue
        live = trial.state in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        diverged = trial.state == TrialState.PRUNED and trial.user_attrs.get(attrs.NON_FINITE)
        if live or diverged:
            out.add(job)
    return out


def enqueue_jobs(
    study: optuna.Study, jobs: list[ReplicateJob], spec: SweepSpec, tracker: Tracker
) -> optuna.Study:
    """Queue the ``jobs`` not claimed yet in ``study``'s companion study (after failing
    the runs whose worker died); returns the companion study. Local workers
    (studies.workers.launcher) have their launcher queue every job before they run any, so that
    they never race to queue one."""
    companion = companion_study(study, create=True)
    assert companion is not None
    companion.set_user_attr(attrs.COMPANION_METRIC, spec.objective.metric)
    companion.set_user_attr(attrs.TEST_METRIC, confirmation_metric(spec.objective.metric))
    companion.set_user_attr(attrs.SEARCH_METRIC, spec.objective.metric)
    close_dead_trials(companion, tracker)
    claimed = claimed_jobs(companion)
    for job in jobs:
        if job.id not in claimed:
            companion.enqueue_trial({}, user_attrs=job.user_attrs())
            claimed.add(job.id)
    return companion


def run_jobs(study: optuna.Study, jobs: list[ReplicateJob], runner: ReplicateRunner) -> int:
    """Run the ``jobs`` of ``study``'s companion study that are not done yet (and any job
    an interrupted call left waiting). Returns the number of runs this call ended."""
    companion = enqueue_jobs(study, jobs, runner.spec, runner.runs.tracker)
    waiting = len(companion.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if not waiting:
        return 0
    before = runner.finished
    optimize(
        companion, runner, n_trials=waiting, callbacks=[_stop_when_drained], gc_after_trial=True
    )
    return runner.finished - before


def _stop_when_drained(study: optuna.Study, _trial: FrozenTrial) -> None:
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        study.stop()
