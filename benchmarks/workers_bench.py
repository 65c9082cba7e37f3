"""Local workers (``salsweep sweep launch --workers N``): storage under N processes, and
trials per hour with 1 and 2 workers.

    .venv/bin/python benchmarks/workers_bench.py storage [--workers 4] [--trials 40]
        [--backends rdb,journal] [--work train,none]
    .venv/bin/python benchmarks/workers_bench.py queue [--workers 4] [--trials 60]
    .venv/bin/python benchmarks/workers_bench.py throughput [--trials 6] [--workers 1,2]
    .venv/bin/python benchmarks/workers_bench.py threads [--steps 80] [--repeats 3]

``storage``: ``--workers`` processes each run ``--trials`` short trials of one study
(Optuna only, no MLflow), the way a sweep's trial uses the storage: a trial asks the
sampler (TPE) for its parameters, sets three user attributes, reports each epoch and asks
the pruner, then ends. ``--work train`` trains the tiny network for 2 epochs of 2 steps
per trial (the trainer's real work between the storage calls); ``none`` does no work
between them (the most contention the storage can see). Backends: ``rdb`` = Optuna's RDB
storage over SQLite as salsweep opens it (studies.store.storage: heartbeats on, 60 s busy
timeout), ``journal`` = Optuna's JournalStorage over a file (JournalFileBackend; it has
no heartbeats, so a dead worker's trial would stay RUNNING). Counts: lock errors (any
``database is locked`` or other storage exception in a worker), lost trials (trials a
worker started that are not COMPLETE in the storage, plus trials missing from it), and
duplicate trial numbers; wall-clock time.

``queue``: ``--workers`` processes take ``--trials`` queued (WAITING) trials of one study
at the same moment, as local workers take the confirmation's replicates; a trial taken
by two processes is run twice, and the slower one's end fails. Counts pops against
trials, ``--repeats`` times per backend (``rdb-plain``: Optuna's own RDBStorage on the
same SQLite file, without studies.store.storage's locked transactions, for comparison).

``throughput``: the default spec's training (sweeps/default.yaml: 64x192, 4 epochs of 150
steps, batch 4) through the real CLI, ``sweep launch --workers N`` against a local MLflow
server, with the search reduced so that every trial costs the same (``loss.lambda_sg``
searched; ``num_scales`` 4, no pruning, no baseline, no confirmation). Trials per hour =
finished trials / (end of the last trial - start of the first), from Optuna's trial
times; the command's wall-clock time is printed beside it. One worker runs in-process
with torch's default threads (all cores); N workers get ``cores // N`` threads each.

``threads``: the default spec's training step (80 steps, after the same 80 steps as a
warm-up that renders and caches all 200 training scenes) in one process of 2 threads,
then in two processes of 1 thread at once (and in one process of 1 thread, for
reference): samples per second of each, ``--repeats`` times (the choice ``--workers
auto`` makes on a CPU).

Prints Markdown tables for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------- storage


def _open_storage(backend: str, path: Path) -> Any:
    if backend == "rdb":
        from studies.store.storage import open_storage

        return open_storage(f"sqlite:///{path / 'optuna.db'}")
    if backend == "rdb-plain":  # Optuna's RDBStorage as it comes, without studies.store.storage
        from optuna.storages import RDBStorage

        return RDBStorage(f"sqlite:///{path / 'optuna.db'}")
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path / "journal.log")))


def _storage_worker(backend: str, folder: str, trials: int, work: str) -> None:
    """One worker process of the storage benchmark; prints one JSON line of counts."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import torch

    torch.set_num_threads(1)
    from trainer import TrainConfig, fit

    config = TrainConfig.model_validate(
        {
            "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 4, "num_test": 4},
            "model": {"base_channels": 4, "num_stages": 2},
            "epochs": 2,
            "steps_per_epoch": 2,
            "batch_size": 2,
            "device": "cpu",
        }
    )
    storage = _open_storage(backend, Path(folder))
    study = optuna.load_study(
        study_name="bench",
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=os.getpid(), n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    errors: list[str] = []
    started: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        started.append(trial.number)
        lam = trial.suggest_float("loss.lambda_sg", 0.05, 2.0, log=True)
        scales = trial.suggest_int("loss.num_scales", 1, 3)
        trial.set_user_attr("mlflow_run_id", f"run-{os.getpid()}-{trial.number}")
        trial.set_user_attr("worker", f"bench:{os.getpid()}")
        trial.set_user_attr("config", {"lambda_sg": lam, "num_scales": scales})
        values = []

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            value = metrics["val/abs_rel_align"] + lam * 1e-3
            values.append(value)
            trial.report(value, epoch)
            trial.should_prune()  # read, never acted on: every trial completes

        if work == "train":
            loss = config.loss.model_copy(update={"num_scales": scales})
            fit(config.model_copy(update={"loss": loss}), on_epoch_end)
        else:
            for epoch in (1, 2):
                on_epoch_end(epoch, {"val/abs_rel_align": 0.3 / epoch})
        return min(values)

    start = time.perf_counter()
    for _ in range(trials):
        try:
            study.optimize(objective, n_trials=1)
        except Exception as exc:  # a storage error: counted, the worker goes on
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    print(
        json.dumps(
            {
                "pid": os.getpid(),
                "started": started,
                "errors": errors,
                "seconds": time.perf_counter() - start,
            }
        ),
        flush=True,
    )


def _storage_case(backend: str, workers: int, trials: int, work: str) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="salsweep-storage-bench-") as tmp:
        folder = Path(tmp)
        optuna.create_study(study_name="bench", storage=_open_storage(backend, folder))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "_storage-worker", backend, tmp, str(trials), work],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(workers)
        ]
        reports, crashed = [], []
        for proc in procs:
            out, err = proc.communicate(timeout=3600)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                crashed.append(err.strip().splitlines()[-1:] or [f"exit {proc.returncode}"])
                continue
            reports.append(json.loads(lines[-1]))
        wall = time.perf_counter() - start
        study = optuna.load_study(study_name="bench", storage=_open_storage(backend, folder))
        stored = study.get_trials(deepcopy=False)
    numbers = [t.number for t in stored]
    complete = {t.number for t in stored if t.state.name == "COMPLETE"}
    errors = [e for r in reports for e in r["errors"]]
    # Trials asked for that did not end COMPLETE in the storage (an error, a crash).
    lost = workers * trials - len(complete)
    return {
        "backend": backend,
        "work": work,
        "trials": f"{workers} x {trials}",
        "complete": len(complete),
        "lock errors": sum("locked" in e for e in errors),
        "other errors": len(errors) - sum("locked" in e for e in errors) + len(crashed),
        "lost trials": lost,
        "duplicate numbers": len(numbers) - len(set(numbers)),
        "left RUNNING": sum(t.state.name == "RUNNING" for t in stored),
        "wall s": f"{wall:.1f}",
        # from the first trial to the last, in the slowest worker (process start excluded)
        "trials s": f"{max((r['seconds'] for r in reports), default=0.0):.1f}",
        "_errors": errors[:5] + [str(c) for c in crashed[:3]],
    }


