"""Launch and resume sweeps: the Optuna study, the MLflow parent run, the trial loop, and
the runs beside it (the SSI baseline before the search, the confirmation after it).

Several workers may run `launch`/`resume` on one study at once (shared storage and
tracking server): the trial budget is counted in the storage, not per process; the
baseline run and each confirmation replicate are claimed from a queue in the storage, and
the worker that finishes the search last confirms (one that finishes while another's
trials still run leaves the confirmation to it).
"""

from __future__ import annotations

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from studies import attrs
from studies.confirmation import ConfirmError
from studies.home import study_dir
from studies.run.objective import TRIAL_FAILURES, Objective, TrialFailure, close_dead_trials
from studies.run.observer import SweepObserver
from studies.run.race_rounds import NOTHING_TO_CONFIRM, run_race
from studies.run.replicates import ReplicateRunner, baseline_search_job, run_jobs
from studies.run.runner import optimize
from studies.run.session import SweepOutcome, SweepTarget, open_sweep, parent_run, replicate_runner
from studies.store import stored_spec
from sweeps import ConfirmSpec, SweepSpec
from trainer.errors import UserError

__all__ = [
    "COUNTED_STATES",
    "SweepDiverged",
    "SweepOutcome",
    "SweepTarget",
    "confirm_sweep",
    "remaining_trials",
    "run_sweep",
    "trial_budget",
]

# Trials that use up the budget; failed ones (a crash, a non-finite loss) do not.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


class SweepDiverged(UserError, RuntimeError):
    """The sweep stopped: its last ``count`` trials in a row failed (a non-finite loss, or
    a command trial whose program failed; ``last``: the last one's failure). Without this
    bound a search space that always fails would start trials forever, since failed trials
    use no budget."""

    def __init__(self, study_name: str, count: int, last: TrialFailure) -> None:
        self.study_name = study_name
        self.count = count
        self.last = last
        self.args = (
            f"study {study_name!r} stopped: {count} trials in a row failed, the last with a "
            f"{last}; narrow the search space, then `salsweep sweep resume {study_name}`",
        )


def remaining_trials(study: optuna.Study, n_trials: int) -> int:
    """Trials still to finish (COMPLETE or PRUNED) before the study has ``n_trials``."""
    done = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
    return max(0, n_trials - done)


def trial_budget(
    study: optuna.Study, spec: SweepSpec, n_trials: int | None, *, create: bool
) -> int:
    """The study's budget (search trials, all workers) and record it on the study.

    ``n_trials`` when given; else a launch (``create``) takes the spec's, and a resume the
    one stored by the launch (or by the last resume given ``n_trials``), falling back on
    the spec's for a study that has none stored.
    """
    stored = study.user_attrs.get(attrs.BUDGET)
    if n_trials is not None:
        budget = n_trials
    elif not create and isinstance(stored, int):
        budget = stored
    else:
        budget = spec.budget.n_trials
    if stored != budget:
        study.set_user_attr(attrs.BUDGET, budget)
    return budget


