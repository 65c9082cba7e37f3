"""Tracking overhead: the time a trial spends in Optuna and MLflow calls, per epoch and per
trial, against the trial's time, with 1 and 2 local workers.

    .venv/bin/python benchmarks/tracking_bench.py [--trials 4] [--workers 1,2]
        [--epochs 4] [--steps 150]

Runs ``salsweep sweep launch --workers N`` through the real CLI on the default spec's
training (sweeps/default.yaml: 64x192, batch 4, previews on; ``--epochs`` x ``--steps``),
searching ``loss.lambda_sg`` with TPE, no pruning, no baseline or confirmation, against a
local MLflow server (SQLite-backed, as `salsweep server start` runs it) and SQLite storage.

Instrumented in the benchmark's processes only, never in the product: a
``sitecustomize`` module put on the path of the launched processes (the CLI, and the
workers it starts) wraps, before anything runs,

- MLflow: every public method of ``studies.tracking.client.Client`` and, where they exist, of
  the outbox classes that log a run (``studies.tracking.courier.RunLog``), the calls a trial
  makes to log its run;
- Optuna: every public method of the storage (``RDBStorage``), of the samplers and of the
  pruners, the calls behind ``ask``, ``suggest_*``, ``report``, ``should_prune``, ``tell``;

and times them on the main thread (the one that trains: a background thread's calls,
such as Optuna's heartbeat or an outbox's sender, do not hold training up; their time is
shown apart). A call made while another instrumented call runs is counted once. A call
inside the objective's ``on_epoch_end`` counts as per-epoch, any other inside
``study.optimize`` as per-trial; the rest (opening the study, the parent run, the summary)
is the launch's own, once per sweep, and shown apart. A
trial's time is its Optuna duration (start to end, as the storage records it).
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_ENV = "SALSWEEP_TRACKING_BENCH_OUT"
# The main thread's tracking time: what holds training up.
_MAIN = ("mlflow/epoch", "mlflow/trial", "optuna/epoch", "optuna/trial")

# ---------------------------------------------------------------------------- the hooks


class _Clock:
    """Accumulated seconds per (kind, where, thread) and the trial's epochs."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.local = threading.local()
        self.epochs = 0
        self.fit_seconds = 0.0
        self.trials = 0

    def wrap(self, kind: str, func: Any) -> Any:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self.local, "depth", 0)
            if depth:
                return func(*args, **kwargs)
            self.local.depth = 1
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.local.depth = 0
                main = threading.current_thread() is threading.main_thread()
                if getattr(self.local, "in_epoch", False):
                    where = "epoch"
                elif getattr(self.local, "in_optimize", False):
                    where = "trial"
                else:
                    where = "sweep"  # the launch's own calls, once per sweep
                key = f"{kind}/{where}" if main else f"{kind}/background"
                self.seconds[key] += elapsed
                self.calls[key] += 1
                method = f"{key} {getattr(func, '__qualname__', '?')}"
                self.seconds[method] += elapsed
                self.calls[method] += 1

        return timed

    def dump(self, folder: str) -> None:
        data = {
            "pid": os.getpid(),
            "argv": sys.argv,
            "seconds": dict(self.seconds),
            "calls": dict(self.calls),
            "epochs": self.epochs,
            "fit_seconds": self.fit_seconds,
            "trials": self.trials,
        }
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(data))


def _wrap_class(clock: _Clock, kind: str, cls: type) -> None:
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not callable(member) or isinstance(member, type):
            continue
        if isinstance(member, staticmethod | classmethod):
            continue
        setattr(cls, name, clock.wrap(kind, member))


def install_hooks(folder: str) -> None:
    """Wrap the tracking and Optuna calls of this process (see the module's description);
    write the totals to ``folder/<pid>.json`` at exit."""
    import importlib

    import optuna

    clock = _Clock()
    storages = [optuna.storages.RDBStorage]
    samplers = [optuna.samplers.TPESampler, optuna.samplers.RandomSampler]
    samplers.append(optuna.samplers.GridSampler)
    pruners = [optuna.pruners.MedianPruner, optuna.pruners.NopPruner]
    pruners.append(optuna.pruners.HyperbandPruner)
    for cls in [*storages, *samplers, *pruners]:
        _wrap_class(clock, "optuna", cls)
    client = importlib.import_module("studies.tracking.client")
    _wrap_class(clock, "mlflow", client.Client)
    try:
        courier = importlib.import_module("studies.tracking.courier")
    except ImportError:
        courier = None
    if courier is not None and hasattr(courier, "RunLog"):
        _wrap_class(clock, "mlflow", courier.RunLog)

    objective = importlib.import_module("studies.run.objective")
    fit = objective.fit

    @functools.wraps(fit)
    def timed_fit(config: Any, on_epoch_end: Any = None, *args: Any, **kwargs: Any) -> Any:
        def in_epoch(epoch: int, metrics: dict[str, float]) -> None:
            clock.epochs += 1
            clock.local.in_epoch = True
            try:
                if on_epoch_end is not None:
                    on_epoch_end(epoch, metrics)
            finally:
                clock.local.in_epoch = False

        start = time.perf_counter()
        try:
            return fit(config, in_epoch, *args, **kwargs)
        finally:
            clock.fit_seconds += time.perf_counter() - start
            clock.trials += 1

    objective.fit = timed_fit
    optimize = optuna.Study.optimize

    @functools.wraps(optimize)
    def marked_optimize(self: Any, *args: Any, **kwargs: Any) -> Any:
        clock.local.in_optimize = True
        try:
            return optimize(self, *args, **kwargs)
        finally:
            clock.local.in_optimize = False

    optuna.Study.optimize = marked_optimize  # type: ignore[method-assign]
    atexit.register(clock.dump, folder)