def storage(args: argparse.Namespace) -> None:
    rows = []
    for work in args.work.split(","):
        for backend in args.backends.split(","):
            row = _storage_case(backend, args.workers, args.trials, work)
            rows.append(row)
            print(f"# {backend} {work}: {row}", file=sys.stderr, flush=True)
    _table(rows)
    for row in rows:
        for error in row["_errors"]:
            print(f"- {row['backend']}/{row['work']}: {error}")


# ---------------------------------------------------------------------------- queue


def _queue_worker(backend: str, folder: str, processes: int) -> None:
    """One process of the queue benchmark: pops queued trials until none is left."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="queue", storage=_open_storage(backend, Path(folder)))
    study.get_trials(deepcopy=False)  # connected
    Path(folder, f"ready-{os.getpid()}").touch()
    while len(list(Path(folder).glob("ready-*"))) < processes:  # all start together
        time.sleep(0.001)
    popped = []
    while (trial_id := study._pop_waiting_trial_id()) is not None:
        popped.append(trial_id)
    print(json.dumps(popped), flush=True)


def queue_race(args: argparse.Namespace) -> None:
    """``--workers`` processes take ``--trials`` queued trials of one study at once (as
    local workers take the confirmation's replicates): pops against trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    for backend in args.backends.split(","):
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="salsweep-queue-bench-") as tmp:
                study = optuna.create_study(
                    study_name="queue", storage=_open_storage(backend, Path(tmp))
                )
                for i in range(args.trials):
                    study.enqueue_trial({"x": i}, skip_if_exists=False)
                n = str(args.workers)
                procs = [
                    subprocess.Popen(
                        [sys.executable, __file__, "_queue-worker", backend, tmp, n],
                        stdout=subprocess.PIPE,
                        text=True,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                    )
                    for _ in range(args.workers)
                ]
                popped = [
                    json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1])
                    for p in procs
                ]
            every = [t for got in popped for t in got]
            rows.append(
                {
                    "backend": backend,
                    "queued": args.trials,
                    "pops": len(every),
                    "distinct": len(set(every)),
                    "taken twice": len(every) - len(set(every)),
                    "per process": " ".join(str(len(got)) for got in popped),
                }
            )
    _table(rows)


