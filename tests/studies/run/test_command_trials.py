"""Command trials end to end: real subprocesses (small programs written by the tests) run
as a sweep's trials through `studies.run_sweep` (and the CLI), against the session's real
MLflow server and SQLite storage."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from cli import cli
from studies import SweepTarget, load_study, run_sweep
from studies.attrs import companion_name
from studies.home import REPLICATES_DIR, study_dir, trial_dir
from studies.procs import live_processes
from studies.run.objective import epoch_selection, objective_value
from studies.tracking.layout import PRUNED_NOTE
from studies.tracking.server import ServerInfo
from sweeps import SweepSpec, parse_spec
from tests.process_helpers import SalsweepProcess
from tests.studies.sweep_helpers import tiny_spec
from trainer import fit

ROOT = Path(__file__).resolve().parents[3]
METRIC = "val/loss"

# The program of most tests: its values come in through the config copy (lambda_sg, the
# seed at training.seed, epochs), an argument (--lr) and the JSON file (scales, mapped
# nowhere); it writes what it saw into seen.json and reports val/loss at every epoch,
# by the file (studies.command.reporter) and as a line of standard output.
PROGRAM = """\
import json, os, sys
import yaml
from studies.command.reporter import report

config = yaml.safe_load(open(sys.argv[1]))
args = dict(word[2:].split("=", 1) for word in sys.argv[2:-1])
document = json.load(open(sys.argv[-1]))
lambda_sg = config["model"]["loss"]["lambda_sg"]
lr = float(args["lr"])
scales = document["params"]["scales"]
seed = config["training"]["seed"]
env = {k: v for k, v in os.environ.items() if k.startswith(("SALSWEEP_", "MLFLOW_"))}
seen = {"config": config, "args": args, "document": document, "env": env}
with open(os.path.join(os.environ["SALSWEEP_TRIAL_DIR"], "seen.json"), "w") as f:
    json.dump(seen, f)
print("starting", lambda_sg, lr, scales, seed, file=sys.stderr)
for epoch in range(1, config["training"]["epochs"] + 1):
    loss = lambda_sg + 100 * lr + scales + seed / 1000 + 1 / epoch
    report(epoch, **{"val/loss": loss, "train/loss": 2 * loss})
    print(f"epoch {epoch} val_loss={loss!r}", flush=True)
"""

BASE_CONFIG = """\
# the user's own config: comments are not kept in the copies
model:
  loss: {lambda_sg: 0.5, kind: mine}
training: {seed: 99, epochs: 3}
"""


def value_of(params: dict[str, Any], seed: int, epochs: int = 3) -> float:
    """The objective `PROGRAM` reaches: val/loss of its last (best) epoch."""
    return params["lambda_sg"] + 100 * params["lr"] + params["scales"] + seed / 1000 + 1 / epochs


def write_program(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def command_spec(
    project: Path, name: str, program: Path, *, n_trials: int = 2, **command: Any
) -> SweepSpec:
    """A command spec running ``program`` (with this interpreter) in ``project``."""
    section: dict[str, Any] = {
        "argv": [sys.executable, str(program), "{config}", "{args}", "{json}"],
        "workdir": str(project),
        "base_config": str(project / "train.yaml"),
        "keys": {"lambda_sg": "model.loss.lambda_sg", "lr": "--lr"},
        "seed_key": "training.seed",
        "seed": 7,
        "grace_s": 1.0,
    }
    extra = {k: command.pop(k) for k in ("pruner", "confirm", "objective") if k in command}
    section.update(command)
    data: dict[str, Any] = {
        "name": name,
        "command": section,
        "search": {
            "lambda_sg": {"low": 0.1, "high": 1.0},
            "lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "scales": {"low": 1, "high": 3},
        },
        "objective": {"metric": METRIC, "direction": "minimize"},
        "budget": {"n_trials": n_trials},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "baseline": False,
        **extra,
    }
    return parse_spec(data, "test")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The user's project: train.yaml and train.py."""
    folder = tmp_path / "project"
    write_program(folder, "train.py", PROGRAM)
    (folder / "train.yaml").write_text(BASE_CONFIG)
    return folder


@pytest.fixture
def target(mlflow_server: ServerInfo, tmp_path: Path) -> SweepTarget:
    home = tmp_path / "home"
    return SweepTarget(f"sqlite:///{home / 'optuna.db'}", mlflow_server.url, home)


