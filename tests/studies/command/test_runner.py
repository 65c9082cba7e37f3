"""Running command trials: real subprocesses (small Python scripts written by the tests)
reporting metrics, pruned, killed, timed out, failing; no process outlives a trial."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from studies.command.inputs import trial_env
from studies.command.metrics import MetricPoint
from studies.command.prepare import METRICS_FILE, STOP_FILE, LaunchPlan, TrialInputs
from studies.command.runner import (
    CommandResult,
    MlflowSource,
    StdoutSource,
    TrialStatus,
    run_command,
)
from studies.command.trial import run_trial
from sweeps import parse_spec

ROOT = Path(__file__).resolve().parents[3]

# A preamble of every script: the reporter, its pid in leader.pid (the process group), and
# spawn_grandchild(): a process that sleeps, its pid in grandchild.pid.
PREAMBLE = """\
import os, signal, subprocess, sys, time
from studies.command.reporter import report, should_stop

with open(os.path.join(os.environ["SALSWEEP_TRIAL_DIR"], "leader.pid"), "w") as f:
    f.write(str(os.getpid()))

def spawn_grandchild():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    path = os.path.join(os.environ["SALSWEEP_TRIAL_DIR"], "grandchild.pid")
    with open(path, "w") as f:
        f.write(str(child.pid))
"""

REPORT_FOREVER = """\
spawn_grandchild()
step = 0
while True:
    step += 1
    report(step, **{"val/loss": 1.0 / step})
    time.sleep(0.05)
