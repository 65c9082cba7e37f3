"""What a sweep on a cluster is refused for (studies.cluster.checks), and the launcher's
rules that decide from the storage (studies.cluster.launcher.grant,
studies.cluster.progress): pure, no cluster, no server."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from studies.cluster.checks import (
    address_problems,
    host_of,
    is_loopback,
    nodes_are_here,
    sqlite_problem,
)
from studies.cluster.launcher import grant
from studies.cluster.progress import Counts, Progress, count_search, failure_streak, run_label

PG = "postgresql+psycopg2://alice:s3cret@db.cluster:5432/salsweep"


def test_sqlite_is_refused_with_the_reason_unless_allowed() -> None:
    problem = sqlite_problem("sqlite:////home/me/.salsweep/optuna.db", allow_sqlite=False)
    assert problem is not None
    assert "network file system" in problem and "loses writes" in problem
    assert "--allow-sqlite" in problem and "postgresql" in problem
    assert sqlite_problem("sqlite:////x.db", allow_sqlite=True) is None
    assert sqlite_problem(PG, allow_sqlite=False) is None


def test_hosts_and_loopback() -> None:
    assert host_of(PG) == "db.cluster"
    assert host_of("http://127.0.0.1:5000") == "127.0.0.1"
    assert host_of("sqlite:////x.db") is None
    assert host_of("file:///tmp/mlruns") is None
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.4.0.9", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("10.0.0.1", "db.cluster", "vm"))


def test_nodes_that_are_this_machine() -> None:
    here = {"login1", "login1.cluster.org"}
    assert nodes_are_here(["localhost"], here)
    assert nodes_are_here(["login1"], here)
    assert not nodes_are_here(["login1", "gpu01"], here)
    assert not nodes_are_here([], here)  # no node listed: nothing is known


def test_addresses_the_jobs_get() -> None:
    local = "http://127.0.0.1:5000"
    pg_local = "postgresql+psycopg2://root@127.0.0.1:5432/test"
    # A single-node cluster (the nodes are this machine): loopback reaches the servers.
    assert address_problems(pg_local, local, nodes_here=True) == []
    # Other nodes: both loopback addresses are named, passwords hidden.
    problems = address_problems(pg_local, local, nodes_here=False)
    assert len(problems) == 2
    assert "MLflow server http://127.0.0.1:5000" in problems[0]
    assert "--host 0.0.0.0" in problems[0]
    assert "Optuna storage" in problems[1]
    assert address_problems(PG, "http://mlflow.cluster:5000", nodes_here=False) == []
    shown = address_problems(
        "postgresql+psycopg2://alice:s3cret@localhost/db", "http://x:5000", nodes_here=False
    )
    assert len(shown) == 1 and "s3cret" not in shown[0] and "***" in shown[0]
    # An MLflow file store is no server: refused wherever the jobs run.
    (only,) = address_problems(PG, "file:///tmp/mlruns", nodes_here=True)
    assert "not a server" in only


# ---------------------------------------------------------------------------- the budget


@pytest.mark.parametrize(
    ("budget", "counts", "capacity", "granted"),
    [
        (4, Counts(), 2, 2),  # one waiting per live job
        (4, Counts(waiting=2), 2, 0),
        (4, Counts(done=3), 2, 1),  # the budget's last trial
        (4, Counts(done=3, running=1), 2, 0),
        (4, Counts(done=4), 2, 0),
        (4, Counts(done=1, running=2), 4, 1),
        # diverged trials in a row: running + queued + streak stay below the budget
        (3, Counts(streak=2), 4, 1),
        (3, Counts(streak=2, running=1), 4, 0),
        (4, Counts(), 0, 0),  # no live job: nothing queued for nobody
    ],
)
def test_grants_keep_the_study_within_its_budget(
    budget: int, counts: Counts, capacity: int, granted: int
) -> None:
    assert grant(budget, counts, capacity) == granted


def _trial(number: int, state: TrialState, minutes: int = 0, **user_attrs: object) -> FrozenTrial:
    start = datetime(2026, 1, 1)
    ended = state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return FrozenTrial(
        number=number,
        state=state,
        value=0.5 if state == TrialState.COMPLETE else None,
        values=None,
        datetime_start=start if state != TrialState.WAITING else None,
        datetime_complete=start + timedelta(minutes=minutes) if ended else None,
        params={"x": 0.3} if state != TrialState.WAITING else {},
        distributions={"x": FloatDistribution(0, 1)} if state != TrialState.WAITING else {},
        user_attrs=dict(user_attrs),
        system_attrs={},
        intermediate_values={1: 0.7, 2: 0.6} if state != TrialState.WAITING else {},
        trial_id=number,
    )


def test_failures_in_a_row_skip_killed_trials() -> None:
    trials = [
        _trial(0, TrialState.COMPLETE, 1),
        _trial(1, TrialState.FAIL, 2, fail_reason="non-finite training loss (nan)"),
        _trial(2, TrialState.FAIL, 3),  # its worker was stopped: no reason
        _trial(3, TrialState.FAIL, 4, fail_reason="the program exited 1"),
        _trial(4, TrialState.RUNNING),
        _trial(5, TrialState.WAITING),
    ]
    assert failure_streak(trials) == (2, "the program exited 1")
    assert count_search(trials) == Counts(
        done=1, running=1, waiting=1, streak=2, last_failure="the program exited 1"
    )
    assert failure_streak([*trials, _trial(6, TrialState.PRUNED, 9)]) == (0, None)


class _Heard:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __getattr__(self, name: str) -> object:
        return lambda *args: self.calls.append((name, *args))


def test_progress_tells_each_change_once_to_the_job_s_worker() -> None:
    heard = {"7": _Heard(), "8": _Heard()}
    progress = Progress("val/x", 3, lambda job: None if job is None else heard[job])
    before = [_trial(0, TrialState.COMPLETE, 1, job="7")]
    progress.search(before)  # the first look: what ended before this launch is not news
    assert heard["7"].calls == []
    running = _trial(1, TrialState.RUNNING, job="8")
    taken = _trial(3, TrialState.RUNNING, job="8")
    taken.params, taken.distributions = {}, {}  # its values not drawn yet: said later
    progress.search([*before, running, _trial(2, TrialState.RUNNING), taken])  # 2: no job yet
    assert heard["8"].calls == [
        ("trial_started", 1, {"x": 0.3}, 3),
        ("epoch_finished", 1, 1, {"val/x": 0.7}),
        ("epoch_finished", 1, 2, {"val/x": 0.6}),
    ]
    done = _trial(1, TrialState.COMPLETE, 5, job="8")
    progress.search([*before, done])
    progress.search([*before, done])
    assert heard["8"].calls[3:] == [("trial_finished", 1, "COMPLETE", 0.5, None)]
    assert progress.ran == 1

    runs = [
        _trial(0, TrialState.COMPLETE, 1, config_key="baseline", seed=0, role="search-baseline"),
        _trial(
            1,
            TrialState.PRUNED,
            2,
            config_key="trial-1",
            seed=1,
            role="confirmation",
            non_finite="loss is nan",
            job="7",
        ),
        _trial(2, TrialState.PRUNED, 3, duplicate_of=1, config_key="trial-1", seed=1),
    ]
    progress.replicates_of(runs[:1])
    progress.replicates_of(runs)
    assert heard["7"].calls == [
        ("run_started", "confirm trial-1 seed 1", {}, 3),
        ("run_finished", "confirm trial-1 seed 1", "FAIL", None, "loss is nan"),
    ]
    assert progress.replicates == 1
    assert run_label(runs[0]) == "baseline"
    assert run_label(runs[2]) is None
