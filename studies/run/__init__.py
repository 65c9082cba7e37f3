"""Running a sweep: the search space, one runner for every kind of trial, the replicates
of the confirmation, the sweep session (open, run, close), stop signals and sync.

Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.run.commands import (
        CommandFailed,
    )
    from studies.run.objective import (
        TRIAL_FAILURES,
        Objective,
        TrialFailure,
        close_dead_trials,
        objective_value,
    )
    from studies.run.observer import (
        SweepObserver,
    )
    from studies.run.race_rounds import (
        current_race,
        next_confirmation_jobs,
        run_race,
        start_race,
    )
    from studies.run.replicates import (
        baseline_search_job,
        enqueue_jobs,
        run_jobs,
        top_trials,
    )
    from studies.run.runner import (
        SweepRuns,
        TrialPlan,
        close_runs,
        fail_orphans,
        fail_trials,
        flatten_config,
        optimize,
        run_trial,
        worker_id,
    )
    from studies.run.search_space import (
        worker_seed,
    )
    from studies.run.session import (
        SweepOutcome,
        SweepTarget,
        open_sweep,
        optuna_study,
        parent_run,
        replicate_runner,
    )
    from studies.run.signals import (
        Terminated,
        exit_code,
        install_stop_handlers,
    )
    from studies.run.sweep import (
        COUNTED_STATES,
        SweepDiverged,
        confirm_sweep,
        remaining_trials,
        run_sweep,
        trial_budget,
    )
    from studies.run.sync import (
        sync_study,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.run.commands": ("CommandFailed",),
        "studies.run.objective": (
            "Objective",
            "TRIAL_FAILURES",
            "TrialFailure",
            "close_dead_trials",
            "objective_value",
        ),
        "studies.run.observer": ("SweepObserver",),
        "studies.run.race_rounds": (
            "current_race",
            "next_confirmation_jobs",
            "run_race",
            "start_race",
        ),
        "studies.run.replicates": (
            "baseline_search_job",
            "enqueue_jobs",
            "run_jobs",
            "top_trials",
        ),
        "studies.run.runner": (
            "SweepRuns",
            "TrialPlan",
            "close_runs",
            "fail_orphans",
            "fail_trials",
            "flatten_config",
            "optimize",
            "run_trial",
            "worker_id",
        ),
        "studies.run.search_space": ("worker_seed",),
        "studies.run.session": (
            "SweepOutcome",
            "SweepTarget",
            "open_sweep",
            "optuna_study",
            "parent_run",
            "replicate_runner",
        ),
        "studies.run.signals": (
            "Terminated",
            "exit_code",
            "install_stop_handlers",
        ),
        "studies.run.sweep": (
            "COUNTED_STATES",
            "SweepDiverged",
            "confirm_sweep",
            "remaining_trials",
            "run_sweep",
            "trial_budget",
        ),
        "studies.run.sync": ("sync_study",),
    },
)