def trial_folder(target: SweepTarget, name: str, number: int) -> Path:
    return trial_dir(study_dir(target.home, name), number)


def child_runs(client: MlflowClient, experiment_id: str, parent: str) -> dict[str, Any]:
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    return {run.info.run_name: run for run in runs}


def artifact_names(client: MlflowClient, run_id: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id)}


def download_text(client: MlflowClient, run_id: str, path: str, into: Path) -> str:
    into.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(into))).read_text()


# ---------------------------------------------------------------------------- file, stdout


@pytest.mark.slow
def test_values_in_and_metrics_back_through_the_file(
    project: Path, target: SweepTarget, mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    name = "cmd-file"
    spec = command_spec(project, name, project / "train.py")
    outcome = run_sweep(spec, name, target)
    assert outcome.ran == 2
    study = load_study(name, target.storage_url)
    client = MlflowClient(mlflow_server.url)
    runs = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert sorted(runs) == ["trial-0", "trial-1"]
    for trial in study.get_trials():
        assert trial.state == TrialState.COMPLETE
        params = trial.params
        assert trial.value == pytest.approx(value_of(params, 7), rel=1e-12)
        assert trial.user_attrs["seed"] == 7
        assert sorted(trial.intermediate_values) == [1, 2, 3]
        folder = trial_folder(target, name, trial.number)
        seen = json.loads((folder / "seen.json").read_text())
        # The config copy: the base config with the keys set, the rest kept.
        assert seen["config"] == {
            "model": {"loss": {"lambda_sg": params["lambda_sg"], "kind": "mine"}},
            "training": {"seed": 7, "epochs": 3},
        }
        assert float(seen["args"]["lr"]) == params["lr"]
        assert seen["document"] == {"trial_number": trial.number, "seed": 7, "params": params}
        run = runs[f"trial-{trial.number}"]
        env = seen["env"]
        assert env["SALSWEEP_TRIAL_NUMBER"] == str(trial.number)
        assert Path(env["SALSWEEP_TRIAL_DIR"]) == folder.absolute()
        assert env["MLFLOW_RUN_ID"] == run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert env["MLFLOW_EXPERIMENT_ID"] == outcome.experiment_id
        assert env["MLFLOW_TRACKING_URI"] == mlflow_server.url
        # The MLflow run: its params, every epoch's metrics, its end.
        assert run.info.status == "FINISHED"
        assert run.data.params["lambda_sg"] == str(params["lambda_sg"])
        assert run.data.params["scales"] == str(params["scales"])
        assert run.data.params["seed"] == "7"
        history = client.get_metric_history(run.info.run_id, METRIC)
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (epoch, pytest.approx(value_of(params, 7, epoch))) for epoch in (1, 2, 3)
        ]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [
            1,
            2,
            3,
        ]
        assert run.data.metrics["optuna.value"] == pytest.approx(trial.value)
        assert run.data.tags["optuna.state"] == "COMPLETE"
        # Its folder keeps the program's output, and so does the run.
        assert "epoch 3 val_loss=" in (folder / "stdout.log").read_text()
        assert "starting" in (folder / "stderr.log").read_text()
        assert {"config.yaml", "stdout.log", "stderr.log"} <= artifact_names(
            client, run.info.run_id
        )
        into = tmp_path / "artifacts" / str(trial.number)
        config = yaml.safe_load(download_text(client, run.info.run_id, "config.yaml", into))
        assert config == seen["config"]
        stdout = download_text(client, run.info.run_id, "stdout.log", into)
        assert stdout == (folder / "stdout.log").read_text()
        assert "starting" in download_text(client, run.info.run_id, "stderr.log", into)


@pytest.mark.slow
def test_metrics_from_a_stdout_pattern(
    project: Path, target: SweepTarget, mlflow_server: ServerInfo
) -> None:
    name = "cmd-stdout"
    spec = command_spec(
        project,
        name,
        project / "train.py",
        n_trials=1,
        metrics="stdout",
        pattern=r"^epoch (?P<step>\d+) val_loss=(?P<value>\S+)$",
    )
    outcome = run_sweep(spec, name, target)
    (trial,) = load_study(name, target.storage_url).get_trials()
    assert trial.state == TrialState.COMPLETE
    assert trial.value == pytest.approx(value_of(trial.params, 7), rel=1e-12)
    assert sorted(trial.intermediate_values) == [1, 2, 3]
    client = MlflowClient(mlflow_server.url)
    run = child_runs(client, outcome.experiment_id, outcome.parent_run_id)["trial-0"]
    assert run.info.status == "FINISHED"
    # The pattern names one metric: the objective's; train/loss went only to the file.
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, METRIC)) == [1, 2, 3]
    assert "train/loss" not in run.data.metrics