"""


def make_plan(tmp_path: Path, body: str, *, name: str = "trial") -> LaunchPlan:
    """A plan that runs ``body`` (after `PREAMBLE`) with this interpreter."""
    trial_dir = tmp_path / name
    trial_dir.mkdir()
    script = tmp_path / f"{name}.py"
    script.write_text(PREAMBLE + textwrap.dedent(body))
    env = trial_env(
        {**os.environ, "PYTHONPATH": str(ROOT)},
        trial_dir=trial_dir,
        trial_number=0,
        metrics_file=trial_dir / METRICS_FILE,
        stop_file=trial_dir / STOP_FILE,
    )
    return LaunchPlan(
        argv=(sys.executable, str(script)), env=env, cwd=tmp_path, trial_dir=trial_dir
    )


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def grandchild(plan: LaunchPlan) -> int:
    return int((plan.trial_dir / "grandchild.pid").read_text())


class PruneAt:
    """on_metrics that asks to stop at ``step``, recording each call and when it asked."""

    def __init__(self, step: int | None) -> None:
        self.step = step
        self.calls: list[tuple[int, dict[str, float]]] = []
        self.asked_at: float | None = None

    def __call__(self, step: int, metrics: Mapping[str, float]) -> bool:
        self.calls.append((step, dict(metrics)))
        if self.step is not None and step >= self.step and self.asked_at is None:
            self.asked_at = time.monotonic()
            return True
        return False


def test_metrics_from_the_file_complete_the_trial(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(
        tmp_path,
        """
        for step in (1, 2, 3):
            report(step, **{"val/loss": 1.0 / step, "train/loss": 2.0 / step})
        report(3, extra=7)
        print("done")
        print("a warning", file=sys.stderr)
        """,
    )
    seen = PruneAt(None)
    result = run_command(plan, objective="val/loss", on_metrics=seen)
    assert result.status is TrialStatus.COMPLETED and result.reason == ""
    assert result.exit_code == 0 and result.stop is None
    assert result.values("val/loss") == [(1, 1.0), (2, 0.5), (3, 1.0 / 3)]
    assert seen.calls == [
        (1, {"val/loss": 1.0, "train/loss": 2.0}),
        (2, {"val/loss": 0.5, "train/loss": 1.0}),
        (3, {"val/loss": 1.0 / 3, "train/loss": 2.0 / 3}),
        (3, {"extra": 7.0}),
    ]
    assert plan.stdout_file.read_text() == "done\n"
    assert result.stderr_tail == ("a warning",)
    assert not plan.stop_file.exists()
    assert result.pid is not None
    assert_group_gone(result.pid)


def test_metrics_from_a_stdout_pattern(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(
        tmp_path,
        """
        for epoch in (1, 2):
            print(f"epoch {epoch} val_loss={0.5 / epoch} lr=0.1")
            print("noise")
        print("epoch 3 val_loss=oops")
        """,
    )
    source = StdoutSource(r"epoch (?P<step>\d+) val_loss=(?P<value>\S+)")
    result = run_command(plan, objective="val_loss", source=source)
    assert result.status is TrialStatus.COMPLETED
    assert result.values("val_loss") == [(1, 0.5), (2, 0.25)]
    assert result.problems == ("stdout line 5: no number in 'epoch 3 val_loss=oops'",)
    # Standard output is kept in its file as well.
    assert plan.stdout_file.read_text().splitlines()[0] == "epoch 1 val_loss=0.5 lr=0.1"
    assert result.pid is not None
    assert_group_gone(result.pid)


def test_metrics_from_an_mlflow_poll(tmp_path: Path) -> None:
    """The poll is handed in (here: it reads a file the program writes), so that no MLflow
    is needed; a poll that fails once is a problem, not the end of the trial."""
    plan = make_plan(
        tmp_path,
        """
        with open(os.path.join(os.environ["SALSWEEP_TRIAL_DIR"], "points"), "a") as f:
            for step in (1, 2, 3):
                f.write(f"val/loss {step} {1.0 / step}\\n")
                f.flush()
                time.sleep(0.15)
        """,
    )
    calls = 0

    def poll() -> list[MetricPoint]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("server away")
        path = plan.trial_dir / "points"
        lines = path.read_text().splitlines() if path.exists() else []
        return [MetricPoint(n, int(s), float(v)) for n, s, v in (x.split() for x in lines)]

    result = run_command(plan, objective="val/loss", source=MlflowSource(poll, interval_s=0.1))
    assert result.status is TrialStatus.COMPLETED
    assert result.values("val/loss") == [(1, 1.0), (2, 0.5), (3, 1.0 / 3)]
    assert result.problems == ("reading the MLflow run's metrics: server away",)


def test_pruning_stops_the_group_grandchild_included(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(tmp_path, REPORT_FOREVER)
    prune = PruneAt(3)
    grace = 3.0
    result = run_command(plan, objective="val/loss", on_metrics=prune, grace_s=grace)
    gone_after = time.monotonic() - (prune.asked_at or 0.0)
    assert result.status is TrialStatus.PRUNED and result.reason == "pruned at step 3"
    assert plan.stop_file.exists()  # written before SIGTERM
    assert result.stop is not None and result.stop.sigterm and not result.stop.sigkill
    assert result.exit_code == -signal.SIGTERM
    assert gone_after < grace + 1.0
    assert not pid_alive(grandchild(plan))
    assert result.pid is not None
    assert_group_gone(result.pid)
    # Reports read after the stop are kept (the callback is not asked again to stop).
    assert [s for s, _ in prune.calls][:3] == [1, 2, 3]


def test_a_program_that_ignores_sigterm_gets_sigkill_after_the_grace(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(
        tmp_path,
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        spawn_grandchild()  # inherits the ignored SIGTERM
        report(1, loss=1.0)
        while True:
            time.sleep(0.05)
        """,
    )
    prune = PruneAt(1)
    grace = 1.0
    result = run_command(plan, objective="loss", on_metrics=prune, grace_s=grace)
    gone_after = time.monotonic() - (prune.asked_at or 0.0)
    assert result.status is TrialStatus.PRUNED
    assert result.stop is not None and result.stop.sigterm and result.stop.sigkill
    assert result.stop.left == frozenset()
    assert result.exit_code == -signal.SIGKILL
    assert grace <= gone_after < grace + 1.0
    assert not pid_alive(grandchild(plan))
    assert result.pid is not None
    assert_group_gone(result.pid)