# ---------------------------------------------------------------------------- throughput


def _throughput_spec(trials: int) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((ROOT / "sweeps" / "default.yaml").read_text())
    data["name"] = "throughput"
    data["search"] = {"loss.lambda_sg": data["search"]["loss.lambda_sg"]}
    data["budget"] = {"n_trials": trials}
    data["pruner"] = {"type": "none"}
    data["sampler"] = {"type": "tpe", "seed": 0, "n_startup_trials": trials}
    data["baseline"] = False
    data["confirm"] = None
    return data


def _throughput_case(workers: int, trials: int, tracking: str, folder: Path) -> dict[str, Any]:
    import optuna
    import yaml

    home = folder / f"home-{workers}"
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(_throughput_spec(trials)))
    name = f"throughput-{workers}w-{os.getpid()}"
    print(f"# {workers} worker(s): load average before {os.getloadavg()[0]:.2f}", file=sys.stderr)
    start = time.perf_counter()
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "cli.py"), "sweep", "launch", str(spec)),
            *("--study-name", name, "--workers", str(workers), "--home", str(home)),
            *("--tracking-uri", tracking),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"launch --workers {workers} failed:\n{done.stdout}\n{done.stderr}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    first = min(t.datetime_start for t in finished if t.datetime_start)
    last = max(t.datetime_complete for t in finished if t.datetime_complete)
    span = (last - first).total_seconds()
    durations = sorted(t.duration.total_seconds() for t in finished if t.duration)
    load = os.getloadavg()[0]
    print(
        f"# {workers} worker(s): trial seconds {[round(d, 1) for d in durations]}, "
        f"load average (1 min) at the end {load:.2f}",
        file=sys.stderr,
        flush=True,
    )
    return {
        "workers": workers,
        "trials": len(finished),
        "search span s": f"{span:.1f}",
        "trials/hour": f"{3600 * len(finished) / span:.0f}",
        "median trial s": f"{durations[len(durations) // 2]:.1f}",
        "command wall s": f"{wall:.1f}",
        "_rate": len(finished) / span,
        "_wall": wall,
    }


