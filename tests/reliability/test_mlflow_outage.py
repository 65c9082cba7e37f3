"""The MLflow tracking server goes away during a sweep: training does not wait on it,
nothing is lost, nothing is logged twice.

Real parts: `salsweep sweep launch` child processes (frozen with SIGSTOP while the server
restarts), `salsweep studies sync` (in-process, click's CliRunner), and a real `mlflow
server` of this module on a loopback port, stopped and started again on the same port and
database (the session's server is never touched). Its database starts as a copy of the
migrated template (fixture ``new_mlflow_home``: a fresh one spends tens of seconds
migrating its schema at the first start).

Counts come from MLflow and Optuna: one run per trial, every epoch's metrics exactly once
(the length of each metric's history), no run left RUNNING. Durations are printed for
the report (``pytest -s``), never asserted: what proves that training did not wait is
that whole trials started and ended while the server was down.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from cli import cli
from studies.home import default_storage_url
from studies.store.catalog import read_study
from studies.store.records import StudyRecord, TrialRecord
from studies.tracking.courier import SWEEP_FLUSH_S, WAIT_NOTICE_S
from studies.tracking.outbox import OP_LOG, find_outboxes
from studies.tracking.server import ServerInfo, start_server, stop_server
from tests.port_helpers import free_port
from tests.process_helpers import ROOT, SalsweepProcess

EPOCHS = 3
# The outage of test (a): at least OUTAGE_S, and until TRIALS_IN_OUTAGE whole trials (of
# EPOCHS epochs each) ran in it.
OUTAGE_S = 15.0
TRIALS_IN_OUTAGE = 2


@dataclass
class OutageServer:
    """The module's MLflow server, which a test may stop and start again."""

    home: Path
    port: int
    info: ServerInfo

    @property
    def url(self) -> str:
        return self.info.url

    def stop(self) -> None:
        stop_server(self.home)

    def start(self) -> None:
        self.info = start_server(self.home, port=self.port, timeout=180.0)


@pytest.fixture(scope="module")
def server(
    new_mlflow_home: Callable[[str], Path], assert_group_gone: Callable[[int], None]
) -> Iterator[OutageServer]:
    home = new_mlflow_home("outage-mlflow")
    port = free_port()
    running = OutageServer(home, port, start_server(home, port=port, timeout=180.0))
    try:
        yield running
    finally:
        stop_server(home)
        assert_group_gone(running.info.pgid)