def test_a_program_that_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        """
        stopping = False
        def on_term(signum, frame):
            global stopping
            stopping = True
        signal.signal(signal.SIGTERM, on_term)
        step = 0
        while not stopping:
            step += 1
            report(step, loss=1.0)
            time.sleep(0.05)
        print("saw the stop file:", should_stop())
        sys.exit(0)
        """,
    )
    result = run_command(plan, objective="loss", on_metrics=PruneAt(2), grace_s=5.0)
    assert result.status is TrialStatus.PRUNED and result.exit_code == 0
    assert result.stop is not None and not result.stop.sigkill
    assert plan.stdout_file.read_text() == "saw the stop file: True\n"


def test_timeout(tmp_path: Path, assert_group_gone: Callable[[int], None]) -> None:
    plan = make_plan(tmp_path, REPORT_FOREVER)
    started = time.monotonic()
    result = run_command(plan, objective="val/loss", timeout_s=1.0, grace_s=2.0)
    assert result.status is TrialStatus.TIMED_OUT
    assert result.reason == "timed out after 1 s (command.timeout_s)"
    assert 1.0 <= time.monotonic() - started < 1.0 + 2.0 + 1.0
    assert plan.stop_file.exists() and len(result.reports) >= 1
    assert not pid_alive(grandchild(plan))
    assert result.pid is not None
    assert_group_gone(result.pid)


def test_a_non_zero_exit_fails_with_the_end_of_stderr(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        """
        report(1, loss=0.5)
        for i in range(30):
            print(f"line {i}", file=sys.stderr)
        print("CUDA out of memory", file=sys.stderr)
        sys.exit(3)
        """,
    )
    result = run_command(plan, objective="loss")
    assert result.status is TrialStatus.FAILED and result.exit_code == 3
    assert result.reason.startswith("exit code 3; last lines of standard error:\n  line 11\n")
    assert result.reason.endswith("\n  line 29\n  CUDA out of memory")
    assert len(result.stderr_tail) == 20


def test_a_program_killed_by_a_signal_fails(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)\n")
    result = run_command(plan, objective="loss")
    assert result.status is TrialStatus.FAILED and result.exit_code == -signal.SIGKILL
    assert result.reason == "killed by SIGKILL (9); standard error is empty"


def test_exit_zero_without_the_objective_fails(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        """
        report(1, **{"val/loss": 0.5})
        with open(os.environ["SALSWEEP_METRICS_FILE"], "a") as f:
            f.write("garbage\\n")
        """,
    )
    result = run_command(plan, objective="val/abs_rel")
    assert result.status is TrialStatus.FAILED and result.exit_code == 0
    assert result.reason == (
        "exit code 0 without the objective metric 'val/abs_rel' (it reported val/loss); "
        "unreadable metrics:\n  metrics.jsonl line 2: not JSON: Expecting value; "
        "standard error is empty"
    )