def throughput(args: argparse.Namespace) -> None:
    from studies.tracking.server import start_server, stop_server

    sys.path.insert(0, str(ROOT))  # tests.port_helpers: a test helper, not part of salsweep
    from tests.port_helpers import free_port

    with tempfile.TemporaryDirectory(prefix="salsweep-throughput-") as tmp:
        folder = Path(tmp)
        server = start_server(folder / "mlflow", port=free_port(), timeout=240.0)
        try:
            rows = [
                _throughput_case(int(w), args.trials, server.url, folder)
                for w in args.workers.split(",")
            ]
        finally:
            stop_server(folder / "mlflow")
    _table(rows)
    base = rows[0]
    for row in rows[1:]:
        print(
            f"\n{row['workers']} workers / {base['workers']}: trials per hour x"
            f"{row['_rate'] / base['_rate']:.2f}, command wall time x"
            f"{base['_wall'] / row['_wall']:.2f} faster"
        )


# ---------------------------------------------------------------------------- threads


def _threads_worker(threads: int, steps: int) -> None:
    """One training process of the threads benchmark; prints one JSON line."""
    import torch

    torch.set_num_threads(threads)
    import yaml

    from trainer import TrainConfig, fit

    data = yaml.safe_load((ROOT / "sweeps" / "default.yaml").read_text())["base"]
    data.update(epochs=1, steps_per_epoch=steps, previews=False)
    data["data"].update(num_train=200, num_val=16, num_test=4)
    config = TrainConfig.model_validate(data)
    fit(config)  # warm-up: every scene rendered (cached), the allocator warm
    start = time.perf_counter()
    result = fit(config)
    seconds = time.perf_counter() - start
    print(json.dumps({"s": seconds, "samples_per_s": result.history[-1]["samples_per_s"]}))


def _threads_run(threads: int, processes: int, steps: int) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "_threads-worker", str(threads), str(steps)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    return [json.loads(o.strip().splitlines()[-1])["samples_per_s"] for o in outs]


def threads(args: argparse.Namespace) -> None:
    """The default spec's training step: 1 process x 2 threads against 2 x 1 thread."""
    rows = []
    for _ in range(args.repeats):
        load = os.getloadavg()[0]
        alone = _threads_run(1, 1, args.steps)
        one = _threads_run(2, 1, args.steps)
        two = _threads_run(1, 2, args.steps)
        rows.append(
            {
                "load avg": f"{load:.1f}",
                "1 process x 1 thread": f"{alone[0]:.1f}",
                "1 process x 2 threads": f"{one[0]:.1f}",
                "2 processes x 1 thread (each)": ", ".join(f"{v:.1f}" for v in two),
                "ratio (total)": f"{sum(two) / one[0]:.2f}",
            }
        )
    _table(rows)


# ---------------------------------------------------------------------------- output


def _table(rows: list[dict[str, Any]]) -> None:
    import torch

    cores = len(os.sched_getaffinity(0))
    print(f"\ntorch {torch.__version__}, {cores} cores usable, {platform.processor() or '?'}")
    keys = [k for k in rows[0] if not k.startswith("_")]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_storage-worker":
        _storage_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_queue-worker":
        _queue_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_threads-worker":
        _threads_worker(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("storage", help="N processes x short trials on one storage")
    s.add_argument("--workers", type=int, default=4)
    s.add_argument("--trials", type=int, default=40, help="trials per worker")
    s.add_argument("--backends", default="rdb,journal")
    s.add_argument("--work", default="train,none")
    t = sub.add_parser("throughput", help="trials per hour with 1 and N workers")
    t.add_argument("--trials", type=int, default=6)
    t.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    q = sub.add_parser("queue", help="N processes take queued trials at once")
    q.add_argument("--workers", type=int, default=4)
    q.add_argument("--trials", type=int, default=60, help="queued trials")
    q.add_argument("--backends", default="rdb,rdb-plain,journal")
    q.add_argument("--repeats", type=int, default=3)
    h = sub.add_parser("threads", help="1 process x 2 threads against 2 x 1 thread")
    h.add_argument("--steps", type=int, default=80)
    h.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    modes = {"storage": storage, "queue": queue_race, "throughput": throughput}
    modes["threads"] = threads
    modes[args.mode](args)


if __name__ == "__main__":
    main()