class _FailureStreak:
    """Optuna callback: stops the study after ``limit`` trials in a row of this process
    FAILED; ``tripped`` says that it did."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.count += 1
            if self.count >= self.limit:
                self.tripped = True
                study.stop()
        elif trial.state in COUNTED_STATES:
            self.count = 0


def _still_running(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def run_sweep(
    spec: SweepSpec,
    name: str,
    target: SweepTarget,
    *,
    n_trials: int | None = None,
    observer: SweepObserver | None = None,
    create: bool = True,
) -> SweepOutcome:
    """Run the SSI baseline (once), the study's remaining trials and the confirmation
    (when the spec has one), then log plots, the confirmation and the best config on the
    parent run.

    The budget (see `trial_budget`: ``n_trials``, else the spec's on a launch and the
    stored one on a resume) counts the study's COMPLETE and PRUNED trials, all workers
    together: a trial that fails (non-finite loss) is replaced by another. After as many
    failures in a row as the budget, the sweep stops with `SweepDiverged`.
    Raises `sweeps.StudyNameError` for an unusable ``name`` before anything is created.
    """
    opened = open_sweep(spec, name, target, create=create, observer=observer)
    study, objective = opened.study, opened.objective
    budget = trial_budget(study, spec, n_trials, create=create)

    runner = replicate_runner(objective)
    skipped: str | None = None
    with parent_run(opened, observer) as closing:
        if spec.baseline:
            # Before the search, outside the study: the sampler never sees its score.
            run_jobs(study, [baseline_search_job(spec)], runner)
        close_dead_trials(study, opened.tracker)
        _search(study, objective, budget, spec.budget.timeout)
        if spec.confirm is not None:
            running = _still_running(study)
            if running:
                skipped = (
                    f"{running} search trial(s) still running in other workers: the last "
                    "worker confirms (or run `salsweep studies confirm`)"
                )
            else:
                skipped = _confirm(study, spec, spec.confirm, runner)
    return opened.outcome(
        closing, ran=objective.finished, replicates=runner.finished, confirmation_skipped=skipped
    )


def _search(study: optuna.Study, objective: Objective, budget: int, timeout: float | None) -> None:
    """Run trials until the study has ``budget`` COMPLETE or PRUNED ones (Optuna's
    ``n_trials`` would count failed ones too), ``timeout`` seconds have passed, or
    ``budget`` trials in a row failed (then raises `SweepDiverged`)."""
    if not remaining_trials(study, budget):
        return
    streak = _FailureStreak(limit=budget)
    optimize(
        study,
        objective,
        n_trials=None,  # MaxTrialsCallback ends the loop: the budget counts finished trials
        timeout=timeout,
        catch=TRIAL_FAILURES,
        callbacks=[MaxTrialsCallback(budget, states=COUNTED_STATES), streak],
        gc_after_trial=True,
    )
    if streak.tripped:
        assert objective.last_failure is not None  # only TRIAL_FAILURES are caught
        raise SweepDiverged(study.study_name, streak.count, objective.last_failure)


def _confirm(
    study: optuna.Study, spec: SweepSpec, confirm: ConfirmSpec, runner: ReplicateRunner
) -> str | None:
    """Run the race (studies.run.race_rounds) round by round until it is decided; why it
    stopped undecided (no complete search trial, replicates running elsewhere), or None."""
    return run_race(study, spec, confirm, runner)


def confirm_sweep(
    name: str,
    target: SweepTarget,
    *,
    top_k: int | None = None,
    initial_seeds: int | None = None,
    max_seeds: int | None = None,
    indifference_zone: float | None = None,
    alpha: float | None = None,
    observer: SweepObserver | None = None,
) -> SweepOutcome:
    """Confirm the finished study ``name``: race its top ``top_k`` configurations and the
    baseline (the design: each option given, else the spec's ``confirm``, else its
    defaults), or go on with the race it started. Runs only the replicates not done yet;
    logs the verdict on the parent run. Raises `ConfirmError` with no complete search
    trial, or for a design other than the one a started race has."""
    study_dir(target.home, name)  # a name that is a path: refused before anything is read
    spec = stored_spec(name, target.storage_url)
    defaults = (spec.confirm or ConfirmSpec()).model_dump()
    given = {
        "top_k": top_k,
        "initial_seeds": initial_seeds,
        "max_seeds": max_seeds,
        "indifference_zone": indifference_zone,
        "alpha": alpha,
    }
    try:
        confirm = ConfirmSpec.model_validate(
            {**defaults, **{k: v for k, v in given.items() if v is not None}}
        )
    except ValueError as exc:  # pydantic's ValidationError: a bad combination of options
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in _errors(exc))
        raise ConfirmError(f"study {name!r}: {problems}") from None
    opened = open_sweep(spec, name, target, create=False, observer=observer, confirming=True)
    runner = replicate_runner(opened.objective)
    with parent_run(opened, observer) as closing:
        skipped = _confirm(opened.study, spec, confirm, runner)
        if skipped == NOTHING_TO_CONFIRM:
            raise ConfirmError(f"study {name!r} has no complete search trial to confirm yet")
    return opened.outcome(closing, ran=0, replicates=runner.finished, confirmation_skipped=skipped)


def _errors(exc: ValueError) -> list[dict[str, object]]:
    errors = getattr(exc, "errors", None)
    return list(errors()) if callable(errors) else [{"msg": str(exc)}]