def test_leftover_processes_of_a_finished_program_are_stopped(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(tmp_path, "spawn_grandchild()\nreport(1, loss=0.5)\n")
    result = run_command(plan, objective="loss", grace_s=2.0)
    assert result.status is TrialStatus.COMPLETED
    assert result.stop is not None and result.stop.sigterm  # the grandchild was left
    assert not plan.stop_file.exists()
    assert not pid_alive(grandchild(plan))
    assert result.pid is not None
    assert_group_gone(result.pid)


def test_a_stop_event_from_another_thread(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(tmp_path, REPORT_FOREVER)
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    result = run_command(plan, objective="val/loss", stop=stop, grace_s=2.0)
    timer.join()
    assert result.status is TrialStatus.STOPPED
    assert result.reason == "stopped: the sweep is stopping"
    assert result.pid is not None
    assert_group_gone(result.pid)


@pytest.mark.usefixtures("stop_handlers")
def test_the_sweeps_sigterm_stops_the_trial_and_propagates(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    """With the CLI's stop handlers (studies.run.signals), SIGTERM to the sweep raises
    Terminated in the loop: the trial's group is stopped the same way, then it goes on."""
    from studies.run.signals import Terminated

    plan = make_plan(tmp_path, REPORT_FOREVER)
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    with pytest.raises(Terminated):
        run_command(plan, objective="val/loss", grace_s=2.0)
    timer.join()
    assert time.monotonic() - started < 0.8 + 2.0 + 1.0
    assert plan.stop_file.exists()
    assert not pid_alive(grandchild(plan))
    assert_group_gone(int((plan.trial_dir / "leader.pid").read_text()))


def test_an_exception_of_the_callback_stops_the_trial(
    tmp_path: Path, assert_group_gone: Callable[[int], None]
) -> None:
    plan = make_plan(tmp_path, REPORT_FOREVER)

    def explode(step: int, metrics: Mapping[str, float]) -> bool:
        raise RuntimeError("storage gone")

    with pytest.raises(RuntimeError, match="storage gone"):
        run_command(plan, objective="val/loss", on_metrics=explode, grace_s=2.0)
    assert plan.stop_file.exists()
    assert not pid_alive(grandchild(plan))


def test_a_program_that_cannot_start(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, "")
    plan = LaunchPlan(("/no/such/program",), plan.env, tmp_path, plan.trial_dir)
    result = run_command(plan, objective="loss")
    assert result.status is TrialStatus.FAILED and result.exit_code is None
    assert result.pid is None
    assert result.reason == "cannot start '/no/such/program': No such file or directory"


def test_run_trial_passes_config_args_json_and_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the spec to the result: the program reads its values from the config copy,
    the arguments and the JSON file, and reports them back."""
    (tmp_path / "train.yaml").write_text("model: {loss: {lambda_sg: 0.5}}\nseed: 1\n")
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """\
            import argparse, json
            import yaml
            from studies.command.reporter import report
            parser = argparse.ArgumentParser()
            parser.add_argument("--config")
            parser.add_argument("--lr", type=float)
            parser.add_argument("params")
            args = parser.parse_args()
            config = yaml.safe_load(open(args.config))
            params = json.load(open(args.params))  # positional: the JSON file
            report(1, lambda_sg=config["model"]["loss"]["lambda_sg"], lr=args.lr,
                   seed=config["seed"], width=params["params"]["width"])
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    spec = parse_spec(
        {
            "name": "e2e",
            "command": {
                "argv": [sys.executable, "train.py", "--config={config}", "{args}", "{json}"],
                "base_config": "train.yaml",
                "keys": {"lambda_sg": "model.loss.lambda_sg", "lr": "--lr"},
                "seed_key": "seed",
                "grace_s": 2.0,
            },
            "search": {"lambda_sg": {"low": 0.1, "high": 1.0}, "lr": [0.01, 0.1], "width": 32},
            "objective": {"metric": "lambda_sg"},
        },
        "t",
    )
    assert spec.command is not None
    inputs = TrialInputs(
        number=2,
        values={"lambda_sg": 0.25, "lr": 0.1, "width": 32},
        seed=9,
        trial_dir=tmp_path / "trial-2",
    )
    result: CommandResult = run_trial(spec.command, inputs, objective=spec.objective.metric)
    assert result.status is TrialStatus.COMPLETED, result.reason
    assert result.reports[0].metrics == {"lambda_sg": 0.25, "lr": 0.1, "seed": 9.0, "width": 32.0}


def test_a_stop_before_the_start_starts_nothing(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, "report(1, loss=1.0)\n")
    stop = threading.Event()
    stop.set()
    result = run_command(plan, objective="loss", stop=stop)
    assert result.status is TrialStatus.STOPPED and result.pid is None
    assert not (plan.trial_dir / "leader.pid").exists()
