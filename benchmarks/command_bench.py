"""What running a trial as a command costs beyond the program itself, and how fast a pruned
trial's processes are gone.

Overhead per trial. The program is a trivial Python script that imports the reporter and
reports ``--steps`` steps of ``--metrics`` metrics (``report()``, one fsync'd line each),
then exits. It is run two ways, taking turns ``--repeats`` times:

- bare: ``subprocess.run`` of the same argv and environment, timed from the call to exit;
- command trial: `studies.command.trial.run_trial` from a parsed spec (config copy of a
  small YAML base config with three keys set, ``--key=value`` argument, JSON file, the
  environment, the process group, stdout/stderr files, the metrics tail with a callback
  per report, the end and the group check), timed from the call to its return.

The overhead is the difference of the medians; "prepare" is `prepare_trial` alone, and
"end -> return" the time from the program's last statement (it reports
``time.monotonic()``, one clock for all processes on Linux) until `run_command` returns.
The same is done with ``metrics: stdout`` (a pattern over printed lines). The CPU the
supervising loop uses while a program sleeps 3 s is the parent's CPU time over that trial.

Stops. The program reports forever every 50 ms and has started a grandchild; the callback
asks to stop at step 3; the figure is the time from that answer until `run_command`
returns, when no process of the group (nor the grandchild) is alive (checked again in
/proc here). Then the same with a program that ignores SIGTERM (SIGKILL after
``--grace`` seconds).

    .venv/bin/python benchmarks/command_bench.py [--repeats 10] [--steps 100] [--metrics 5]
        [--grace 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studies.command.prepare import TrialInputs, prepare_trial  # noqa: E402
from studies.command.runner import CommandResult, TrialStatus, run_command  # noqa: E402
from studies.command.trial import metric_source, run_trial  # noqa: E402
from studies.procs import live_processes  # noqa: E402
from sweeps import parse_spec  # noqa: E402
from sweeps.command import CommandSpec  # noqa: E402

BASE_CONFIG = """\
model:
  loss: {lambda_sg: 0.5, num_scales: 4}
  channels: [16, 32, 64]
training: {seed: 1, epochs: 3, lr: 0.001}
data: {root: /data, height: 192, width: 640}
"""

PROGRAM = """\
import argparse, sys, time
from studies.command.reporter import report
parser = argparse.ArgumentParser()
parser.add_argument("config")
parser.add_argument("--lr", type=float, default=0.001)
parser.add_argument("--stdout", action="store_true")
args = parser.parse_args()
for step in range(1, STEPS + 1):
    values = {f"m{i}": 1.0 / (step + i) for i in range(METRICS)}
    if args.stdout:
        print(f"step {step} m0={values['m0']}")
    else:
        report(step, **values)
end = time.monotonic()
if args.stdout:
    print(f"step {STEPS + 1} m0={end}")
else:
    report(STEPS + 1, end=end, m0=0.0)
"""

SLEEPER = "import time; time.sleep(3)\n"

FOREVER = """\
import os, signal, subprocess, sys, time
from studies.command.reporter import report
if IGNORE_TERM:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(os.path.join(os.environ["SALSWEEP_TRIAL_DIR"], "grandchild.pid"), "w") as f:
    f.write(str(child.pid))
step = 0
while True:
    step += 1
    report(step, loss=1.0 / step)
    time.sleep(0.05)