# ---------------------------------------------------------------------------- pruned (mlflow)

# Logs val/loss to the trial's own MLflow run (resumed through MLFLOW_RUN_ID). Trial 0
# reports low values and ends; trial 1 reports high ones and would run for a minute: the
# median pruner stops it at its first step. On the stop file or SIGTERM it leaves its
# `with mlflow.start_run()` as a finished run (MLflow marks the run FINISHED, and it says
# so in ended.txt), while a grandchild that ignores SIGTERM keeps the process group alive
# until the SIGKILL of the grace.
MLFLOW_PROGRAM = """\
import os, signal, subprocess, sys, time
import mlflow
from studies.command.reporter import should_stop

folder = os.environ["SALSWEEP_TRIAL_DIR"]
number = int(os.environ["SALSWEEP_TRIAL_NUMBER"])
with open(os.path.join(folder, "leader.pid"), "w") as f:
    f.write(str(os.getpid()))
if number == 1:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    subprocess.Popen([sys.executable, "-c", stubborn])
terminated = []
signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
expected = os.environ["MLFLOW_RUN_ID"]  # start_run() takes it out of the environment
with mlflow.start_run() as run:
    assert run.info.run_id == expected
    steps = 3 if number == 0 else 300
    for step in range(1, steps + 1):
        mlflow.log_metric("val/loss", 0.1 if number == 0 else 10.0, step=step)
        if should_stop() or terminated:
            break
        time.sleep(0.2)
status = mlflow.MlflowClient().get_run(expected).info.status
with open(os.path.join(folder, "ended.txt"), "w") as f:
    f.write(status)
"""