def _spec(tmp_path: Path, name: str, n_trials: int, steps: int = 2, **extra: Any) -> Path:
    spec = {
        "name": name,
        "base": {
            "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 4, "num_test": 4},
            "model": {"base_channels": 4, "num_stages": 2},
            "epochs": EPOCHS,
            "steps_per_epoch": steps,
            "batch_size": 2,
            "device": "cpu",
        },
        "search": {"loss.lambda_sg": {"low": 0.1, "high": 1.0}},
        "budget": {"n_trials": n_trials},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "baseline": False,
        **extra,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _launch(
    salsweep: SalsweepProcess, spec: Path, url: str, home: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return salsweep.popen(
            *("sweep", "launch", str(spec), "--tracking-uri", url, "--home", str(home)),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            # One thread: the other core goes to the MLflow server restarting meanwhile.
            env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )


def _study(name: str, home: Path) -> StudyRecord | None:
    """The study as its sweep has stored it so far (None: not created, or busy)."""
    try:
        return read_study(name, default_storage_url(home))
    except Exception:  # not created yet, or the sweep holds the database for a moment
        return None


def _wait_for(
    what: str, check: Callable[[], bool], sweep: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if sweep.poll() is not None:
            pytest.fail(f"the sweep ended (exit {sweep.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.2)


def _epochs_journalled(folder: Path) -> int:
    """Epochs of metrics a trial has journalled in its outbox so far."""
    ops = [op for outbox in find_outboxes(folder) for op in outbox.ops]
    return sum(1 for op in ops if op["op"] == OP_LOG and op["metrics"])


def _complete(name: str, home: Path) -> list[TrialRecord]:
    study = _study(name, home)
    return [] if study is None else study.get_trials(("COMPLETE",))


def _inside(trial: TrialRecord, start: float, end: float) -> bool:
    """Whether the trial started and ended within [start, end] (Unix times)."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return False
    return datetime.fromtimestamp(
        start
    ) <= trial.datetime_start and trial.datetime_complete <= datetime.fromtimestamp(end)


def _seconds(trial: TrialRecord) -> float:
    duration = trial.duration
    assert duration is not None
    return duration.total_seconds()


def _runs(client: MlflowClient, name: str) -> list[Run]:
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], max_results=500))


def _assert_every_epoch_once(client: MlflowClient, run: Run, epochs: int = EPOCHS) -> int:
    """Every per-epoch metric of the run has exactly one value per epoch; returns how many
    metric keys were checked."""
    keys = [k for k in run.data.metrics if k.startswith(("train/", "val/")) or k == "lr"]
    assert keys, f"run {run.info.run_name} has no epoch metrics"
    for key in keys:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert steps == list(range(1, epochs + 1)), (run.info.run_name, key, steps)
    return len(keys)


def _trial_runs(runs: list[Run]) -> dict[int, list[Run]]:
    by_trial: dict[int, list[Run]] = {}
    for run in runs:
        number = run.data.tags.get("optuna.trial")
        if number is not None:
            by_trial.setdefault(int(number), []).append(run)
    return by_trial


def test_server_stopped_mid_sweep_then_back(
    server: OutageServer, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    """(a) The server stops during trial 2's training and is started again OUTAGE_S later
    (later still if fewer than TRIALS_IN_OUTAGE whole trials ran meanwhile): the sweep goes
    on training, and every epoch reaches MLflow exactly once (the sender catches up).
    Trials 0 (warm-up) and 1 run with the server up: trial 1 is the reference duration.

    The restart itself takes 6 s on an idle machine and up to a minute on a loaded one:
    the sweep is frozen (SIGSTOP) while it runs, so that the sweep still has trials to
    run when the server is back, however long the restart took."""
    # Trials of about 1.5 s on an idle machine: enough of them to outlast the outage.
    name, n_trials, home = "outage-back", 18, tmp_path / "home"
    spec = _spec(tmp_path, name, n_trials, steps=30)
    sweep = _launch(salsweep_process, spec, server.url, home, tmp_path / "sweep.log")
    try:
        _wait_for(
            "epoch 1 of trial 2",
            lambda: _epochs_journalled(home / "studies" / name / "trial-0002") >= 1,
            sweep,
            timeout=300,
        )
        server.stop()
        stopped = time.time()
        _wait_for(
            f"{TRIALS_IN_OUTAGE} trials trained while the server was away (did training wait?)",
            lambda: (
                time.time() - stopped >= OUTAGE_S
                and sum(_inside(t, stopped, time.time()) for t in _complete(name, home))
                >= TRIALS_IN_OUTAGE
            ),
            sweep,
            timeout=180,
        )
        restarting = time.time()
        os.killpg(sweep.pid, signal.SIGSTOP)
        try:
            server.start()
        finally:
            os.killpg(sweep.pid, signal.SIGCONT)
        back = time.time()
        sweep.wait(timeout=300)
        ended = time.time()
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, 9)
            sweep.wait(timeout=30)
    output = (tmp_path / "sweep.log").read_text(errors="replace")
    assert sweep.returncode == 0, output[-3000:]
    assert "studies sync" not in output  # nothing left unsent

    study = _study(name, home)
    assert study is not None
    trials = study.get_trials(("COMPLETE",))
    assert len(trials) == n_trials
    assert len([t for t in trials if _inside(t, stopped, restarting)]) >= TRIALS_IN_OUTAGE

    client = MlflowClient(server.url)
    runs = _runs(client, name)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    by_trial = _trial_runs(runs)
    assert sorted(by_trial) == list(range(n_trials))
    checked = 0
    for trial in trials:
        (run,) = by_trial[trial.number]  # one run per trial: none created twice
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.state"] == "COMPLETE"
        assert run.data.metrics["optuna.value"] == pytest.approx(trial.value)
        checked += _assert_every_epoch_once(client, run)
        # Known to Optuna: from the trial, or (made after it ended) recorded at the end.
        assert trial.user_attrs.get("mlflow_run_id") == run.info.run_id
    (parent,) = [r for r in runs if r.info.run_name == "sweep"]
    assert parent.info.status == "FINISHED"
    assert "best_config.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert not [o.journal for o in find_outboxes(home / "studies" / name) if o.has_pending()]

    # For the report: trial durations with the server up (trial 1) and away.
    reference = _seconds(next(t for t in trials if t.number == 1))
    away = [_seconds(t) for t in trials if _inside(t, stopped, restarting)]
    after = [_seconds(t) for t in trials if _inside(t, back, ended)]
    print(
        f"\n(a) training ran {restarting - stopped:.1f} s with the server stopped, then "
        f"was frozen during its {back - restarting:.1f} s restart; trial 1 (server up) "
        f"{reference:.1f} s; {len(away)} trials ran whole with the server away: "
        f"{', '.join(f'{d:.1f}' for d in away)} s "
        f"(median x{statistics.median(away) / reference:.2f}); "
        f"{len(after)} after it came back: {', '.join(f'{d:.1f}' for d in after)} s; the sweep "
        f"exited {ended - back:.1f} s after the server was back; runs without "
        f"mlflow_run_id: {sum('mlflow_run_id' not in t.user_attrs for t in trials)} of "
        f"{n_trials}; {checked} metric histories checked, {EPOCHS} points each"
    )


_SYNCED = re.compile(
    r"(?P<synced>\d+) of (?P<runs>\d+) run\(s\) synced: (?P<sent>\d+) operation\(s\) sent "
    r"\((?P<epochs>\d+) epoch\(s\) of metrics\), (?P<already>\d+) already there, "
    r"(?P<refused>\d+) refused by the server, (?P<closed>\d+) run\(s\) closed, "
    r"(?P<recorded>\d+) run id\(s\) recorded in the study"
)


def _sync(name: str, url: str, home: Path) -> dict[str, int]:
    """`salsweep studies sync NAME`, in-process: the counts it prints."""
    args = ["studies", "sync", name, "--tracking-uri", url, "--home", str(home)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output + repr(done.exception)
    found = _SYNCED.search(done.stdout)
    assert found is not None, done.stdout
    return {k: int(v) for k, v in found.groupdict().items()}


def test_server_gone_for_good_then_sync(
    server: OutageServer, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    """(b) The server stops after trial 0 and stays away: the sweep still runs its trials
    and the confirmation, names the runs whose logs wait on disk, and `studies sync`
    sends them once the server is back: every epoch once; a second sync sends nothing."""
    name, n_trials, home = "outage-gone", 3, tmp_path / "home"
    race = {"top_k": 1, "initial_seeds": 3, "max_seeds": 3}
    spec = _spec(tmp_path, name, n_trials, confirm=race)
    sweep = _launch(salsweep_process, spec, server.url, home, tmp_path / "sweep.log")
    try:
        _wait_for("trial 0", lambda: bool(_complete(name, home)), sweep, timeout=240)
        server.stop()
        stopped = time.time()
        sweep.wait(timeout=300)
        ended = time.time()
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, 9)
            sweep.wait(timeout=30)
    output = (tmp_path / "sweep.log").read_text(errors="replace")
    assert sweep.returncode == 0, output[-3000:]
    study = _study(name, home)
    assert study is not None and study.companion is not None
    trials = study.get_trials(("COMPLETE",))
    assert len(trials) == n_trials  # the budget, at training speed
    replicates = study.companion.get_trials(("COMPLETE",))
    assert len(replicates) == 3
    unsent = re.search(r"not sent yet .* for (\d+) run\(s\): (.*?); they wait", output, re.S)
    assert unsent is not None, output[-3000:]
    named = set(re.sub(r"\s+", "", unsent.group(2)).split(","))
    winner = f"confirm-{replicates[0].user_attrs['config_key']}"  # confirm-trial-<n>
    assert {"trial-1", "trial-2", "sweep", f"{winner}-seed1", f"{winner}-seed2"} <= named
    assert f"salsweep studies sync {name}" in re.sub(r"\s+", " ", output)
    # Before that line, the wait for the server was said as it began (not 30 s of silence).
    wait = re.search(r"sending the MLflow logs of (\d+) run\(s\): waiting up to (\d+) s", output)
    assert wait is not None, output[-3000:]
    assert wait.start() < unsent.start()
    assert int(wait.group(1)) == int(unsent.group(1))
    assert 25 <= int(wait.group(2)) <= SWEEP_FLUSH_S - WAIT_NOTICE_S

    # What waits on disk: the metric batches (epochs) of the runs, counted before the sync.
    outboxes = find_outboxes(home / "studies" / name)
    waiting_ops = sum(len(o.pending()) for o in outboxes)
    waiting_epochs = sum(
        1 for o in outboxes for op in o.pending() if op["op"] == OP_LOG and op["metrics"]
    )
    assert waiting_epochs >= 2 * EPOCHS + 3 * (EPOCHS + 1)  # trials 1, 2; 3 replicates + test

    # Runs created after their trial ended have no id in Optuna yet: `studies show` has "-".
    # (Trial 1 may have made its run in the moment before the server stopped.)
    late = [t for t in trials + replicates if "mlflow_run_id" not in t.user_attrs]
    assert {t.number for t in trials if t in late} in ({2}, {1, 2})
    assert all(r in late for r in replicates)

    server.start()
    first = _sync(name, server.url, home)
    assert first["sent"] + first["already"] == waiting_ops
    assert first["epochs"] == waiting_epochs
    assert first["refused"] == 0
    assert first["synced"] == len([o for o in outboxes if o.has_pending()])
    assert first["recorded"] == len(late)
    second = _sync(name, server.url, home)
    assert (second["synced"], second["sent"], second["already"], second["recorded"]) == (
        0,
        0,
        0,
        0,
    )

    client = MlflowClient(server.url)
    runs = _runs(client, name)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    by_trial = _trial_runs(runs)
    assert sorted(by_trial) == list(range(n_trials))
    synced = _study(name, home)  # read again: the ids the sync recorded
    assert synced is not None and synced.companion is not None
    run_ids = {t.number: t.user_attrs.get("mlflow_run_id") for t in synced.trials}
    for trial in trials:
        (run,) = by_trial[trial.number]
        assert run_ids[trial.number] == run.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.metrics["optuna.value"] == pytest.approx(trial.value)
        _assert_every_epoch_once(client, run)
    confirmations = [r for r in runs if r.data.tags.get("salsweep.role") == "confirmation"]
    assert sorted(r.info.run_name for r in confirmations) == [
        f"{winner}-seed{seed}" for seed in (1, 2, 3)
    ]
    replicate_ids = {t.user_attrs.get("mlflow_run_id") for t in synced.companion.trials}
    assert {r.info.run_id for r in confirmations} <= replicate_ids
    for run in confirmations:
        assert run.info.status == "FINISHED"
        _assert_every_epoch_once(client, run)
        for key in (k for k in run.data.metrics if k.startswith("test/")):
            assert len(client.get_metric_history(run.info.run_id, key)) == 1
    (parent,) = [r for r in runs if r.info.run_name == "sweep"]
    assert parent.info.status == "FINISHED"
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert {"best_config.yaml", "confirmation.md", "plots"} <= set(artifacts)

    # For the report: durations with the server up (trial 0, which also warms up) and gone.
    offline = [_seconds(t) for t in trials + replicates if _inside(t, stopped, ended)]
    last = max(t.datetime_complete for t in replicates if t.datetime_complete is not None)
    print(
        f"\n(b) trial 0 (server up) {_seconds(trials[0]):.1f} s; {len(offline)} runs with the "
        f"server gone: {', '.join(f'{d:.1f}' for d in offline)} s; the sweep exited "
        f"{ended - last.timestamp():.1f} s after its last run (the final wait); "
        f"{len(named)} runs named; {waiting_ops} operations ({waiting_epochs} epochs) on "
        f"disk; sync 1: {first}; sync 2: {second}"
    )
