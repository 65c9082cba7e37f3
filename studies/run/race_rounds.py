"""The sequential confirmation's rounds: which replicates the race needs next.

The race (studies.confirmation.sequential) is a pure function of the scores seen so far, so
a round is read from the storage, never kept in a process: `next_confirmation_jobs` reads
the stored replicates, replays the race and returns the jobs of its next round (none once
it is decided). Whoever runs replicates calls it when the queue is drained: the one-process
sweep and `salsweep studies confirm` (`run_race`, below), the local workers' launcher
(studies.workers.launcher) and any other executor. An interrupted race goes on from its
stored replicates.

Replicate s of every contender is paired: training seed = the search's + 1 + s, and for the
built-in trainer data seed = the base's + 1 + s (which scenes exist and which are training,
validation and test: trainer.data), so that the race's intervals include the scenes' noise
as well as the training seed's and contenders differ only by their configuration. A command
spec's program gets the training seed only (its scenes are its own).

The race is fixed when it starts (`start_race`): its design (the spec's ``confirm`` keys)
and its candidates (the ``top_k`` best distinct search trials then) are stored on the
companion study; a later call with another design is refused (changing the design once
replicates are seen would void the error rate: optional stopping), and search trials
that finish later do not enter it.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from studies import attrs
from studies.attrs import BASELINE_KEY, ROLE_CONFIRMATION, trial_key
from studies.confirmation import ConfirmError
from studies.confirmation.confirmed import RaceSetup, race_setup
from studies.confirmation.confirmed import race_state as stored_race_state
from studies.confirmation.replicates import Direction
from studies.confirmation.sequential import RaceState
from studies.run.replicates import (
    ReplicateJob,
    ReplicateRunner,
    claimed_jobs,
    run_jobs,
    top_trials,
)
from studies.store import as_record, companion_study
from sweeps import ConfirmSpec, SweepSpec
from trainer import TrainConfig

__all__ = [
    "NOTHING_TO_CONFIRM",
    "current_race",
    "next_confirmation_jobs",
    "replicate_job",
    "run_race",
    "start_race",
]


NOTHING_TO_CONFIRM = "no complete search trial to confirm"


def _direction(study: optuna.Study) -> Direction:
    return "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"


def start_race(study: optuna.Study, spec: SweepSpec, confirm: ConfirmSpec) -> RaceSetup | None:
    """The race of ``study``: started now (its design and candidates stored on the
    companion study) or as it started before; None when no search trial is complete.

    Raises `ConfirmError` when the stored race has another design than ``confirm``."""
    companion = companion_study(study, create=False)
    stored = None if companion is None else race_setup(as_record(companion, companion=False))
    if stored is not None:
        asked = {**stored.design_keys, **confirm.model_dump()}
        if asked != stored.design_keys:
            shown = ", ".join(f"{k} {v}" for k, v in stored.design_keys.items())
            raise ConfirmError(
                f"the confirmation of study {study.study_name!r} is a race that started with "
                f"{shown}: its design is fixed before the first replicate (changing it "
                "afterwards would void its error rate); run `salsweep studies confirm` "
                "without options to go on"
            )
        return stored
    top = top_trials(study, confirm.top_k)
    if not top:
        return None
    setup = RaceSetup(
        top_k=confirm.top_k,
        initial_seeds=confirm.initial_seeds,
        max_seeds=confirm.max_seeds,
        indifference_zone=confirm.indifference_zone,
        alpha=confirm.alpha,
        candidates=tuple(trial_key(t.number) for t in top),
        baseline=BASELINE_KEY if spec.baseline and not spec.is_command() else None,
    )
    companion = companion_study(study, create=True)
    assert companion is not None
    companion.set_user_attr(attrs.RACE, setup.to_attr())
    return setup


def current_race(study: optuna.Study) -> RaceState | None:
    """The race as its stored replicates make it (None: not started)."""
    companion = companion_study(study, create=False)
    if companion is None:
        return None
    return stored_race_state(as_record(companion, companion=False), _direction(study))


def replicate_job(
    spec: SweepSpec, key: str, index: int, trial: FrozenTrial | None = None
) -> ReplicateJob:
    """Replicate ``index`` of contender ``key``: the baseline, or ``trial`` (the search
    trial ``trial-<n>``). Training seed = the search's + 1 + index; for the built-in
    trainer, data seed = the base's + 1 + index (see the module)."""
    seed = spec.training_seed() + 1 + index
    if key == BASELINE_KEY:
        config = spec.baseline_config()
        params: dict[str, Any] = {"loss.method": config.loss.method}
    else:
        if trial is None:
            raise ValueError(f"replicate of {key}: its search trial is needed")
        params = dict(trial.params)
        if spec.is_command():
            return ReplicateJob(key, seed, ROLE_CONFIRMATION, None, params, index=index)
        stored = trial.user_attrs.get(attrs.CONFIG)
        config = TrainConfig.model_validate(stored) if stored else spec.config_for(trial.params)
    base_data_seed = spec.data_seed()
    assert base_data_seed is not None  # the built-in trainer
    data_seed = base_data_seed + 1 + index
    config = config.model_copy(
        update={"seed": seed, "data": config.data.model_copy(update={"seed": data_seed})}
    )
    return ReplicateJob(
        key, seed, ROLE_CONFIRMATION, config, params, index=index, data_seed=data_seed
    )


def next_confirmation_jobs(study: optuna.Study, spec: SweepSpec) -> list[ReplicateJob]:
    """The jobs of the race's next round, read from the stored replicates (seed index
    first, so that the runs of one seed, which share their scenes, follow each other);
    empty when the race is decided or not started."""
    state = current_race(study)
    if state is None or state.done:
        return []
    wanted = [(index, key) for key, indices in state.to_run.items() for index in indices]
    trials = {trial_key(t.number): t for t in study.get_trials(deepcopy=False)}
    return [replicate_job(spec, key, index, trials.get(key)) for index, key in sorted(wanted)]


def run_race(
    study: optuna.Study, spec: SweepSpec, confirm: ConfirmSpec, runner: ReplicateRunner
) -> str | None:
    """Run the race in this process until it is decided: each round's jobs enqueued, then
    run (`run_jobs`), then the next round read. Returns why it stopped undecided (None:
    decided): no complete search trial, or replicates that run in other processes (the one
    that finishes them goes on). Raises `ConfirmError` when a round's jobs are claimed but
    can never give a result (replicates of an older, fixed-seed confirmation)."""
    if start_race(study, spec, confirm) is None:
        return NOTHING_TO_CONFIRM
    while jobs := next_confirmation_jobs(study, spec):
        ran = run_jobs(study, jobs, runner)
        if ran or next_confirmation_jobs(study, spec) != jobs:
            continue
        companion = companion_study(study, create=False)
        assert companion is not None
        running = companion.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running:
            return (
                f"{len(running)} replicate(s) of the race still running in other processes: "
                "the process that finishes them goes on with the race (or run "
                f"`salsweep studies confirm {study.study_name}`)"
            )
        stuck = [job.id for job in jobs if job.id in claimed_jobs(companion)]
        raise ConfirmError(
            f"the race of study {study.study_name!r} cannot go on: its next replicates "
            f"({', '.join(f'{k} seed {s}' for k, s, _ in stuck[:4])}) are held by runs "
            "without the race's scores (a fixed-seed confirmation of an earlier salsweep); "
            "launch the study again under another name to confirm it"
        )
    return None
