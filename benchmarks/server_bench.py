"""Seconds for `salsweep server start` and `stop`: first start, later starts, job runner.

Each start and stop is the whole command as a user runs it (`.venv/bin/salsweep server
start --port P` with SALSWEEP_HOME set), timed from launch to exit; `server start` exits
once `<url>/health` answers. Cases:

- ``jobs-on``: MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true, MLflow's default (a job runner
  and seven huey consumers start beside the server, each importing MLflow);
- ``jobs-off``: salsweep's default since studies/server.py sets it to false.

Per case: a new data dir, its first start (the schema is migrated into a new
``mlflow.db``), then ``--repeats`` later starts on that database, each followed by a stop.
After each later start, the CPU seconds that the server's processes have used by then and
``--settle`` seconds later (what a start takes from training on the same cores, whatever
the load). ``--busy N`` keeps N processes spinning meanwhile, as a sweep's training keeps
the cores busy (the background start of `make sweep`, a start from `sweep launch` while
other work runs); the machine's own load is shown too.

``--overlap`` also times what `make sweep` waits for before its first trial: the server
start, then what `sweep launch` does up to a usable tracking server (its imports of torch,
Optuna and MLflow and ``resolve_tracking``), one after the other (``sequential``) and at
once (``overlapped``: the server starts in the background as `make sweep` does).

Prints Markdown tables for docs/BENCHMARKS.md:

    .venv/bin/python benchmarks/server_bench.py [--repeats 5] [--busy 2] [--overlap]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# tests.port_helpers, from the repository root (a test helper, not part of salsweep).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.port_helpers import free_port

BIN = Path(sys.executable).parent
# A command that runs longer than this fails the benchmark instead of hanging it.
COMMAND_TIMEOUT_S = 300
# `sweep launch` up to a usable tracking server: the same imports, then resolve_tracking.
LAUNCH_STAND_IN = """
import sys
from pathlib import Path
from studies import SweepTarget, quiet_optuna_logs, resolve_storage, resolve_tracking, run_sweep
resolve_tracking(None, Path(sys.argv[1]), port=int(sys.argv[2]))
"""


SPIN = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _busy(n: int) -> Iterator[None]:
    """N processes that spin (each ends by itself after an hour at the latest)."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=30)


def _cpu_seconds(home: Path) -> float:
    """CPU seconds used so far by the live processes of the data dir's server (its
    process group, the reaped children of each included)."""
    pgid = json.loads((home / "mlflow-server.json").read_text())["pgid"]
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def _env(home: Path, jobs: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["SALSWEEP_HOME"] = str(home)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "true" if jobs else "false"
    return env


def _salsweep(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "salsweep"), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _finish(proc: subprocess.Popen[bytes], what: str) -> None:
    _, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}): {err.decode(errors='replace')}")


def _timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    _finish(_salsweep(args, env), " ".join(args))
    return time.perf_counter() - started


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _case(work: Path, jobs: bool, repeats: int, settle: float) -> str:
    home = work / ("jobs-on" if jobs else "jobs-off")
    shutil.rmtree(home, ignore_errors=True)
    env = _env(home, jobs)
    load = _loadavg()
    first = _timed(["server", "start", "--port", str(free_port())], env)
    stops = [_timed(["server", "stop"], env)]
    later, cpu_up, cpu_settled = [], [], []
    for _ in range(repeats):
        later.append(_timed(["server", "start", "--port", str(free_port())], env))
        cpu_up.append(_cpu_seconds(home))
        time.sleep(settle)
        cpu_settled.append(_cpu_seconds(home))
        stops.append(_timed(["server", "stop"], env))
    each = ", ".join(f"{s:.1f}" for s in later)
    name = "jobs-on (MLflow's default)" if jobs else "jobs-off (salsweep's default)"
    return (
        f"| {name} | {first:.1f} | {statistics.median(later):.1f} | {each} "
        f"| {statistics.median(cpu_up):.1f} | {statistics.median(cpu_settled):.1f} "
        f"| {statistics.median(stops):.1f} | {load:.1f} |"
    )


def _overlap(work: Path, overlapped: bool) -> float:
    """Seconds until `sweep launch` has its tracking server, the server's start included."""
    home = work / "overlap"
    env = _env(home, jobs=False)
    port = str(free_port())
    launch = [str(BIN / "python"), "-c", LAUNCH_STAND_IN, str(home), port]
    started = time.perf_counter()
    server = _salsweep(["server", "start", "--port", port], env)
    if not overlapped:
        _finish(server, "server start")
    proc = subprocess.Popen(launch, env=env, stderr=subprocess.PIPE)
    _finish(proc, "sweep launch stand-in")
    elapsed = time.perf_counter() - started
    if overlapped:
        _finish(server, "server start")
    _timed(["server", "stop"], env)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="later starts per case")
    parser.add_argument("--work", type=Path, default=Path("/tmp/salsweep-server-bench"))
    parser.add_argument("--overlap", action="store_true", help="also time make sweep's start")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes meanwhile")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to the 2nd CPU read")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    with _busy(args.busy):
        _run(args)


def _run(args: argparse.Namespace) -> None:
    print(f"{os.cpu_count()} cores, {args.busy} spinning processes")
    print(
        "| case | first start s | later start s (median) | later starts s "
        f"| CPU s at health | CPU s {args.settle:.0f} s later | stop s | load |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for jobs in (True, False):
        print(_case(args.work, jobs, args.repeats, args.settle), flush=True)
    if args.overlap:
        home = args.work / "overlap"
        shutil.rmtree(home, ignore_errors=True)
        _timed(["server", "start", "--port", str(free_port())], _env(home, jobs=False))
        _timed(["server", "stop"], _env(home, jobs=False))  # migrated: later starts only
        print()
        print("| make sweep, until the first trial can start | s (median) | s (each) |")
        print("|---|---:|---|")
        runs: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):  # interleaved: both see the same load
            for overlapped in (False, True):
                runs[overlapped].append(_overlap(args.work, overlapped))
        for overlapped, times in runs.items():
            name = "overlapped (server in the background)" if overlapped else "sequential"
            each = ", ".join(f"{s:.1f}" for s in times)
            print(f"| {name} | {statistics.median(times):.1f} | {each} |", flush=True)


if __name__ == "__main__":
    main()