def _live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are alive (zombies, which only wait for this
    container's init to reap them, are not)."""
    return [pid for pid, (_ppid, group) in live_processes().items() if group == pgid]


class _Watch:
    """Follows trial 1 of a sweep from another thread: when salsweep asks it to stop (its
    stop file appears), how long a live process of its group is left."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.gone_after: float | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stop_file, pid_file = self.folder / "STOP", self.folder / "leader.pid"
        while not self.done.is_set():
            if stop_file.exists() and pid_file.exists():
                asked = time.monotonic()
                pgid = int(pid_file.read_text())
                while time.monotonic() - asked < 60:
                    if not _live_members(pgid):
                        self.gone_after = time.monotonic() - asked
                        return
                    time.sleep(0.01)
                return
            time.sleep(0.01)


@pytest.mark.slow
def test_a_pruned_trial_stops_its_group_and_its_run_is_killed(
    tmp_path: Path,
    target: SweepTarget,
    mlflow_server: ServerInfo,
    assert_group_gone: Callable[[int], None],
) -> None:
    name = "cmd-pruned"
    project = tmp_path / "project"
    program = write_program(project, "train.py", MLFLOW_PROGRAM)
    spec = parse_spec(
        {
            "name": name,
            "command": {
                "argv": [sys.executable, str(program), "{json}"],
                "workdir": str(project),
                "metrics": "mlflow",
                "poll_s": 0.2,
                "grace_s": 1.0,
            },
            "search": {"lambda_sg": {"low": 0.1, "high": 1.0}},
            "objective": {"metric": METRIC},
            "budget": {"n_trials": 2},
            "sampler": {"type": "random", "seed": 0},
            "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
            "baseline": False,
        },
        "test",
    )
    watch = _Watch(trial_folder(target, name, 1))
    try:
        outcome = run_sweep(spec, name, target)
    finally:
        watch.done.set()
    watch.thread.join(5)
    first, pruned = load_study(name, target.storage_url).get_trials()
    assert first.state == TrialState.COMPLETE and first.value == pytest.approx(0.1)
    assert pruned.state == TrialState.PRUNED
    # Pruned at its first step; steps the program logged before it stopped may follow.
    assert min(pruned.intermediate_values) == 1
    pgid = int((trial_folder(target, name, 1) / "leader.pid").read_text())
    assert_group_gone(pgid)
    assert watch.gone_after is not None, "the pruned trial's group was not seen to end"
    assert watch.gone_after <= spec.command.grace_s + 1.0  # type: ignore[union-attr]
    client = MlflowClient(mlflow_server.url)
    runs = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert runs["trial-0"].info.status == "FINISHED"
    # The program ended its resumed run FINISHED as it left `with start_run()`; the
    # trial was pruned, and salsweep closed it as pruned: FINISHED (not a failure), with
    # its state and the description of a pruned run.
    killed = runs["trial-1"]
    assert (trial_folder(target, name, 1) / "ended.txt").read_text() == "FINISHED"
    assert killed.info.status == "FINISHED"
    assert killed.data.tags["optuna.state"] == "PRUNED"
    assert killed.data.tags["mlflow.note.content"] == PRUNED_NOTE
    logged = client.get_metric_history(killed.info.run_id, METRIC)
    assert logged and {m.value for m in logged} == {10.0}  # by the program itself
    assert {"stdout.log", "stderr.log"} <= artifact_names(client, killed.info.run_id)


# ---------------------------------------------------------------------------- failures

# Trial 0 exits 3 with a message on standard error; trial 2 exits 0 without reporting the
# objective; the others complete.
FAILING_PROGRAM = """\
import os, sys
from studies.command.reporter import report

number = int(os.environ["SALSWEEP_TRIAL_NUMBER"])
if number == 0:
    print("loading the data", file=sys.stderr)
    print("RuntimeError: the data set is gone", file=sys.stderr)
    sys.exit(3)
if number == 2:
    report(1, **{"train/loss": 0.5})
    sys.exit(0)
report(1, **{"val/loss": 0.25 + number})
"""


@pytest.mark.slow
def test_failing_programs_fail_their_trial_and_the_sweep_goes_on(
    tmp_path: Path, target: SweepTarget, mlflow_server: ServerInfo
) -> None:
    name = "cmd-fail"
    project = tmp_path / "project"
    program = write_program(project, "train.py", FAILING_PROGRAM)
    spec = parse_spec(
        {
            "name": name,
            "command": {"argv": [sys.executable, str(program), "{json}"], "workdir": str(project)},
            "search": {"lambda_sg": {"low": 0.1, "high": 1.0}},
            "objective": {"metric": METRIC},
            "budget": {"n_trials": 2},
            "sampler": {"type": "random", "seed": 0},
            "pruner": {"type": "none"},
            "baseline": False,
        },
        "test",
    )
    outcome = run_sweep(spec, name, target)
    trials = load_study(name, target.storage_url).get_trials()
    assert [t.state for t in trials] == [
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert [t.value for t in trials if t.value is not None] == [1.25, 3.25]
    crashed = trials[0].user_attrs["fail_reason"]
    assert "exit code 3" in crashed
    assert "loading the data" in crashed and "RuntimeError: the data set is gone" in crashed
    silent = trials[2].user_attrs["fail_reason"]
    assert "exit code 0 without the objective metric 'val/loss'" in silent
    assert "train/loss" in silent
    client = MlflowClient(mlflow_server.url)
    runs = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert [runs[f"trial-{n}"].info.status for n in range(4)] == [
        "FAILED",
        "FINISHED",
        "FAILED",
        "FINISHED",
    ]
    assert "RuntimeError" in download_text(
        client, runs["trial-0"].info.run_id, "stderr.log", tmp_path / "a"
    )


# ---------------------------------------------------------------------------- confirmation


@pytest.mark.slow
def test_the_confirmation_runs_the_program_with_the_next_seeds(
    project: Path, target: SweepTarget, mlflow_server: ServerInfo
) -> None:
    name = "cmd-confirm"
    race = {"top_k": 1, "initial_seeds": 3, "max_seeds": 3}
    spec = command_spec(project, name, project / "train.py", n_trials=2, confirm=race)
    outcome = run_sweep(spec, name, target)
    assert outcome.replicates == 3
    study = load_study(name, target.storage_url)
    best = min(study.get_trials(), key=lambda t: (t.value, t.number))
    companion = optuna.load_study(study_name=companion_name(name), storage=target.storage_url)
    replicates = sorted(companion.get_trials(), key=lambda t: t.user_attrs["seed"])
    assert [t.user_attrs["seed"] for t in replicates] == [8, 9, 10]  # after the search's 7
    for index, replicate in enumerate(replicates):
        assert replicate.state == TrialState.COMPLETE
        assert replicate.user_attrs["config_key"] == f"trial-{best.number}"
        assert replicate.user_attrs["seed_index"] == index
        assert "data_seed" not in replicate.user_attrs  # the program's scenes are its own
        # The program reports no test/loss: the race decides on validation, no test score.
        assert replicate.user_attrs["test_value"] is None
        seed = replicate.user_attrs["seed"]
        # The seed reached the program through seed_key (training.seed of the copy).
        assert replicate.value == pytest.approx(value_of(best.params, seed), rel=1e-12)
        run_name = f"confirm-trial-{best.number}-seed{seed}"
        folder = study_dir(target.home, name) / REPLICATES_DIR / run_name
        seen = json.loads((folder / "seen.json").read_text())
        assert seen["config"]["training"]["seed"] == seed
    client = MlflowClient(mlflow_server.url)
    runs = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    for seed in (8, 9, 10):
        run = runs[f"confirm-trial-{best.number}-seed{seed}"]
        assert run.info.status == "FINISHED"
        assert run.data.params["seed"] == str(seed)
        assert {"config.yaml", "stdout.log", "stderr.log"} <= artifact_names(
            client, run.info.run_id
        )


# ---------------------------------------------------------------------------- the CLI


def _spec_file(project: Path, spec: SweepSpec) -> Path:
    path = project / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    return path


@pytest.mark.slow
def test_sweep_launch_runs_a_command_spec(
    project: Path, mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    name = "cmd-cli"
    path = _spec_file(project, command_spec(project, name, project / "train.py", n_trials=2))
    home = tmp_path / "home"
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "SALSWEEP_HOME": str(home)}
    result = CliRunner().invoke(cli, ["sweep", "launch", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "trial 1: COMPLETE" in result.output
    study = load_study(name, f"sqlite:///{home / 'optuna.db'}")
    for trial in study.get_trials():
        assert trial.state == TrialState.COMPLETE
        assert trial.value == pytest.approx(value_of(trial.params, 7), rel=1e-12)


# ---------------------------------------------------------------------------- stop signals

# Reports forever (every 0.1 s) beside a grandchild that sleeps: only a stop ends it.
FOREVER_PROGRAM = """\
import os, subprocess, sys, time
from studies.command.reporter import report

folder = os.environ["SALSWEEP_TRIAL_DIR"]
with open(os.path.join(folder, "leader.pid"), "w") as f:
    f.write(str(os.getpid()))
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(os.path.join(folder, "grandchild.pid"), "w") as f:
    f.write(str(child.pid))
step = 0
while True:
    step += 1
    report(step, **{"val/loss": 1.0 / step})
    time.sleep(0.1)
"""


def _running(storage: str, name: str) -> list[FrozenTrial]:
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception:  # not created yet, or its tables being created
        return []
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM], ids=["SIGTERM"])
def test_a_stopped_launch_leaves_no_process_of_a_trial(
    tmp_path: Path,
    mlflow_server: ServerInfo,
    assert_group_gone: Callable[[int], None],
    salsweep_process: SalsweepProcess,
    signum: int,
) -> None:
    name = "cmd-stop"
    project = tmp_path / "project"
    program = write_program(project, "train.py", FOREVER_PROGRAM)
    spec = parse_spec(
        {
            "name": name,
            "command": {
                "argv": [sys.executable, str(program), "{json}"],
                "workdir": str(project),
                "grace_s": 2.0,
            },
            "search": {"lambda_sg": {"low": 0.1, "high": 1.0}},
            "objective": {"metric": METRIC},
            "budget": {"n_trials": 2},
            "pruner": {"type": "none"},
            "baseline": False,
        },
        "test",
    )
    path = _spec_file(project, spec)
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.url, "SALSWEEP_HOME": str(home)}
    # The launch is the subject (a real stop signal to a real process): a child process.
    proc = salsweep_process.popen(
        "sweep",
        "launch",
        str(path),
        env=env,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    folder = trial_dir(study_dir(home, name), 0)
    try:
        deadline = time.monotonic() + 180
        while not (
            (folder / "grandchild.pid").exists()
            and any(t.intermediate_values for t in _running(storage, name))
        ):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "timed out waiting for a running trial"
            time.sleep(0.1)
        leader = int((folder / "leader.pid").read_text())
        os.kill(proc.pid, signum)  # as `docker stop`: the main process only
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 143, output
    assert "Traceback" not in output
    assert_group_gone(leader)
    grandchild = int((folder / "grandchild.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)
    assert_group_gone(proc.pid)
    (trial,) = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert trial.state == TrialState.FAIL
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    statuses = {
        r.info.run_name: r.info.status for r in client.search_runs([experiment.experiment_id])
    }
    assert statuses == {"sweep": "KILLED", "trial-0": "FAILED"}


# ---------------------------------------------------------------------------- salsweep train


@pytest.mark.slow
def test_salsweep_train_as_a_command_gives_the_in_process_objective(
    tmp_path: Path, target: SweepTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`salsweep train {config}` as a command trial scores each trial as the built-in
    trainer does in this process, with the same values and seed (and as many torch
    threads: a reduction split another way may differ in the last bits)."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    name = "cmd-train"
    builtin = tiny_spec(name, n_trials=2, baseline=False, sampler={"type": "random", "seed": 1})
    base = tmp_path / "train.yaml"
    base.write_text(yaml.safe_dump(builtin.base.model_dump(mode="json"), sort_keys=False))
    salsweep = Path(sys.executable).parent / "salsweep"  # the console script of this venv
    data = builtin.model_dump(mode="json")
    del data["base"]
    data["command"] = {
        "argv": [str(salsweep), "train", "{config}", "--output-dir", "{trial_dir}"],
        "workdir": str(tmp_path),
        "base_config": str(base),
        "keys": {key: key for key in builtin.search},
        "seed_key": "seed",
        "seed": builtin.training_seed(),
    }
    spec = parse_spec(data, "test")
    run_sweep(spec, name, target)
    trials = load_study(name, target.storage_url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    objective = builtin.objective
    for trial in trials:
        config = builtin.config_for(trial.params).model_copy(
            update={"output_dir": tmp_path / f"in-process-{trial.number}"}
        )
        assert config.seed == trial.user_attrs["seed"] == 0
        result = fit(config, select=epoch_selection(objective))
        expected = objective_value(
            result.history, objective.metric, objective.direction, objective.reduce
        )
        assert trial.value == pytest.approx(expected, rel=1e-6)
        assert trial.intermediate_values == {
            epoch: pytest.approx(h[objective.metric], rel=1e-6)
            for epoch, h in enumerate(result.history, start=1)
        }
        # salsweep train wrote its outputs into the trial's folder (--output-dir).
        assert (trial_folder(target, name, trial.number) / "previews").is_dir()


# ---------------------------------------------------------------------------- the example


@pytest.mark.slow
def test_the_example_trainer_swept_as_a_command(
    tmp_path: Path, target: SweepTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/sweep-example.yaml as shipped (run from the repository root with `python`
    the venv's), on a smaller copy of examples/example.yaml: 2 trials of 2 epochs."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    data = yaml.safe_load((ROOT / "examples" / "sweep-example.yaml").read_text())
    settings = yaml.safe_load((ROOT / "examples" / "example.yaml").read_text())
    settings.update(epochs=2, height=32, width=64, num_train=8, num_val=4)
    (tmp_path / "example.yaml").write_text(yaml.safe_dump(settings))
    data["command"].update(base_config=str(tmp_path / "example.yaml"), steps=2)
    data.update(budget={"n_trials": 2})
    del data["confirm"]
    spec = parse_spec(data, "example")
    started = time.monotonic()
    run_sweep(spec, "example", target)
    took = time.monotonic() - started
    trials = load_study("example", target.storage_url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        folder = trial_folder(target, "example", trial.number)
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        reported = [json.loads(line)["metrics"]["val/abs_rel_med"] for line in lines]
        assert len(reported) == 2 and all(math.isfinite(v) for v in reported)
        assert trial.value == min(reported)
        assert trial.intermediate_values == dict(enumerate(reported, start=1))
        copy = yaml.safe_load((folder / "config.yaml").read_text())
        assert copy == {**settings, **trial.params, "seed": 0}
        assert "epoch 2: train/loss=" in (folder / "stdout.log").read_text()
    print(f"the example's 2 trials took {took:.1f} s")