SITECUSTOMIZE = f"""
import os
if os.environ.get({OUT_ENV!r}):
    import sys
    sys.path.insert(0, {str(ROOT / "benchmarks")!r})
    import tracking_bench
    tracking_bench.install_hooks(os.environ[{OUT_ENV!r}])
"""


# ---------------------------------------------------------------------------- the runs


def _spec(trials: int, epochs: int, steps: int) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((ROOT / "sweeps" / "default.yaml").read_text())
    data["name"] = "tracking"
    data["base"]["epochs"] = epochs
    data["base"]["steps_per_epoch"] = steps
    data["search"] = {"loss.lambda_sg": data["search"]["loss.lambda_sg"]}
    data["budget"] = {"n_trials": trials}
    data["pruner"] = {"type": "none"}
    data["baseline"] = False
    data["confirm"] = None
    return data


def _case(workers: int, args: argparse.Namespace, tracking: str, folder: Path) -> dict[str, Any]:
    import optuna
    import yaml

    out = folder / f"times-{workers}"
    out.mkdir()
    hooks = folder / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    spec = folder / f"spec-{workers}.yaml"
    spec.write_text(yaml.safe_dump(_spec(args.trials, args.epochs, args.steps)))
    home = folder / f"home-{workers}"
    name = f"tracking-{workers}w"
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, OUT_ENV: str(out), "PYTHONPATH": path}
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "cli.py"), "sweep", "launch", str(spec)),
            *("--study-name", name, "--workers", str(workers), "--home", str(home)),
            *("--tracking-uri", tracking),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise SystemExit(f"launch --workers {workers} failed:\n{done.stdout}\n{done.stderr}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")
    trials = [t for t in study.trials if t.state.name == "COMPLETE" and t.duration]
    trial_s = sum(t.duration.total_seconds() for t in trials)
    # The processes that ran trials (the CLI with one worker; the workers otherwise).
    dumps = [json.loads(p.read_text()) for p in out.glob("*.json")]
    ran = [d for d in dumps if d["trials"]]
    seconds: dict[str, float] = defaultdict(float)
    for dump in ran:
        for key, value in dump["seconds"].items():
            seconds[key] += value
    epochs = sum(d["epochs"] for d in ran)
    fit_s = sum(d["fit_seconds"] for d in ran)
    n = len(trials)

    calls: dict[str, int] = defaultdict(int)
    for dump in ran:
        for key, value in dump["calls"].items():
            calls[key] += value
    methods = sorted(
        (k for k in seconds if " " in k and not k.split()[0].endswith("background")),
        key=lambda k: -seconds[k],
    )
    print(f"# {workers} worker(s), main thread, per trial (calls, ms):", file=sys.stderr)
    for key in methods[:8]:
        print(
            f"#   {key}: {calls[key] / max(1, len(trials)):.1f} "
            f"calls, {1000 * seconds[key] / max(1, len(trials)):.1f} ms",
            file=sys.stderr,
        )

    def share(*keys: str) -> float:
        return 100 * sum(seconds[k] for k in keys) / trial_s

    return {
        "workers": workers,
        "trials": n,
        "mean trial s": f"{trial_s / n:.1f}",
        "of which training (fit) s": f"{fit_s / n:.1f}",
        "MLflow ms/epoch": f"{1000 * seconds['mlflow/epoch'] / epochs:.1f}",
        "Optuna ms/epoch": f"{1000 * seconds['optuna/epoch'] / epochs:.1f}",
        "MLflow ms/trial (outside epochs)": f"{1000 * seconds['mlflow/trial'] / n:.0f}",
        "Optuna ms/trial (outside epochs)": f"{1000 * seconds['optuna/trial'] / n:.0f}",
        "MLflow % of trial": f"{share('mlflow/epoch', 'mlflow/trial'):.2f}",
        "Optuna % of trial": f"{share('optuna/epoch', 'optuna/trial'):.2f}",
        "total % of trial": f"{share(*_MAIN):.2f}",
        "launch's own calls s (MLflow, Optuna)": (
            f"{seconds['mlflow/sweep']:.2f}, {seconds['optuna/sweep']:.2f}"
        ),
        "background s/trial (MLflow, Optuna)": (
            f"{seconds['mlflow/background'] / n:.2f}, {seconds['optuna/background'] / n:.2f}"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import platform

    import torch

    from studies.tracking.server import start_server, stop_server
    from tests.port_helpers import free_port

    with tempfile.TemporaryDirectory(prefix="salsweep-tracking-bench-") as tmp:
        folder = Path(tmp)
        server = start_server(folder / "mlflow", port=free_port(), timeout=240.0)
        try:
            rows = [_case(int(w), args, server.url, folder) for w in args.workers.split(",")]
        finally:
            stop_server(folder / "mlflow")
    cores = len(os.sched_getaffinity(0))
    print(f"\ntorch {torch.__version__}, {cores} cores usable, {platform.processor() or '?'}")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