"""


def _spec(folder: Path, program: Path, *, stdout: bool, grace: float) -> CommandSpec:
    data = {
        "name": "bench",
        "command": {
            "argv": [sys.executable, str(program), "{config}", "{args}"]
            + (["--stdout"] if stdout else []),
            "workdir": str(folder),
            "base_config": str(folder / "base.yaml"),
            "keys": {
                "lambda_sg": "model.loss.lambda_sg",
                "lr": "--lr",
                "epochs": "training.epochs",
            },
            "seed_key": "training.seed",
            "grace_s": grace,
            **(
                {"metrics": "stdout", "pattern": r"step (?P<step>\d+) m0=(?P<value>\S+)"}
                if stdout
                else {}
            ),
        },
        "search": {"lambda_sg": {"low": 0.1, "high": 1.0}, "lr": [0.001, 0.01], "epochs": 3},
        "objective": {"metric": "m0"},
    }
    spec = parse_spec(data, "bench")
    assert spec.command is not None
    return spec.command


def _inputs(folder: Path, n: int) -> TrialInputs:
    return TrialInputs(
        number=n,
        values={"lambda_sg": 0.25, "lr": 0.01, "epochs": 3},
        seed=n,
        trial_dir=folder / f"trial-{n}",
    )


def _bare(command: CommandSpec, folder: Path, n: int) -> float:
    """Seconds of the program run directly with the same argv and environment."""
    plan = prepare_trial(command, _inputs(folder, n))
    with open(plan.stdout_file, "wb") as out:
        started = time.monotonic()
        subprocess.run(list(plan.argv), env=dict(plan.env), stdout=out, check=True)
        return time.monotonic() - started


def _through(command: CommandSpec, folder: Path, n: int) -> tuple[float, float, float]:
    """(seconds of run_trial, of prepare_trial, from the program's end to the return)."""
    seen = []

    def on_metrics(step: int, metrics: Mapping[str, float]) -> bool:
        seen.append(step)
        return False

    started = time.monotonic()
    prepare_trial(command, _inputs(folder, n + 10_000))
    prepared = time.monotonic() - started
    started = time.monotonic()
    result = run_trial(command, _inputs(folder, n), objective="m0", on_metrics=on_metrics)
    returned = time.monotonic()
    assert result.status is TrialStatus.COMPLETED, result.reason
    last = result.reports[-1].metrics
    end = last.get("end", last["m0"])  # the stdout variant prints its end as m0
    return returned - started, prepared, returned - end


def overhead(folder: Path, repeats: int, steps: int, metrics: int, *, stdout: bool) -> list[str]:
    program = folder / "program.py"
    program.write_text(PROGRAM.replace("STEPS", str(steps)).replace("METRICS", str(metrics)))
    command = _spec(folder, program, stdout=stdout, grace=2.0)
    bare, through, prepare, tail = [], [], [], []
    _bare(command, folder, 0)  # warm-up: bytecode and page cache
    _through(command, folder, 1)
    for i in range(repeats):
        bare.append(_bare(command, folder, 100 + i))
        t, p, e = _through(command, folder, 200 + i)
        through.append(t)
        prepare.append(p)
        tail.append(e)
    m = statistics.median
    source = "stdout pattern" if stdout else "metrics file"
    paired = [t - b for t, b in zip(through, bare, strict=True)]
    return [
        f"| {source} | {m(bare):.3f} | {m(through):.3f} | {m(paired):+.3f} "
        f"| {max(paired):+.3f} | {m(prepare) * 1000:.1f} | {m(tail) * 1000:.0f} |"
    ]


def report_cost(folder: Path, calls: int = 200) -> tuple[float, float]:
    """Microseconds per `report()` call of 5 metrics: writing (one fsync'd line) and
    outside a sweep (the variable unset)."""
    from studies.command import reporter

    values = {f"m{i}": 0.5 for i in range(5)}
    out = []
    for path in (str(folder / "cost.jsonl"), None):
        if path is None:
            os.environ.pop(reporter.METRICS_ENV, None)
        else:
            os.environ[reporter.METRICS_ENV] = path
        started = time.perf_counter()
        for step in range(calls):
            reporter.report(step, **values)
        out.append((time.perf_counter() - started) / calls * 1e6)
    return out[0], out[1]


def loop_cpu(folder: Path) -> float:
    """CPU seconds per wall second that the supervising loop uses while the program sleeps."""
    program = folder / "sleeper.py"
    program.write_text(SLEEPER)
    command = _spec(folder, program, stdout=False, grace=2.0)
    plan = prepare_trial(command, _inputs(folder, 50_000))
    plan = type(plan)(
        (sys.executable, str(program)), plan.env, plan.cwd, plan.trial_dir, plan.config_file
    )
    cpu, wall = time.process_time(), time.monotonic()
    run_command(plan, objective="m0", source=metric_source(command))
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def _alive(pid: int) -> bool:
    return pid in live_processes()


def stop_times(folder: Path, repeats: int, grace: float, *, ignore_term: bool) -> list[float]:
    program = folder / ("ignore.py" if ignore_term else "forever.py")
    program.write_text(FOREVER.replace("IGNORE_TERM", str(ignore_term)))
    command = _spec(folder, program, stdout=False, grace=grace)
    out = []
    for i in range(repeats):
        inputs = _inputs(folder, (70_000 if ignore_term else 60_000) + i)
        plan = prepare_trial(command, inputs)
        plan = type(plan)(
            (sys.executable, str(program)), plan.env, plan.cwd, plan.trial_dir, plan.config_file
        )
        asked: list[float] = []

        def prune(step: int, metrics: Mapping[str, float], asked: list[float] = asked) -> bool:
            if step >= 3 and not asked:
                asked.append(time.monotonic())
                return True
            return False

        result: CommandResult = run_command(
            plan, objective="loss", on_metrics=prune, grace_s=command.grace_s
        )
        gone = time.monotonic() - asked[0]
        assert result.status is TrialStatus.PRUNED and result.pid is not None
        grandchild = int((plan.trial_dir / "grandchild.pid").read_text())
        members = [p for p, (_, pgrp) in live_processes().items() if pgrp == result.pid]
        assert not members and not _alive(grandchild), "a process outlived the trial"
        assert result.stop is not None and result.stop.sigkill == ignore_term
        out.append(gone)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--grace", type=float, default=2.0)
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory(prefix="command-bench-") as tmp:
        folder = Path(tmp)
        (folder / "base.yaml").write_text(BASE_CONFIG)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        fs = subprocess.run(
            ["df", "--output=fstype", tmp], capture_output=True, text=True, check=False
        ).stdout.split()[-1:]
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load}, "
            f"trial folders on {fs[0] if fs else '?'}"
        )
        print(
            f"\nA trivial program reporting {args.steps} steps x {args.metrics} metrics; "
            f"median of {args.repeats} runs, seconds\n"
        )
        print(
            "| metrics from | bare | command trial | overhead (median of pairs) | max pair "
            "| prepare ms | end -> return ms |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for stdout in (False, True):
            for row in overhead(folder, args.repeats, args.steps, args.metrics, stdout=stdout):
                print(row)
        cpu = loop_cpu(folder) * 100
        print(f"\nSupervising loop while the program sleeps: {cpu:.2f} % of a core")
        written, unset = report_cost(folder)
        print(f"report() of 5 metrics: {written:.0f} us written (fsync), {unset:.1f} us unset")
        print(f"\nPrune request -> every process gone (grace {args.grace:g} s), seconds\n")
        print("| program | median | max |")
        print("|---|---:|---:|")
        for ignore in (False, True):
            times = stop_times(folder, args.repeats, args.grace, ignore_term=ignore)
            name = "ignores SIGTERM (SIGKILL after the grace)" if ignore else "default SIGTERM"
            print(f"| {name} | {statistics.median(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()
